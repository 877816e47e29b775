"""Threshold judgement of pg_replication_status (module_utils/replication.find_problems)."""

from ansible_collections.muejam.dbops.plugins.module_utils.replication import (
    absent_standbys,
    find_problems,
    not_ready,
    timeline_of_walfile,
)


def primary_state(**over):
    state = {
        "role": "primary",
        "streaming_replicas": 1,
        "replicas": [{"application_name": "pg2", "client_addr": "10.1.1.2", "state": "streaming",
                      "lag_bytes": 0, "lag_seconds": 0.0}],
        "slots": [{"slot_name": "pg2", "active": True, "retained_bytes": 1024, "wal_status": "reserved"}],
        "standby": {},
    }
    state.update(over)
    return state


def standby_state(**over):
    standby = {"receiver_status": "streaming", "replay_paused": False, "lag_bytes": 0, "lag_seconds": 0.0}
    standby.update(over)
    return {"role": "standby", "streaming_replicas": 0, "replicas": [], "slots": [], "standby": standby}


def test_healthy_primary_has_no_problems():
    assert find_problems(primary_state(), {"max_lag_seconds": 2, "max_lag_bytes": 1024,
                                           "min_streaming_replicas": 1}) == []


def test_byte_lag_over_limit():
    state = primary_state()
    state["replicas"][0]["lag_bytes"] = 12 * 1024 * 1024
    problems = find_problems(state, {"max_lag_bytes": 1024 * 1024})
    assert problems == ["standby pg2 replay lag is 12582912 bytes (limit 1048576)"]


def test_seconds_lag_and_missing_replicas():
    state = primary_state(streaming_replicas=1)
    state["replicas"][0]["lag_seconds"] = 3.5
    problems = find_problems(state, {"max_lag_seconds": 2, "min_streaming_replicas": 2})
    assert "standby pg2 replay lag is 3.5 s (limit 2 s)" in problems
    assert "1 standby(s) streaming, at least 2 required" in problems


def test_unset_thresholds_check_only_states():
    state = primary_state()
    state["replicas"][0].update(lag_bytes=10 ** 12, lag_seconds=10 ** 6)
    assert find_problems(state, {}) == []
    state["replicas"][0]["state"] = "catchup"
    assert find_problems(state, {}) == ["standby pg2 is catchup, not streaming"]


def test_slot_limits_and_lost_wal():
    state = primary_state(slots=[{"slot_name": "old", "active": False, "retained_bytes": 5000, "wal_status": "lost"}])
    problems = find_problems(state, {"max_slot_retained_bytes": 4096})
    assert problems == ["slot old (inactive) retains 5000 bytes of WAL (limit 4096)",
                        "slot old has lost required WAL; its standby must be re-cloned"]


def test_standby_problems():
    problems = find_problems(standby_state(receiver_status="stopped", replay_paused=True, lag_bytes=2048,
                                           lag_seconds=9.0),
                             {"max_lag_bytes": 1024, "max_lag_seconds": 5})
    assert problems == [
        "WAL receiver is stopped, not streaming from the primary",
        "WAL replay is paused (pg_wal_replay_resume() resumes it)",
        "2048 bytes received but not replayed (limit 1024)",
        "replay lag is 9.0 s (limit 5 s)",
    ]


def test_expected_role_mismatch():
    assert find_problems(standby_state(), {"expected_role": "primary"}) == ["server is a standby, expected a primary"]
    assert find_problems(standby_state(), {"expected_role": "any"}) == []


def test_min_replicas_not_applied_to_standby():
    assert find_problems(standby_state(), {"min_streaming_replicas": 2}) == []


def test_timeline_from_walfile_name():
    assert timeline_of_walfile("000000030000000000000007") == 3
    assert timeline_of_walfile("0000000A0000000100000002") == 10


def test_waiting_for_standbys_ends_when_each_streams_within_the_limits():
    state = primary_state()
    state["replicas"].append({"application_name": "pg3", "client_addr": "10.1.1.3", "state": "catchup",
                              "lag_bytes": 4096, "lag_seconds": 0.0})
    assert not_ready(state, ["pg2"], {}) == []
    assert not_ready(state, ["pg2", "pg3", "pg4"], {}) == ["pg3", "pg4"]  # catching up, not connected
    state["replicas"][1]["state"] = "streaming"
    assert not_ready(state, ["pg3"], {"max_lag_bytes": None}) == []
    assert not_ready(state, ["pg3"], {"max_lag_bytes": 1024}) == ["pg3"]  # streaming, but too far behind
    assert not_ready(state, ["pg3"], {"max_lag_bytes": 8192, "max_lag_seconds": 1.0}) == []


def test_a_standby_waited_for_that_never_connected_is_a_problem():
    assert absent_standbys(primary_state(), ["pg2"], 1.0) == []
    assert absent_standbys(primary_state(), ["pg4"], 300.2) == [
        "standby pg4 is not connected (waited 300 s): check that it runs and can reach this server "
        "(its log, this server's pg_hba.conf, its slot)"]


ARCHIVING_OFF = {"archive_mode": "off", "archives": False, "failing": False, "failed_count": 0}
ARCHIVING_FAILS = {"archive_mode": "on", "archives": True, "failing": True, "failed_count": 7,
                   "last_failed_wal": "000000020000000000000005", "last_failed_time": "2026-12-02T23:00:00Z",
                   "last_archived_time": "2026-12-02T22:00:00Z"}


def test_primary_not_archiving_is_a_problem_only_when_expected():
    assert find_problems(primary_state(archiving=ARCHIVING_OFF), {}) == []
    [problem] = find_problems(primary_state(archiving=ARCHIVING_OFF), {"expect_archiving": True})
    assert problem.startswith("the primary does not archive WAL (archive_mode=off)")
    assert "playbooks/backup.yml" in problem


def test_standby_not_archiving_is_no_problem():
    assert find_problems(dict(standby_state(), archiving=ARCHIVING_OFF), {"expect_archiving": True}) == []


def test_failing_archiving_is_always_a_problem():
    [problem] = find_problems(primary_state(archiving=ARCHIVING_FAILS), {})
    assert "WAL archiving fails (7 failures, the last on 000000020000000000000005 at 2026-12-02T23:00:00Z" in problem
    assert "last success: 2026-12-02T22:00:00Z" in problem
