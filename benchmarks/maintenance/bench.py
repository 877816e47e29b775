#!/usr/bin/env python
"""The runbook's weekly maintenance statements against playbooks/weekly_maintenance.yml, on the same bloated
database with the same writer, in one run.

    .venv/bin/python benchmarks/maintenance/bench.py [--gb 1.2] [--delete-percent 80] [--suite bookworm] [--keep]

Starts a lab of its own (prefix dbops-bench-mt, host pg1), builds a template database of at least --gb GB of
random text and numbers (the add_replica benchmark's generator: random words, numbers and dates, about 6.5:1
with zstd -3, unlike pgbench's blank filler) with four indexes on its big table, then deletes --delete-percent
of the rows, spread over every page (autovacuum off on the table, so the bloat waits for the maintenance). For
each side, a fresh copy of that template (CREATE DATABASE ... TEMPLATE), ANALYZE (the copy has no statistics),
CHECKPOINT, and a writer that inserts a row into the big table every 10 ms on its own connection and records
the longest any insert took. Then:

  baseline  the runbook's three statements, in psql on the host: VACUUM ANALYZE; REINDEX DATABASE <db>; ANALYZE;
  playbook  ansible-playbook playbooks/weekly_maintenance.yml --limit pg1 -e pg_maintenance_databases=[<db>]
            (statistics read, VACUUM / ANALYZE where needed, REINDEX INDEX CONCURRENTLY of the bloated indexes,
            sizes and statements reported, logs checked; the backup check is off: this lab has no S3)

Printed for each: total time, the writer's longest insert (the stall), inserts done and failed, the database
size before and after (the space reclaimed), and the ratios. Goal (issue 14): the playbook's longest stall
under 1 s. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "dbops-bench-mt"
PASSWORD = "lab-superuser-secret"  # inventories/lab/group_vars/all.yml
TEMPLATE = "bench_bloat"

# The generator is the add_replica benchmark's (one copy of it); loaded by path, both files are named bench.py.
_SPEC = importlib.util.spec_from_file_location("add_replica_bench", ROOT / "benchmarks" / "add_replica" / "bench.py")
_DATA = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_DATA)

INDEXES = """
ALTER TABLE bench_documents SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
CREATE INDEX IF NOT EXISTS bench_documents_author_idx ON bench_documents (author);
CREATE INDEX IF NOT EXISTS bench_documents_published_idx ON bench_documents (published);
CREATE INDEX IF NOT EXISTS bench_documents_title_idx ON bench_documents (title);
"""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        sys.exit("failed (%s): %s\n%s%s" % (proc.returncode, " ".join(cmd), proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def psql(sql: str, db: str) -> str:
    return run(["docker", "exec", "-i", "-u", "postgres", "%s-pg1" % PREFIX, "psql", "-XAtq", "-v",
                "ON_ERROR_STOP=1", "-d", db], input=sql).stdout.strip()


def ansible_env(report_dir: str) -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1"}


def build_template(gb: float, delete_percent: int) -> dict:
    psql("DROP DATABASE IF EXISTS %s" % TEMPLATE, "postgres")
    psql("CREATE DATABASE %s" % TEMPLATE, "postgres")
    psql(_DATA.FILL_SQL, TEMPLATE)
    psql(INDEXES, TEMPLATE)
    start, batch, target = 1, 200_000, int(gb * 1024 ** 3)
    while True:
        size = int(psql("SELECT pg_database_size(current_database())", TEMPLATE))
        if size >= target:
            break
        print("  data: %.2f GB of %.2f GB" % (size / 1024 ** 3, gb), flush=True)
        psql(_DATA.BATCH_SQL % {"start": start, "end": start + batch - 1}, TEMPLATE)
        start += batch
    rows = int(psql("SELECT count(*) FROM bench_documents", TEMPLATE))
    # every page keeps rows (no trailing empty pages VACUUM could truncate): what a churned table looks like
    psql("DELETE FROM bench_documents WHERE mod(id * 7919, 100) < %d" % delete_percent, TEMPLATE)
    psql("CHECKPOINT", "postgres")
    return {"rows": rows, "bytes": int(psql("SELECT pg_database_size(current_database())", TEMPLATE))}


class Writer(threading.Thread):
    """Inserts a row every 10 ms on its own connection (no lock_timeout: an application's insert waits); the
    longest insert is the stall a client saw."""

    def __init__(self, host: str, db: str) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg2.connect(host=host, user="postgres", password=PASSWORD, dbname=db,
                                     application_name="bench-writer")
        self.conn.autocommit = True
        self.stop = threading.Event()
        self.longest = 0.0
        self.done = 0
        self.failed = 0

    def run(self) -> None:
        cur = self.conn.cursor()
        next_id = 10 ** 12
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                cur.execute("INSERT INTO bench_documents (id, author, title, body, score, views, published) "
                            "VALUES (%s, 'writer', 'bench', md5(random()::text), random(), 1, now())", (next_id,))
                self.done += 1
            except psycopg2.Error:
                self.failed += 1
            self.longest = max(self.longest, time.monotonic() - began)
            next_id += 1
            time.sleep(0.01)
        self.conn.close()


def measure(side: str, host: str, report_dir: str) -> dict:
    db = "bench_" + side
    psql("DROP DATABASE IF EXISTS %s" % db, "postgres")
    psql("CREATE DATABASE %s TEMPLATE %s" % (db, TEMPLATE), "postgres")
    psql("ANALYZE", db)
    psql("CHECKPOINT", "postgres")
    before = int(psql("SELECT pg_database_size(current_database())", db))
    writer = Writer(host, db)
    writer.start()
    time.sleep(2)
    steps = {}
    began = time.monotonic()
    if side == "baseline":
        for statement in ("VACUUM ANALYZE", "REINDEX DATABASE %s" % db, "ANALYZE"):
            step = time.monotonic()
            psql(statement, db)
            steps[statement.split(" ")[0] + (" DATABASE" if "DATABASE" in statement else "")] = round(
                time.monotonic() - step, 1)
    else:
        run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/weekly_maintenance.yml",
             "--limit", "pg1", "-e", "dbops_lab_prefix=" + PREFIX, "-e", json.dumps({
                 "pg_maintenance_databases": [db], "pg_maintenance_verify_backup": False,
                 "pg_maintenance_report_dir": report_dir})], cwd=ROOT, env=ansible_env(report_dir))
    elapsed = time.monotonic() - began
    time.sleep(2)
    writer.stop.set()
    writer.join()
    after = int(psql("SELECT pg_database_size(current_database())", db))
    dead = int(psql("SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables", db))
    result = {"side": side, "seconds": round(elapsed, 1), "steps": steps, "longest_insert_s": round(writer.longest, 3),
              "inserts": writer.done, "failed_inserts": writer.failed, "bytes_before": before, "bytes_after": after,
              "reclaimed_mb": round((before - after) / 2 ** 20, 1), "dead_tuples_after": dead}
    if side == "playbook":
        report = json.loads((Path(report_dir) / "weekly-maintenance-latest.json").read_text())
        result["report"] = {"status": report["status"], "counts": report["counts"]}
    psql("DROP DATABASE %s" % db, "postgres")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.2)
    parser.add_argument("--delete-percent", type=int, default=80)
    parser.add_argument("--suite", default="bookworm", choices=["bullseye", "bookworm", "trixie"])
    parser.add_argument("--keep", action="store_true", help="keep the lab containers afterwards")
    args = parser.parse_args()
    lab = [sys.executable, str(ROOT / "lab" / "lab.py")]
    run(lab + ["down", "--prefix", PREFIX])
    try:
        addresses = json.loads(run(lab + ["up", "--suite", args.suite, "--prefix", PREFIX, "--hosts", "pg1"]).stdout)
        with tempfile.TemporaryDirectory() as report_dir:
            run([str(Path(sys.executable).parent / "ansible-playbook"), "lab/provision.yml", "--limit", "pg1",
                 "-e", "dbops_lab_prefix=" + PREFIX], cwd=ROOT, env=ansible_env(report_dir))
            # the lab container's /dev/shm is Docker's 64 MB: parallel VACUUM and index builds need more shared
            # memory than that, so both sides run without parallel maintenance workers
            psql("ALTER SYSTEM SET max_parallel_maintenance_workers = 0", "postgres")
            psql("SELECT pg_reload_conf()", "postgres")
            began = time.monotonic()
            template = build_template(args.gb, args.delete_percent)
            print("template: %d rows, %d %% deleted, %.2f GB (built in %.0f s)" % (
                template["rows"], args.delete_percent, template["bytes"] / 1024 ** 3, time.monotonic() - began),
                flush=True)
            results = {}
            for side in ("baseline", "playbook"):
                results[side] = measure(side, addresses["pg1"], report_dir)
                print(json.dumps(results[side]), flush=True)
    finally:
        if not args.keep:
            run(lab + ["down", "--prefix", PREFIX])
    base, ours = results["baseline"], results["playbook"]
    print()
    print("%-40s %12s %12s %8s" % ("", "runbook", "playbook", "ratio"))
    for label, key in (("total time (s)", "seconds"), ("writer's longest insert (s)", "longest_insert_s"),
                       ("space reclaimed (MB)", "reclaimed_mb")):
        ratio = ours[key] / base[key] if base[key] else float("nan")
        print("%-40s %12s %12s %8.2f" % (label, base[key], ours[key], ratio))
    counts = ["%d / %d" % (side["inserts"], side["failed_inserts"]) for side in (base, ours)]
    print("%-40s %12s %12s" % ("inserts done / failed", counts[0], counts[1]))
    print("%-40s %12s %12s" % ("dead tuples after", base["dead_tuples_after"], ours["dead_tuples_after"]))
    print("goal: the playbook's longest stall under 1 s: %s" % ("met" if ours["longest_insert_s"] < 1 else "NOT met"))


if __name__ == "__main__":
    main()
