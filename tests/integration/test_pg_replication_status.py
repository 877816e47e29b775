"""pg_replication_status against a real primary and streaming standby, on PostgreSQL 13, 15 and 17."""

from __future__ import annotations

import time

from dbops_it import LAB_PASSWORD, ROOT, run_module

TEN_MB = 10 * 1024 * 1024


def status(pg_lab, host="pg1", **args):
    return run_module("pg_replication_status", {**pg_lab.conn_args(host), **args})


def caught_up(pg_lab):
    run = status(pg_lab, max_lag_bytes=0, min_streaming_replicas=1)
    return run.result if run.result.get("healthy") else None


def test_primary_reports_standby_and_slot(pg_lab):
    result = pg_lab.wait_for(lambda: caught_up(pg_lab), what="the standby to catch up")
    assert result["role"] == "primary"
    assert result["server_version_num"] // 10000 == pg_lab.version
    assert result["timeline"] == 1
    assert result["changed"] is False
    [standby] = result["replicas"]
    assert standby["application_name"] == "pg2"
    assert standby["client_addr"] == pg_lab.addresses["pg2"]
    assert standby["state"] == "streaming"
    assert standby["sync_state"] == "async"
    assert standby["replay_lsn"] == result["current_lsn"]
    assert (standby["lag_bytes"], standby["lag_seconds"]) == (0, 0)
    [slot] = [s for s in result["slots"] if s["slot_name"] == "pg2"]
    assert slot["active"] is True and slot["slot_type"] == "physical"
    assert slot["retained_bytes"] >= 0


def test_standby_reports_upstream_without_password(pg_lab):
    pg_lab.wait_for(lambda: caught_up(pg_lab), what="the standby to catch up")
    run = status(pg_lab, "pg2", expected_role="standby")
    result = run.result
    assert result["role"] == "standby"
    assert result["timeline"] == 1
    standby = result["standby"]
    assert standby["upstream_host"] == "pg1"
    assert standby["upstream_port"] == 5432
    assert standby["receiver_status"] == "streaming"
    assert standby["slot_name"] == "pg2"
    assert standby["received_lsn"] == standby["replayed_lsn"]
    assert (standby["lag_bytes"], standby["lag_seconds"]) == (0, 0)
    assert "host=pg1" in standby["upstream_conninfo"]
    assert "password" not in standby["upstream_conninfo"]
    assert LAB_PASSWORD not in run.output
    assert result["healthy"] is True


def test_idle_primary_does_not_grow_standby_lag(pg_lab):
    """The last replayed transaction gets older while nothing happens; that is not lag."""
    pg_lab.wait_for(lambda: caught_up(pg_lab), what="the standby to catch up")
    time.sleep(3)
    assert status(pg_lab, "pg2").result["standby"]["lag_seconds"] == 0


def test_paused_replay_shows_byte_lag_then_recovers(pg_lab):
    pg_lab.wait_for(lambda: caught_up(pg_lab), what="the standby to catch up")
    pg_lab.sql("pg2", "SELECT pg_wal_replay_pause()")
    try:
        pg_lab.sql("pg1", "CREATE TABLE IF NOT EXISTS lag_probe (id int, pad text)", "muejam_library")
        pg_lab.sql("pg1", "INSERT INTO lag_probe SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 40000) g",
                   "muejam_library")

        def received_all():
            run = status(pg_lab, max_lag_bytes=1024 * 1024)
            [standby] = run.result["replicas"]
            return run.result if standby["flush_lsn"] == run.result["current_lsn"] else None

        lagging = pg_lab.wait_for(received_all, what="the standby to receive the WAL")
        [standby] = lagging["replicas"]
        assert standby["lag_bytes"] > TEN_MB
        assert lagging["healthy"] is False
        assert any("pg2 replay lag is" in p and "(limit 1048576)" in p for p in lagging["problems"])

        on_standby = status(pg_lab, "pg2", max_lag_bytes=1024 * 1024).result
        assert on_standby["standby"]["replay_paused"] is True
        assert on_standby["standby"]["lag_bytes"] > TEN_MB
        assert on_standby["healthy"] is False
        assert "WAL replay is paused (pg_wal_replay_resume() resumes it)" in on_standby["problems"]

        failing = status(pg_lab, max_lag_bytes=1024 * 1024, fail_on_unhealthy=True).result
        assert failing["failed"] is True
        assert failing["msg"].startswith("Replication is unhealthy: standby pg2 replay lag is")
    finally:
        pg_lab.sql("pg2", "SELECT pg_wal_replay_resume()")
        pg_lab.sql("pg1", "DROP TABLE IF EXISTS lag_probe", "muejam_library")

    recovered = pg_lab.wait_for(lambda: caught_up(pg_lab), what="lag to return to 0")
    assert recovered["replicas"][0]["lag_bytes"] == 0
    assert status(pg_lab, "pg2").result["standby"]["lag_bytes"] == 0


def test_compare_lsn_on_primary_and_standby(pg_lab):
    """past_compare_lsn: the failover's test for a replica that went past a new timeline's start."""
    for host in ("pg1", "pg2"):
        assert status(pg_lab, host, compare_lsn="0/0").result["past_compare_lsn"] is True
        assert status(pg_lab, host, compare_lsn="FFFFFFFF/0").result["past_compare_lsn"] is False
    before = pg_lab.sql("pg1", "SELECT pg_current_wal_lsn()::text")[0][0]
    pg_lab.sql("pg1", "CREATE TABLE IF NOT EXISTS compare_probe AS SELECT 1 AS id")
    assert status(pg_lab, "pg1", compare_lsn=before).result["past_compare_lsn"] is True
    pg_lab.wait_for(lambda: status(pg_lab, "pg2", compare_lsn=before).result["past_compare_lsn"],
                    what="the standby to receive WAL past %s" % before)
    assert "past_compare_lsn" not in status(pg_lab, "pg1").result
    bad = status(pg_lab, "pg1", compare_lsn="not-an-lsn")
    assert bad.failed and "pg_lsn" in bad.result["msg"]


def test_expected_role_mismatch_is_a_problem(pg_lab):
    result = status(pg_lab, "pg2", expected_role="primary").result
    assert result["healthy"] is False
    assert "server is a standby, expected a primary" in result["problems"]


def assert_clean_failure(run, *expected):
    assert run.failed, run.result
    for text in expected:
        assert text in run.result["msg"]
    assert "Traceback" not in run.output
    assert LAB_PASSWORD not in run.output
    assert "wrong-" not in run.output


def test_wrong_password(pg_lab):
    run = status(pg_lab, login_password="wrong-" + LAB_PASSWORD)
    assert_clean_failure(run, "Authentication failed", "check login_user/login_password")


def test_unreachable_server(pg_lab):
    # A port on our own lab container where nothing listens.
    run = status(pg_lab, login_port=5999)
    assert_clean_failure(run, "The server is unreachable", "%s:5999" % pg_lab.addresses["pg1"])


def test_missing_database(pg_lab):
    run = status(pg_lab, login_db="no_such_db")
    assert_clean_failure(run, "The database does not exist", "no_such_db")


def test_psycopg2_missing(tmp_path):
    """On a host without psycopg2 the module says what to install (it fails before connecting)."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['psycopg2'] = None\n")
    run = run_module("pg_replication_status",
                     {"login_host": "127.0.0.1", "login_password": LAB_PASSWORD},
                     env={"PYTHONPATH": "%s:%s" % (tmp_path, ROOT / ".collections")})
    assert_clean_failure(run, "Failed to import the required Python library (psycopg2)")


def test_archiving_reported_and_expected(pg_lab):
    """The lab's primary does not archive: reported in archiving, a problem only with expect_archiving."""
    plain = status(pg_lab).result
    assert plain["archiving"]["archive_mode"] == "off"
    assert plain["archiving"]["archives"] is False and plain["archiving"]["failing"] is False
    assert plain["detached"] is None
    assert not [p for p in plain["problems"] if "archive" in p]
    expected = status(pg_lab, expect_archiving=True).result
    assert expected["healthy"] is False
    assert [p for p in expected["problems"] if p.startswith("the primary does not archive WAL (archive_mode=off)")]
    standby = status(pg_lab, "pg2", expect_archiving=True).result
    assert standby["role"] == "standby" and not [p for p in standby["problems"] if "archive" in p]
