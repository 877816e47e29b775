"""Replication state and Redis Cluster reports turned into report checks (the morning health check)."""

from __future__ import annotations

from ansible_collections.muejam.dbops.plugins.module_utils.redis_report import report_checks as redis_checks
from ansible_collections.muejam.dbops.plugins.module_utils.replication import find_problems, report_checks

REP = {"application_name": "pg2", "client_addr": "10.0.0.2", "state": "streaming", "lag_bytes": 0,
       "lag_seconds": 0.0}
PRIMARY = {"role": "primary",
           "replicas": [REP, dict(REP, application_name="pg3", lag_seconds=9.5, lag_bytes=2048)],
           "slots": [], "standby": {}, "archiving": None, "streaming_replicas": 2,
           "databases": [{"name": "muejam_library", "size_bytes": 10485760}]}
LIMITS = {"max_lag_seconds": 2, "max_lag_bytes": 16777216}


def test_each_standby_of_a_primary_is_a_lag_check_and_databases_are_reported():
    checks = report_checks(PRIMARY, LIMITS, find_problems(PRIMARY, LIMITS), "pg1", "lag.yml")
    lag = {c["target"]: c for c in checks if c["check"] == "replication lag"}
    assert lag["pg1 -> pg2"]["status"] == "ok"
    assert (lag["pg1 -> pg3"]["status"], lag["pg1 -> pg3"]["value"]) == ("fail", 9.5)
    assert "9.5 s (limit 2 s)" in lag["pg1 -> pg3"]["reason"] and lag["pg1 -> pg3"]["playbook"] == "lag.yml"
    server = [c for c in checks if c["check"] == "postgresql primary"][0]
    assert server["status"] == "ok"  # the lag is reported once, on its standby's check
    size = [c for c in checks if c["check"] == "database size"][0]
    assert (size["target"], size["value"], size["critical"]) == ("pg1/muejam_library", 10.0, False)


def test_a_paused_standby_fails_its_own_replay_check():
    standby = {"role": "standby", "replicas": [], "slots": [], "archiving": None, "streaming_replicas": 0,
               "standby": {"receiver_status": "streaming", "replay_paused": True, "lag_bytes": 4096,
                           "lag_seconds": 12.0}}
    checks = report_checks(standby, LIMITS, find_problems(standby, LIMITS), "pg2")
    replay = [c for c in checks if c["check"] == "replica replay lag"][0]
    assert replay["status"] == "fail" and "paused" in replay["reason"] and replay["value"] == 12.0


def _redis(nodes, uncovered=0, state="ok", findings=()):
    return {"cluster_state": state, "nodes": nodes, "check": {"findings": list(findings)},
            "slots": {"covered": 16384 - uncovered, "uncovered": uncovered, "all_covered": not uncovered,
                      "uncovered_ranges": ["0-%d" % (uncovered - 1)] if uncovered else []}}


def _node(address, role, reachable=True, flags=(), slots=0):
    return {"address": address, "role": role, "reachable": reachable, "flags": list(flags), "slots": slots}


def test_a_replica_down_warns_while_every_slot_is_served():
    nodes = [_node("a:6379", "master", slots=16384), _node("b:6379", "replica", reachable=False, flags=["fail"])]
    checks = {c["check"]: c for c in redis_checks(_redis(nodes), "redis cluster")}
    assert checks["redis cluster state"]["status"] == "ok"
    assert checks["redis nodes up"]["status"] == "warn" and checks["redis nodes up"]["value"] == "1/2"
    assert "replica b:6379 is unreachable" in checks["redis nodes up"]["reason"]


def test_a_failed_master_and_uncovered_slots_fail():
    nodes = [_node("a:6379", "master", slots=8192), _node("b:6379", "master", flags=["fail"], slots=8192)]
    checks = {c["check"]: c for c in redis_checks(_redis(nodes, uncovered=8192, state="fail"), "redis cluster")}
    assert [checks[k]["status"] for k in ("redis cluster state", "redis slot coverage", "redis nodes up")] == \
        ["fail", "fail", "fail"]
    assert "8192 slots uncovered (0-8191)" in checks["redis slot coverage"]["reason"]
