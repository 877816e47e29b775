"""pg_vacuum, pg_reindex and pg_maintenance_info against real servers (PostgreSQL 13, 15, 17): dead tuples
vacuumed, a bloated index halved by a concurrent rebuild while a writer inserts, invalid indexes rebuilt or
dropped, a locked table skipped instead of waited on, a standby skipped, pg_stat_statements read per version."""

from __future__ import annotations

import threading
import time

import pytest

from dbops_it import LAB_PASSWORD, run_module

DB = "maint_it"


@pytest.fixture()
def mdb(pg_lab):
    """A scratch database on the primary, dropped afterwards (the shared lab stays as it was)."""
    pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % DB)
    pg_lab.sql("pg1", "CREATE DATABASE %s" % DB)
    yield pg_lab
    pg_lab.sql("pg1", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'" % DB)
    pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % DB)


def sql(lab, statement, host="pg1"):
    return lab.sql(host, statement, DB)


def module(lab, name, host="pg1", check=False, **args):
    base = {**lab.conn_args(host), "databases": [DB]}
    if check:
        base["_ansible_check_mode"] = True
    run = run_module(name, {**base, **args}, timeout=300)
    assert LAB_PASSWORD not in run.output
    return run


def dead_tuples(lab, table):
    return sql(lab, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = '%s'" % table)[0][0]


def make_table(lab, table, rows, index=True):
    """A table of random text and numbers (autovacuum off, so only our run cleans it)."""
    sql(lab, "CREATE TABLE %s (id bigserial PRIMARY KEY, n int, body text) WITH (autovacuum_enabled = false)" % table)
    # n is unique (a unique index over it is valid until a test makes duplicates), its order random
    sql(lab, "INSERT INTO %s (n, body) SELECT g * 1000 + (random() * 999)::int, md5(random()::text) || "
             "md5(random()::text) FROM generate_series(1, %d) AS g" % (table, rows))
    if index:
        sql(lab, "CREATE INDEX %s_body_idx ON %s (body)" % (table, table))
    sql(lab, "ANALYZE %s" % table)


def index_state(lab, name):
    return sql(lab, "SELECT c.oid, pg_relation_size(c.oid), i.indisvalid FROM pg_class c JOIN pg_index i "
                    "ON i.indexrelid = c.oid WHERE c.relname = '%s'" % name)


def test_dead_tuples_are_vacuumed_and_check_mode_changes_nothing(mdb):
    make_table(mdb, "dead", 50000, index=False)
    sql(mdb, "DELETE FROM dead WHERE id % 10 < 6")
    before = mdb.wait_for(lambda: dead_tuples(mdb, "dead") >= 30000, what="the statistics to count dead tuples")
    assert before
    checked = module(mdb, "pg_vacuum", check=True).result
    [planned] = [p for p in checked["plan"] if p["table"] == "dead"]
    assert planned["action"] == "vacuum analyze" and "30000 dead tuples" in planned["reasons"][0]
    assert checked["changed"] is True and checked["done"] == []
    assert dead_tuples(mdb, "dead") >= 30000

    result = module(mdb, "pg_vacuum").result
    [done] = [d for d in result["done"] if d["table"] == "dead"]
    assert done["action"] == "vacuum analyze"
    assert mdb.wait_for(lambda: dead_tuples(mdb, "dead") < 300, what="n_dead_tup near 0")
    assert result["checks"][0]["status"] == "ok"

    again = module(mdb, "pg_vacuum").result
    assert [p for p in again["plan"] if p["table"] == "dead"] == []


def writer(lab, table, stop, waits):
    conn = lab.connect("pg1", DB)
    try:
        with conn.cursor() as cur:
            while not stop.is_set():
                began = time.monotonic()
                cur.execute("INSERT INTO %s (n, body) VALUES (1, md5(random()::text))" % table)
                waits.append(time.monotonic() - began)
                time.sleep(0.005)
    finally:
        conn.close()


def test_bloated_index_is_rebuilt_concurrently_while_a_writer_inserts(mdb):
    make_table(mdb, "bloat", 200000)
    sql(mdb, "CREATE EXTENSION pgstattuple")
    sql(mdb, "DELETE FROM bloat WHERE id % 10 <> 0")
    oid, size_before, _valid = index_state(mdb, "bloat_body_idx")[0]

    checked = module(mdb, "pg_reindex", check=True, min_index_mb=1, check_free_space=False).result
    assert checked["plan"] == [] and checked["done"] == []  # dead entries are not bloat until VACUUM frees them

    stop, waits = threading.Event(), []
    thread = threading.Thread(target=writer, args=(mdb, "bloat", stop, waits))
    thread.start()
    try:
        time.sleep(0.5)
        vacuumed = module(mdb, "pg_vacuum", lock_timeout_ms=1000).result
        assert [d["table"] for d in vacuumed["done"]] == ["bloat"]
        planned = module(mdb, "pg_reindex", check=True, min_index_mb=1, check_free_space=False).result
        assert {p["index"]: p["action"] for p in planned["plan"]} == {"bloat_body_idx": "reindex",
                                                                      "bloat_pkey": "reindex"}
        for item in planned["plan"]:
            assert item["estimated_bloat"] > 0.5 and item["measured_bloat"] > 0.5
            assert "pgstattuple" in item["reason"]
        assert index_state(mdb, "bloat_body_idx")[0][0] == oid  # check mode rebuilt nothing
        result = module(mdb, "pg_reindex", min_index_mb=1, check_free_space=False, lock_timeout_ms=1000).result
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    [done] = [d for d in result["done"] if d["index"] == "bloat_body_idx"]
    assert {d["index"] for d in result["done"]} == {"bloat_body_idx", "bloat_pkey"}
    new_oid, size_after, valid = index_state(mdb, "bloat_body_idx")[0]
    assert valid and new_oid != oid
    assert size_after * 2 <= size_before, (size_before, size_after)
    assert done["bytes_after"] == size_after
    assert len(waits) > 100 and max(waits) < 1.0, "the writer waited %.3f s" % max(waits)
    assert sql(mdb, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%_cc%'")[0][0] == 0
    again = module(mdb, "pg_reindex", min_index_mb=1, check_free_space=False).result
    assert again["plan"] == [] and again["changed"] is False


def test_invalid_indexes_are_rebuilt_or_dropped(mdb):
    make_table(mdb, "inv", 5000, index=False)
    sql(mdb, "UPDATE inv SET n = 7 WHERE id <= 2")
    for name in ("inv_n_key", "inv_other_key"):
        with pytest.raises(Exception, match="could not create unique index"):
            sql(mdb, "CREATE UNIQUE INDEX CONCURRENTLY %s ON inv (n)" % name)
        assert index_state(mdb, name)[0][2] is False

    failed = module(mdb, "pg_reindex", check_free_space=False).result
    assert {s["index"] for s in failed["skipped"]} == {"inv_n_key", "inv_other_key"}
    assert all("duplicate" in s["reason"] or "could not create" in s["reason"] for s in failed["skipped"])
    assert sql(mdb, "SELECT count(*) FROM pg_class WHERE relname LIKE 'inv_%_ccnew%'")[0][0] == 0

    sql(mdb, "UPDATE inv SET n = -id WHERE id <= 2")
    dropped = module(mdb, "pg_reindex", check_free_space=False, invalid_action="drop", check=True).result
    assert {p["index"]: p["action"] for p in dropped["plan"]} == {"inv_n_key": "drop", "inv_other_key": "drop"}
    assert len(index_state(mdb, "inv_other_key")) == 1
    rebuilt = module(mdb, "pg_reindex", check_free_space=False).result
    assert {d["index"] for d in rebuilt["done"]} == {"inv_n_key", "inv_other_key"}
    assert index_state(mdb, "inv_n_key")[0][2] is True

    sql(mdb, "DROP INDEX inv_n_key, inv_other_key")
    sql(mdb, "UPDATE inv SET n = 7 WHERE id <= 2")
    with pytest.raises(Exception, match="could not create unique index"):
        sql(mdb, "CREATE UNIQUE INDEX CONCURRENTLY inv_n_key ON inv (n)")
    gone = module(mdb, "pg_reindex", check_free_space=False, invalid_action="drop").result
    assert [(d["index"], d["action"]) for d in gone["done"]] == [("inv_n_key", "drop")]
    assert index_state(mdb, "inv_n_key") == []


def test_locked_table_is_skipped_not_waited_on(mdb):
    make_table(mdb, "locked", 20000)
    sql(mdb, "DELETE FROM locked WHERE id % 10 <> 0")
    mdb.wait_for(lambda: dead_tuples(mdb, "locked") >= 18000, what="dead tuples counted")
    holder = mdb.connect("pg1", DB)
    holder.autocommit = False
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        began = time.monotonic()
        result = module(mdb, "pg_vacuum", lock_timeout_ms=500, retries=1, retry_delay=0.2).result
        took = time.monotonic() - began
        reindex = module(mdb, "pg_reindex", lock_timeout_ms=500, retries=0, min_index_mb=0.1,
                         check_free_space=False).result
    finally:
        holder.rollback()
        holder.close()
    [skipped] = [s for s in result["skipped"] if s["table"] == "locked"]
    assert "locked by another session" in skipped["reason"] and "AccessExclusiveLock" in skipped["reason"]
    assert "2 attempt(s)" in skipped["reason"]
    assert result["done"] == [] and took < 15
    assert result["checks"][0]["status"] == "warn"
    assert reindex["done"] == []
    assert dead_tuples(mdb, "locked") >= 18000


def test_standby_is_skipped_with_a_reason(mdb):
    for name in ("pg_vacuum", "pg_reindex"):
        result = module(mdb, name, host="pg2", databases=[]).result
        assert result["changed"] is False and result["done"] == []
        assert "standby" in result["skipped_reason"]


def test_pg_stat_statements_lists_a_slow_statement(mdb):
    missing = module(mdb, "pg_maintenance_info", login_db=DB).result
    assert "not created in database 'maint_it'" in missing["pg_stat_statements"]["problem"]
    assert missing["statements"] == [] and missing["checks"][0]["status"] == "warn"
    for _attempt in range(3):
        sql(mdb, "SELECT pg_sleep(0.2)")
    created = module(mdb, "pg_maintenance_info", login_db=DB, create_extensions=["pg_stat_statements"],
                     count_rows=[DB]).result
    assert created["changed"] is True and created["created_extensions"] == ["pg_stat_statements"]
    assert created["server_version"] == mdb.version
    [slow] = [s for s in created["statements"] if "pg_sleep" in s["query"] and s["database"] == DB]
    assert slow["calls"] >= 3 and 195 <= slow["mean_ms"] < 1000 and slow["database"] == DB
    assert set(slow) >= {"io_ms", "total_ms", "max_ms", "shared_blks_read", "temp_blks_written"}
    assert created["pg_stat_statements"]["problem"] == ""
    again = module(mdb, "pg_maintenance_info", login_db=DB, create_extensions=["pg_stat_statements"]).result
    assert again["changed"] is False
    assert [d["name"] for d in created["databases"]] == [DB] and created["row_counts"] == {DB: {}}


def test_free_disk_cannot_be_checked_from_another_host(mdb):
    make_table(mdb, "far", 20000)
    sql(mdb, "DELETE FROM far WHERE id % 10 <> 0")
    sql(mdb, "VACUUM far")
    run = module(mdb, "pg_reindex", min_index_mb=0.1)
    assert run.failed and "is not the server's on the host running the module" in run.result["msg"]
    assert "check_free_space=false" in run.result["msg"]
