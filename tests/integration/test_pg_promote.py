"""pg_promote against a real standby: check mode, promotion, and a second run that changes nothing."""

from __future__ import annotations

from dbops_it import LAB_PASSWORD, run_module


def promote(pg_pair, host="pg2", **args):
    return run_module("pg_promote", {**pg_pair.conn_args(host), **args})


def in_recovery(pg_pair, host):
    return pg_pair.sql(host, "SELECT pg_is_in_recovery()")[0][0]


def test_wrong_password_changes_nothing(pg_pair):
    run = promote(pg_pair, login_password="wrong-" + LAB_PASSWORD)
    assert run.failed
    assert "Authentication failed" in run.result["msg"]
    assert LAB_PASSWORD not in run.output
    assert in_recovery(pg_pair, "pg2") is True


def test_check_mode_predicts_and_does_not_promote(pg_pair):
    run = promote(pg_pair, _ansible_check_mode=True)
    assert run.result["changed"] is True
    assert run.result["promoted"] is True
    assert run.result["timeline"] == 1
    assert run.result["msg"].startswith("would promote this standby")
    assert run.result["branch"] is None
    assert run.result["write_xid"] is None
    assert in_recovery(pg_pair, "pg2") is True


def test_primary_is_left_alone(pg_pair):
    result = promote(pg_pair, "pg1").result
    assert result["changed"] is False
    assert result["was_primary"] is True
    assert result["timeline"] == 1
    assert result["branch"] is None  # timeline 1 has no history file


def test_promotion_then_second_run_changes_nothing(pg_pair):
    pg_pair.sql("pg1", "CREATE TABLE promote_probe AS SELECT generate_series(1, 1000) AS id", "muejam_library")
    pg_pair.wait_for(lambda: pg_pair.sql("pg2", "SELECT to_regclass('promote_probe') IS NOT NULL",
                                         "muejam_library")[0][0], what="the table to replicate")
    first = promote(pg_pair, wait_seconds=30, keep_slots=["old_primary"]).result
    assert first["changed"] is True and first["promoted"] is True
    assert first["timeline"] == 2
    assert first["replayed_lsn"]
    # The new timeline branched off timeline 1, at a position the new primary's WAL has passed.
    assert first["branch"]["parent_timeline"] == 1
    assert pg_pair.sql("pg2", "SELECT pg_current_wal_lsn() >= '%s'::pg_lsn" % first["branch"]["lsn"])[0][0] is True
    assert first["slots_created"] == ["old_primary"]
    assert first["write_xid"] > 0
    assert pg_pair.sql("pg2", "SELECT slot_type, restart_lsn IS NOT NULL FROM pg_replication_slots "
                              "WHERE slot_name = 'old_primary'") == [("physical", True)]
    assert in_recovery(pg_pair, "pg2") is False
    pg_pair.sql("pg2", "INSERT INTO promote_probe VALUES (1001)", "muejam_library")
    assert pg_pair.sql("pg2", "SELECT count(*) FROM promote_probe", "muejam_library")[0][0] == 1001

    second = promote(pg_pair, keep_slots=["old_primary"]).result
    assert second["changed"] is False
    assert second["slots_created"] == []
    assert second["branch"] == first["branch"]
    assert second["write_xid"] > first["write_xid"]
    assert second["was_primary"] is True
    assert second["timeline"] == 2
    assert second["msg"] == "already a primary on timeline 2: nothing to do"
