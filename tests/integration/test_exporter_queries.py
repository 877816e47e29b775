"""The postgres_exporter queries that roles/monitoring ships, run on a real primary and standby (13, 15, 17).

The exporter itself only runs each query and turns columns into metrics; what can be wrong is the
SQL (a function that fails on a standby, a column named differently from its metric), and the
values it gives: lag 0 on an idle, caught-up cluster, lag > 0 while replay is paused.
"""

from __future__ import annotations

import pathlib

import yaml

from dbops_it import ROOT

QUERIES = yaml.safe_load(pathlib.Path(ROOT, "roles/monitoring/files/postgres_exporter_queries.yml").read_text())


def run(pg_lab, host: str, name: str) -> list[dict]:
    conn = pg_lab.connect(host)
    try:
        with conn.cursor() as cur:
            cur.execute(QUERIES[name]["query"])
            columns = [d.name for d in cur.description]
            rows = [dict(zip(columns, row)) for row in cur.fetchall()]
    finally:
        conn.close()
    declared = [next(iter(metric)) for metric in QUERIES[name]["metrics"]]
    assert columns == declared, "%s: columns %s differ from the declared metrics %s" % (name, columns, declared)
    return rows


def caught_up(pg_lab) -> bool:
    [row] = run(pg_lab, "pg1", "dbops_pg_replication")
    return row["lag_bytes"] == 0


def test_every_query_runs_on_primary_and_standby(pg_lab):
    for name in QUERIES:
        for host in ("pg1", "pg2"):
            run(pg_lab, host, name)


def test_idle_caught_up_cluster_has_no_lag(pg_lab):
    pg_lab.wait_for(lambda: caught_up(pg_lab), what="the standby to catch up")
    [standby] = run(pg_lab, "pg1", "dbops_pg_replication")
    assert (standby["application_name"], standby["client_addr"]) == ("pg2", pg_lab.addresses["pg2"])
    assert (standby["lag_bytes"], standby["lag_seconds"]) == (0, 0)
    assert run(pg_lab, "pg1", "dbops_pg_standby") == []
    [own] = run(pg_lab, "pg2", "dbops_pg_standby")
    assert (own["lag_bytes"], own["lag_seconds"], own["replay_paused"]) == (0, 0, 0)
    # The age of the last replayed transaction, which the exporter's example query reports as
    # lag, is not 0 here: that is the mistake these queries avoid.
    [[age]] = pg_lab.sql("pg2", "SELECT COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), -1)")
    assert age != 0
    slots = {row["slot_name"]: row for row in run(pg_lab, "pg1", "dbops_pg_slot")}
    assert slots["pg2"]["active"] == 1 and slots["pg2"]["slot_type"] == "physical"
    assert all(row["retained_bytes"] == 0 for row in run(pg_lab, "pg2", "dbops_pg_slot"))


def test_paused_replay_shows_lag_on_both_sides(pg_lab):
    pg_lab.wait_for(lambda: caught_up(pg_lab), what="the standby to catch up")
    pg_lab.sql("pg2", "SELECT pg_wal_replay_pause()")
    try:
        pg_lab.sql("pg1", "CREATE TABLE IF NOT EXISTS dbops_exporter_probe (id int)")
        pg_lab.sql("pg1", "INSERT INTO dbops_exporter_probe SELECT generate_series(1, 10000)")
        pg_lab.wait_for(lambda: run(pg_lab, "pg2", "dbops_pg_standby")[0]["lag_bytes"] > 0,
                        what="WAL received but not replayed")
        [own] = run(pg_lab, "pg2", "dbops_pg_standby")
        assert own["replay_paused"] == 1
        [standby] = run(pg_lab, "pg1", "dbops_pg_replication")
        assert standby["lag_bytes"] > 0
    finally:
        pg_lab.sql("pg2", "SELECT pg_wal_replay_resume()")
        pg_lab.sql("pg1", "DROP TABLE IF EXISTS dbops_exporter_probe")
    pg_lab.wait_for(lambda: caught_up(pg_lab), what="the standby to catch up after resume")
    [archiver] = run(pg_lab, "pg1", "dbops_pg_archiver")
    assert archiver["enabled"] in (0, 1) and archiver["failed"] >= 0
