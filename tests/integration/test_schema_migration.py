"""app_migrations, pg_migration_check and pg_database_swap against real servers (PostgreSQL 13, 15, 17).

app_migrations drives the lab's manage.py stand-in (Django's commands and output) on this machine, against a
scratch database on the lab's primary: migrations applied (one CREATE INDEX CONCURRENTLY outside a
transaction), a migration failing half way leaving nothing behind, a DDL behind another session's lock failing
on lock_timeout while a writer is measured, reverse migrations, and an irreversible one refused.
pg_migration_check finds a long transaction, a standby and the streaming replica; pg_database_swap refuses
while a session is connected and swaps in one transaction."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from dbops_it import LAB_PASSWORD, ROOT, run_module

DB = "migrate_it"
MANAGE = ROOT / "lab" / "roles" / "lab_app" / "files" / "manage.py"
MIGRATIONS = {
    "0001_initial": ("CREATE TABLE items (id bigint PRIMARY KEY, body text NOT NULL, n integer NOT NULL DEFAULT 0);\n"
                     "INSERT INTO items SELECT g, md5(g::text), g FROM generate_series(1, 5000) AS g;\n",
                     "DROP TABLE items;\n"),
    "0002_items_note": ("ALTER TABLE items ADD COLUMN note text;\n", "ALTER TABLE items DROP COLUMN note;\n"),
    "0003_items_n_idx": ("-- atomic: false\nDROP INDEX CONCURRENTLY IF EXISTS items_n_idx;\n"
                         "CREATE INDEX CONCURRENTLY items_n_idx ON items (n);\n",
                         "-- atomic: false\nDROP INDEX CONCURRENTLY IF EXISTS items_n_idx;\n"),
}
HALF_BROKEN = ("ALTER TABLE items ADD COLUMN summary text;\nUPDATE items SET summary = no_such_column;\n",
               "ALTER TABLE items DROP COLUMN summary;\n")
NEEDS_LOCK = ("ALTER TABLE items ALTER COLUMN n SET DEFAULT 1;\n", "ALTER TABLE items ALTER COLUMN n SET DEFAULT 0;\n")
IRREVERSIBLE = ("ALTER TABLE items DROP COLUMN note;\n", None)


class Release:
    """A release directory of the stand-in (manage.py, migrations/items/*.sql) and its environment file."""

    def __init__(self, root: Path, lab) -> None:
        self.dir = root / "release"
        (self.dir / "migrations" / "items").mkdir(parents=True)
        shutil.copy(MANAGE, self.dir / "manage.py")
        self.env_file = root / "app.env"
        self.env_file.write_text("DB_NAME=%s\nDB_PRIMARY_HOST=%s\nDB_PORT=5432\nDB_USER=postgres\nDB_PASSWORD=%s\n"
                                 % (DB, lab.addresses["pg1"], LAB_PASSWORD))

    def add(self, name: str, forward: str, reverse: str | None) -> None:
        (self.dir / "migrations" / "items" / (name + ".sql")).write_text(forward)
        if reverse is not None:
            (self.dir / "migrations" / "items" / (name + ".reverse.sql")).write_text(reverse)

    def module(self, check: bool = False, **args):
        base = {"chdir": str(self.dir), "command": [sys.executable, "manage.py"],
                "environment": {"MUEJAM_ENV_FILE": str(self.env_file)}}
        if check:
            base["_ansible_check_mode"] = True
        run = run_module("app_migrations", {**base, **args}, timeout=120)
        assert LAB_PASSWORD not in run.output
        return run


@pytest.fixture()
def release(pg_lab, tmp_path):
    pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % DB)
    pg_lab.sql("pg1", "CREATE DATABASE %s" % DB)
    rel = Release(tmp_path, pg_lab)
    for name, (forward, reverse) in MIGRATIONS.items():
        rel.add(name, forward, reverse)
    rel.lab = pg_lab
    yield rel
    pg_lab.sql("pg1", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'" % DB)
    pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % DB)


def sql(lab, statement):
    return lab.sql("pg1", statement, DB)


def columns(lab):
    return [r[0] for r in sql(lab, "SELECT column_name FROM information_schema.columns WHERE table_name = 'items' "
                                   "ORDER BY ordinal_position")]


def recorded(lab):
    return [r[0] for r in sql(lab, "SELECT name FROM django_migrations WHERE app = 'items' ORDER BY name")]


def test_status_migrate_and_a_second_run(release):
    lab = release.lab
    status = release.module(action="status", sql=True).result
    assert status["pending"] == ["items.0001_initial", "items.0002_items_note", "items.0003_items_n_idx"]
    assert "CREATE INDEX CONCURRENTLY" in status["sql"]["items.0003_items_n_idx"]
    assert "BEGIN;" in status["sql"]["items.0002_items_note"]

    checked = release.module(action="migrate", check=True).result
    assert checked["changed"] is True
    assert sql(lab, "SELECT to_regclass('items')")[0][0] is None

    done = release.module(action="migrate").result
    assert not done.get("failed"), done
    assert done["applied_now"] == status["pending"] and done["changed"] is True
    assert recorded(lab) == ["0001_initial", "0002_items_note", "0003_items_n_idx"]
    assert sql(lab, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_n_idx'::regclass") == [(True,)]
    assert columns(lab) == ["id", "body", "n", "note"]

    again = release.module(action="migrate").result
    assert again["changed"] is False and again["applied_now"] == []
    assert release.module(action="status").result["state"] == {"items": "0003_items_n_idx"}


def test_unknown_target_is_refused(release):
    release.module(action="migrate", target="items.0002")
    run = release.module(action="status", target="items.0099_nope")
    assert run.failed and "0099_nope" in run.result["msg"] and "Nothing was changed" in run.result["msg"]
    backwards = release.module(action="status", target="items.0001")
    assert backwards.failed and "Nothing was changed" in backwards.result["msg"]
    assert recorded(release.lab) == ["0001_initial", "0002_items_note"]


def test_a_migration_failing_half_way_leaves_nothing(release):
    release.module(action="migrate")
    release.add("0004_half_broken", *HALF_BROKEN)
    run = release.module(action="migrate")
    assert run.failed
    assert run.result["failed_migration"] == "items.0004_half_broken"
    assert "no_such_column" in run.result["error"]
    assert run.result["attempts"] == 1 and run.result["lock_timeout"] is False
    assert "summary" not in columns(release.lab)
    assert "0004_half_broken" not in recorded(release.lab)


def test_a_lock_fails_fast_on_lock_timeout_without_queueing_writers(release):
    lab = release.lab
    release.module(action="migrate")
    release.add("0004_n_default", *NEEDS_LOCK)
    holder = lab.connect("pg1", DB)
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute("SELECT count(*) FROM items")  # ACCESS SHARE until the transaction ends
    waits: list[float] = []
    stop = threading.Event()

    def writer():
        conn = lab.connect("pg1", DB)
        n = 100000
        while not stop.is_set():
            n += 1
            start = time.monotonic()
            with conn.cursor() as cur:
                cur.execute("INSERT INTO items (id, body) VALUES (%s, 'w')", (n,))
            waits.append(time.monotonic() - start)
            time.sleep(0.02)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        started = time.monotonic()
        run = release.module(action="migrate", lock_timeout="500ms", retries=2, retry_delay=0.2)
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        holder.rollback()
        holder.close()
    assert run.failed
    assert run.result["lock_timeout"] is True and run.result["attempts"] == 3
    assert "on a lock" in run.result["msg"]
    assert took < 15, took
    assert "0004_n_default" not in recorded(lab)
    assert len(waits) > 20
    # a writer queued behind the DDL waits at most its lock_timeout (plus scheduling), not until the lock holder ends
    assert max(waits) < 1.5, max(waits)
    # once the lock is gone the same migration applies
    assert release.module(action="migrate").result["applied_now"] == ["items.0004_n_default"]


def test_reverse_and_an_irreversible_migration(release):
    lab = release.lab
    release.module(action="migrate", target="items.0002")
    before = release.module(action="status").result["state"]
    checksum = sql(lab, "SELECT md5(string_agg(md5(i::text), '' ORDER BY id)) FROM items i")
    release.module(action="migrate")
    plan = release.module(action="reverse_plan", before=before).result
    assert plan["to_unapply"] == ["items.0003_items_n_idx"] and plan["rollback"]["method"] == "reverse"
    done = release.module(action="reverse", before=before).result
    assert done["unapplied"] == ["items.0003_items_n_idx"]
    assert recorded(lab) == ["0001_initial", "0002_items_note"]
    assert sql(lab, "SELECT to_regclass('items_n_idx')")[0][0] is None
    assert sql(lab, "SELECT md5(string_agg(md5(i::text), '' ORDER BY id)) FROM items i") == checksum

    release.add("0004_drop_note", *IRREVERSIBLE)
    release.module(action="migrate")
    refused = release.module(action="reverse_plan", before=before).result
    assert refused["irreversible"] == ["items.0004_drop_note"] and refused["rollback"]["method"] == "refuse"
    restore = release.module(action="reverse_plan", before=before, restore_allowed=True).result
    assert restore["rollback"]["method"] == "restore"
    run = release.module(action="reverse", before=before)
    assert run.failed and "irreversible" in run.result["msg"]
    assert recorded(lab) == ["0001_initial", "0002_items_note", "0003_items_n_idx", "0004_drop_note"]


def test_migration_check_finds_long_transactions_and_a_standby(release):
    lab = release.lab
    args = {**lab.conn_args("pg1"), "app_database": DB, "max_transaction_seconds": 1, "fail_on_problems": False}
    quiet = run_module("pg_migration_check", args).result
    assert [r["state"] for r in quiet["replicas"]] == ["streaming"]
    assert quiet["server"]["database_bytes"] > 0 and quiet["server"]["in_recovery"] is False
    # run from this machine, the data directory is elsewhere: said so, not guessed (unless this machine has a
    # directory of that name, as a controller with Debian's PostgreSQL of the same version does)
    if not os.path.isdir(quiet["server"]["data_directory"]):
        assert quiet["free_bytes"] is None and any("not on this host" in p for p in quiet["problems"])

    holder = lab.connect("pg1", DB)
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute("SELECT 1")
    time.sleep(2.5)
    try:
        found = run_module("pg_migration_check", args).result
        failing = run_module("pg_migration_check", dict(args, fail_on_problems=True))
    finally:
        holder.rollback()
        holder.close()
    assert len(found["long_transactions"]) == 1
    assert any("idle in transaction" in p for p in found["problems"])
    assert failing.failed and "Nothing was changed" in failing.result["msg"]

    standby = run_module("pg_migration_check", {**lab.conn_args("pg2"), "app_database": DB,
                                                "fail_on_problems": False}).result
    assert any("standby" in p for p in standby["problems"])

    lagging = run_module("pg_migration_check", dict(args, min_replicas=2)).result
    assert any("1 replica(s) stream from this primary, 2 expected" in p for p in lagging["problems"])


def test_database_swap(pg_lab):
    for name in ("swap_it", "swap_it_rb", "swap_it_old"):
        pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % name)
    pg_lab.sql("pg1", "CREATE DATABASE swap_it")
    pg_lab.sql("pg1", "CREATE DATABASE swap_it_rb")
    pg_lab.sql("pg1", "CREATE TABLE restored (v text)", "swap_it_rb")
    args = {**pg_lab.conn_args("pg1"), "name": "swap_it", "replacement": "swap_it_rb", "keep_as": "swap_it_old"}

    def names():
        return sorted(r[0] for r in pg_lab.sql("pg1", "SELECT datname FROM pg_database WHERE datname LIKE 'swap_it%'"))

    session = pg_lab.connect("pg1", "swap_it")
    try:
        refused = run_module("pg_database_swap", args)
        assert refused.failed and "stop the application first" in refused.result["msg"]
        assert names() == ["swap_it", "swap_it_rb"]
        checked = run_module("pg_database_swap", dict(args, _ansible_check_mode=True)).result
        assert checked["changed"] is True and names() == ["swap_it", "swap_it_rb"]
        done = run_module("pg_database_swap", dict(args, terminate_sessions=True)).result
    finally:
        session.close()
    assert done["changed"] is True and len(done["terminated"]) == 1
    assert names() == ["swap_it", "swap_it_old"]
    assert pg_lab.sql("pg1", "SELECT to_regclass('restored') IS NOT NULL", "swap_it") == [(True,)]
    again = run_module("pg_database_swap", args).result
    assert again["changed"] is False
    for name in ("swap_it", "swap_it_old"):
        pg_lab.sql("pg1", "DROP DATABASE %s" % name)


def test_wrong_password_is_a_clear_error_and_changes_nothing(pg_lab):
    for name in ("swap_pw", "swap_pw_rb"):
        pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % name)
        pg_lab.sql("pg1", "CREATE DATABASE %s" % name)
    wrong = pg_lab.conn_args("pg1", login_password="not-the-password")
    swap = run_module("pg_database_swap", {**wrong, "name": "swap_pw", "replacement": "swap_pw_rb",
                                           "keep_as": "swap_pw_old"})
    check = run_module("pg_migration_check", {**wrong, "app_database": DB})
    for result in (swap, check):
        assert result.failed and "Authentication failed" in result.result["msg"], result.result["msg"]
        assert "not-the-password" not in result.output
    assert sorted(r[0] for r in pg_lab.sql("pg1", "SELECT datname FROM pg_database WHERE datname LIKE 'swap_pw%'")) \
        == ["swap_pw", "swap_pw_rb"]
    for name in ("swap_pw", "swap_pw_rb"):
        pg_lab.sql("pg1", "DROP DATABASE %s" % name)
