"""pg_sessions' decisions without a server: filters, guard rails, refusals, lock trees, and the end sequence
(cancel, grace, terminate) driven by a scripted connection that records which statements were sent."""

from __future__ import annotations

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils import sessions as mod
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import PostgresError


def session(pid, **over):
    base = {"pid": pid, "user": "app", "database": "lib", "application_name": "web", "client_addr": "10.0.0.5",
            "backend_type": "client backend", "state": "active", "wait_event_type": None, "wait_event": None,
            "query_seconds": 1.0, "transaction_seconds": 1.0, "state_seconds": 1.0, "query_start": "t%d" % pid,
            "blocked_by": [], "superuser": False, "query": "SELECT %d" % pid}
    base.update(over)
    return base


SESSIONS = [
    session(10, state="idle in transaction", transaction_seconds=120, query="UPDATE stories SET views = 1"),
    session(11, blocked_by=[10], query_seconds=40, wait_event_type="Lock"),
    session(12, blocked_by=[11, 10], query_seconds=35, wait_event_type="Lock"),
    session(13, query_seconds=31, query="SELECT pg_sleep(30)"),
    session(14, state="idle", state_seconds=600),
    session(15, backend_type="walsender", user="replicator", state="active", query_seconds=9999),
    session(16, backend_type="autovacuum worker", user=None, application_name="", query_seconds=50),
    session(17, user="postgres", superuser=True, query_seconds=60),
    session(18, application_name="muejam.dbops", query_seconds=60),
    session(19, client_addr=None, state="idle", state_seconds=700),
]


def pids(rows):
    return [r["pid"] for r in rows]


@pytest.mark.parametrize("filters,expected", [
    ({"min_query_seconds": 30}, [11, 12, 13, 15, 16, 17, 18]),
    ({"states": ["idle"], "min_state_seconds": 300}, [14, 19]),
    ({"client_addrs": ["local"]}, [19]),
    ({"client_addrs": ["10.0.0.0/24"], "states": ["idle"]}, [14]),
    ({"blocking": True}, [10]),
    ({"waiting": True}, [11, 12]),
    ({"min_transaction_seconds": 100}, [10]),
    ({"pids": [13, 14], "states": ["active"]}, [13]),
])
def test_filters(filters, expected):
    blockers = mod.blocking_pids(SESSIONS)
    assert [s["pid"] for s in SESSIONS if mod.matches(s, filters, blockers)] == expected


def test_guard_rails_protect_non_clients_our_own_and_superusers():
    chosen = mod.select(SESSIONS, {"min_query_seconds": 30}, include_superusers=False)
    assert pids(chosen["selected"]) == [11, 12, 13]
    reasons = {p["pid"]: p["reason"] for p in chosen["protected"]}
    assert "walsender" in reasons[15] and "autovacuum worker" in reasons[16]
    assert "superuser" in reasons[17] and "include_superusers" in reasons[17]
    assert "this collection" in reasons[18]
    with_su = mod.select(SESSIONS, {"min_query_seconds": 30}, include_superusers=True)
    assert pids(with_su["selected"]) == [11, 12, 13, 17]


def test_refusals():
    assert "no filter is set" in mod.refuse_reason({"states": [], "blocking": False}, SESSIONS, 100)
    assert "more than max_sessions (2)" in mod.refuse_reason({"min_query_seconds": 1}, SESSIONS[:3], 2)
    assert mod.refuse_reason({"min_query_seconds": 1}, SESSIONS[:2], 2) == ""
    assert mod.refuse_reason({"min_query_seconds": 0}, SESSIONS[:2], 2) == ""
    with pytest.raises(PostgresError, match="not an address"):
        mod.validate({"client_addrs": ["10.0.0.300"]})


def test_blocking_tree_has_the_holder_at_its_root():
    [tree] = mod.blocking_trees(SESSIONS)
    assert tree["pid"] == 10 and tree["waiting"] == 3
    assert [k["pid"] for k in tree["blocks"]] == [11, 12]
    assert [k["pid"] for k in tree["blocks"][0]["blocks"]] == [12]
    checks = mod.checks_of(SESSIONS, [], [tree], "pg1", "High Database Latency", True)
    assert checks[1]["check"] == "lock blocker" and checks[1]["target"] == "pg1 pid 10"
    assert "UPDATE stories" in checks[1]["reason"]


def test_a_deadlock_cycle_is_shown_once():
    cycle = [session(1, blocked_by=[2]), session(2, blocked_by=[1])]
    [tree] = mod.blocking_trees(cycle)
    assert tree["pid"] == 1 and [k["pid"] for k in tree["blocks"]] == [2] and tree["blocks"][0]["blocks"] == []


def test_summary_counts_clients_against_max_connections():
    summary = mod.summarize(SESSIONS, 100)
    assert summary["clients"] == 8 and summary["utilization_percent"] == 8.0
    assert summary["by_state"]["active"] == 5 and summary["by_state"]["idle"] == 2


class Scripted:
    """Stands in for the connection of end_sessions: records the statements, answers pg_stat_activity
    with the rows given (no server is claimed to be tested here; integration tests do that)."""

    def __init__(self, after):
        self.after, self.sent = after, []


@pytest.fixture()
def scripted(monkeypatch):
    def fake_query(conn, sql, args=None):
        conn.sent.append((sql.split("(")[0].split()[-1] if "pg_" in sql.split()[1] else "read", args))
        if "pg_stat_activity" in sql:
            return [r for r in conn.after if r["pid"] in args["pids"]]
        return [{"ok": True}]
    monkeypatch.setattr(mod, "query", fake_query)
    return Scripted


def test_cancel_first_then_terminate_only_what_is_left(scripted):
    chosen = [session(13), session(11), session(14, state="idle")]
    # 13 ignored the cancel (same query_start), 11 went idle after it, 14 is idle
    conn = scripted([{"pid": 13, "state": "active", "query_start": "t13"},
                     {"pid": 11, "state": "idle", "query_start": "t11"},
                     {"pid": 14, "state": "idle", "query_start": "t14"}])
    slept = []
    done = mod.end_sessions(conn, chosen, terminate=True, grace_seconds=2, sleep=slept.append)
    assert slept == [2]
    assert done == {"cancelled": [11], "terminated": [13, 14], "remaining": []}
    assert [s[0] for s in conn.sent] == ["pg_cancel_backend", "pg_cancel_backend", "read",
                                         "pg_terminate_backend", "pg_terminate_backend"]


def test_cancel_alone_never_terminates(scripted):
    conn = scripted([{"pid": 13, "state": "active", "query_start": "t13"}])
    done = mod.end_sessions(conn, [session(13)], terminate=False, grace_seconds=0, sleep=lambda s: None)
    assert done == {"cancelled": [], "terminated": [], "remaining": [13]}
    assert "pg_terminate_backend" not in [s[0] for s in conn.sent]
