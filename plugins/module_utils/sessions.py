# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sessions of a PostgreSQL server: read, filtered, arranged as blocking trees, and ended with guard rails.

What may be ended is decided here, without a server: never this module's own session, never a backend that is
not a client's (walsender, autovacuum, background workers), a superuser's only when asked, no more than a cap,
and nothing at all when no filter narrows the selection."""

from __future__ import annotations

import ipaddress
import time
from typing import Any, Callable

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import PostgresError, connect, query

SESSIONS_SQL = """
SELECT a.pid, a.usename AS user, a.datname AS database, a.application_name, host(a.client_addr) AS client_addr,
       a.backend_type, a.state, a.wait_event_type, a.wait_event,
       round(extract(epoch FROM now() - a.query_start)::numeric, 1)::float AS query_seconds,
       round(extract(epoch FROM now() - a.xact_start)::numeric, 1)::float AS transaction_seconds,
       round(extract(epoch FROM now() - a.state_change)::numeric, 1)::float AS state_seconds,
       a.query_start::text AS query_start,
       pg_blocking_pids(a.pid) AS blocked_by,
       coalesce(r.rolsuper, false) AS superuser,
       left(a.query, %(query_length)s) AS query
  FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
 WHERE a.pid <> pg_backend_pid()
 ORDER BY a.pid
"""

# The filters: an option name and what it asks of a session.
FILTERS = ("pids", "states", "users", "databases", "applications", "client_addrs", "min_query_seconds",
           "min_transaction_seconds", "min_state_seconds", "blocking", "waiting")
OWN_APPLICATION = "muejam.dbops"


def _in_networks(address: str | None, networks: list[str]) -> bool:
    if not address:
        return "local" in networks
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks if n != "local")


def blocking_pids(sessions: list[dict[str, Any]]) -> set[int]:
    """The roots of the lock trees: sessions others wait for that wait for nobody themselves (a waiter that
    blocks the next waiter is a victim, not a cause)."""
    waiting = {s["pid"] for s in sessions if s["blocked_by"]}
    return {pid for s in sessions for pid in (s["blocked_by"] or []) if pid not in waiting}


def matches(session: dict[str, Any], filters: dict[str, Any], blockers: set[int]) -> bool:
    """Whether a session passes every filter that is set (an empty list or a null is not set)."""
    f = filters
    checks = [
        (f.get("pids"), lambda: session["pid"] in f["pids"]),
        (f.get("states"), lambda: session["state"] in f["states"]),
        (f.get("users"), lambda: session["user"] in f["users"]),
        (f.get("databases"), lambda: session["database"] in f["databases"]),
        (f.get("applications"), lambda: session["application_name"] in f["applications"]),
        (f.get("client_addrs"), lambda: _in_networks(session["client_addr"], f["client_addrs"])),
        (f.get("min_query_seconds") is not None,
         lambda: (session["query_seconds"] or 0) >= f["min_query_seconds"] and session["state"] == "active"),
        (f.get("min_transaction_seconds") is not None,
         lambda: (session["transaction_seconds"] or 0) >= f["min_transaction_seconds"]),
        (f.get("min_state_seconds") is not None, lambda: (session["state_seconds"] or 0) >= f["min_state_seconds"]),
        (f.get("blocking"), lambda: session["pid"] in blockers),
        (f.get("waiting"), lambda: bool(session["blocked_by"])),
    ]
    return all(test() for wanted, test in checks if wanted)


def filters_set(filters: dict[str, Any]) -> list[str]:
    """The filters given (a minimum of 0 s is given; an empty list or a false flag is not)."""
    return [k for k in FILTERS if (filters.get(k) is not None if k.startswith("min_") else bool(filters.get(k)))]


def why_not(session: dict[str, Any], include_superusers: bool) -> str:
    """Why a selected session must not be ended ('' when it may)."""
    if session["backend_type"] != "client backend":
        return "a %s, not a client's session" % session["backend_type"]
    if (session["application_name"] or "").startswith(OWN_APPLICATION):
        return "a session of this collection (%s)" % session["application_name"]
    if session["superuser"] and not include_superusers:
        return "a superuser's session (%s): set include_superusers to end it" % session["user"]
    return ""


def select(sessions: list[dict[str, Any]], filters: dict[str, Any], include_superusers: bool) -> dict[str, Any]:
    """{'matched': [...], 'selected': [...], 'protected': [{pid, reason}]}: what the filters match, of those what
    may be ended, and the rest with their reasons."""
    blockers = blocking_pids(sessions)
    matched = [s for s in sessions if matches(s, filters, blockers)]
    selected, protected = [], []
    for session in matched:
        reason = why_not(session, include_superusers)
        if reason:
            protected.append({"pid": session["pid"], "reason": reason})
        else:
            selected.append(session)
    return {"matched": matched, "selected": selected, "protected": protected}


def refuse_reason(filters: dict[str, Any], selected: list[dict[str, Any]], max_sessions: int) -> str:
    """Why ending the selected sessions is refused as a whole ('' when it is not)."""
    if not filters_set(filters):
        return ("no filter is set: ending every session of the server is refused. Name pids, states, users, "
                "databases, applications, client_addrs, a minimum duration, blocking or waiting")
    if len(selected) > max_sessions:
        return ("the filters select %d sessions, more than max_sessions (%d): narrow them or raise max_sessions"
                % (len(selected), max_sessions))
    return ""


def blocking_trees(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lock waits as trees: each root blocks others and waits for nobody; children are the sessions that
    wait for their parent (a session waiting on several appears under each). Cycles (deadlocks, which the
    server resolves within deadlock_timeout) are shown from their lowest pid."""
    by_pid = {s["pid"]: s for s in sessions}
    children: dict[int, list[int]] = {}
    for s in sessions:
        for blocker in s["blocked_by"] or []:
            children.setdefault(blocker, []).append(s["pid"])
    waiting = {s["pid"] for s in sessions if s["blocked_by"]}
    roots = sorted(pid for pid in children if pid not in waiting)
    if not roots and children:
        roots = [min(children)]

    def node(pid: int, seen: frozenset) -> dict[str, Any]:
        s = by_pid.get(pid, {})
        kids = [node(c, seen | {pid}) for c in sorted(children.get(pid, [])) if c not in seen]
        return {"pid": pid, "user": s.get("user"), "state": s.get("state"), "query": s.get("query"),
                "wait_event": s.get("wait_event"), "transaction_seconds": s.get("transaction_seconds"),
                "blocks": kids, "waiting": count(kids)}

    def count(kids: list[dict[str, Any]]) -> int:
        return sum(1 + k["waiting"] for k in kids)

    return [node(pid, frozenset()) for pid in roots]


def summarize(sessions: list[dict[str, Any]], max_connections: int) -> dict[str, Any]:
    """Client connections by state, user and application, against max_connections."""
    clients = [s for s in sessions if s["backend_type"] == "client backend"]

    def by(key: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in clients:
            name = s[key] or "(none)"
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    return {"clients": len(clients), "max_connections": max_connections,
            "utilization_percent": round(100.0 * len(clients) / max(max_connections, 1), 1),
            "by_state": by("state"), "by_user": by("user"), "by_application": by("application_name")}


def read_sessions(conn: Any, query_length: int) -> list[dict[str, Any]]:
    return query(conn, SESSIONS_SQL, {"query_length": query_length})


def end_sessions(conn: Any, selected: list[dict[str, Any]], terminate: bool, grace_seconds: float,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, list[int]]:
    """Cancel the running query of each active session, wait grace_seconds, then see who is left: an active
    session whose same query still runs, and every idle one (a cancel does nothing to an idle session). With
    terminate, those are ended. Returns the pids cancelled (and gone or idle since), terminated and remaining."""
    active = [s for s in selected if s["state"] == "active"]
    signalled = [s["pid"] for s in active
                 if query(conn, "SELECT pg_cancel_backend(%(pid)s) AS ok", {"pid": s["pid"]})[0]["ok"]]
    if active:
        sleep(grace_seconds)
    rows = {r["pid"]: r for r in query(conn, "SELECT pid, state, query_start::text AS query_start "
                                             "FROM pg_stat_activity WHERE pid = ANY(%(pids)s)",
                                       {"pids": [s["pid"] for s in selected]})}
    remaining = []
    for session in selected:
        row = rows.get(session["pid"])
        if row is None:
            continue
        same_query = row["state"] == "active" and row["query_start"] == session["query_start"]
        if session["state"] != "active" or same_query:
            remaining.append(session["pid"])
    terminated = []
    if terminate:
        terminated = [pid for pid in remaining
                      if query(conn, "SELECT pg_terminate_backend(%(pid)s) AS ok", {"pid": pid})[0]["ok"]]
    return {"cancelled": [pid for pid in signalled if pid not in remaining],
            "terminated": terminated,
            "remaining": [pid for pid in remaining if pid not in terminated]}


def checks_of(sessions: list[dict[str, Any]], matched: list[dict[str, Any]], trees: list[dict[str, Any]],
              host: str, runbook: str, warn_matched: bool) -> list[dict[str, Any]]:
    """Report checks: the sessions the filters match, and each blocking tree's root."""
    clients = [s for s in sessions if s["backend_type"] == "client backend"]
    # clients' queries first, longest first (a walsender's START_REPLICATION runs for days and says nothing)
    shown = sorted(matched, key=lambda s: (s["backend_type"] != "client backend", -(s["query_seconds"] or 0)))
    checks = [{
        "check": "sessions matched", "target": host, "status": "warn" if matched and warn_matched else "ok",
        "critical": False, "value": len(matched), "unit": "", "threshold": "%d client sessions" % len(clients),
        "reason": "; ".join("pid %s %s %s %.0f s: %s" % (s["pid"], s["user"], s["state"], s["query_seconds"] or 0,
                                                         (s["query"] or "").strip()[:60]) for s in shown[:5]),
        "runbook": runbook}]
    for tree in trees:
        checks.append({
            "check": "lock blocker", "target": "%s pid %s" % (host, tree["pid"]), "status": "fail",
            "critical": False, "value": tree["waiting"], "unit": " waiting",
            "threshold": "no session waits on a lock", "runbook": runbook,
            "reason": "%s (%s, transaction open %.0f s): %s" % (
                tree["user"], tree["state"], tree["transaction_seconds"] or 0, (tree["query"] or "").strip()[:80])})
    return checks


def validate(filters: dict[str, Any]) -> None:
    for network in filters.get("client_addrs") or []:
        if network == "local":
            continue
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise PostgresError("client_addrs: %r is not an address or a network (use 10.0.0.5, 10.0.0.0/24 "
                                "or local for Unix-socket sessions). Nothing was changed." % network) from None


EXPLAINABLE = ("select", "with", "insert", "update", "delete", "values", "table", "merge")


def explain(params: dict[str, Any], session: dict[str, Any], analyze: bool) -> dict[str, Any]:
    """EXPLAIN of a session's current query (its full text, read again), in a read-only transaction that is
    rolled back; ANALYZE (which runs the query) only when asked, bounded by a statement_timeout."""
    result: dict[str, Any] = {"pid": session["pid"], "database": session["database"], "analyze": analyze,
                              "plan": [], "error": ""}
    conn = connect(dict(params, login_db=session["database"]), autocommit=False)
    try:
        row = query(conn, "SELECT query FROM pg_stat_activity WHERE pid = %(pid)s", {"pid": session["pid"]})
        text = (row[0]["query"] if row else "") or ""
        result["query"] = text[:2000]
        if not text.strip() or text.lstrip().split(None, 1)[0].lower() not in EXPLAINABLE:
            result["error"] = "the session's query is not a statement EXPLAIN takes (%s)" % text.strip()[:40]
            return result
        query(conn, "SET TRANSACTION READ ONLY")
        query(conn, "SET LOCAL statement_timeout = %(t)s", {"t": "%ds" % params.get("explain_timeout_seconds", 30)})
        rows = query(conn, "EXPLAIN (%s) %s" % ("ANALYZE, BUFFERS" if analyze else "COSTS", text.rstrip().rstrip(";")))
        result["plan"] = [next(iter(r.values())) for r in rows]
    except PostgresError as exc:
        result["error"] = str(exc)
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
    return result
