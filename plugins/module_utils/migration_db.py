# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database side of a schema migration's preflight: what is read, and the pure judgement of it."""

from __future__ import annotations

import os
import time
from typing import Any

try:
    import psycopg2
except ImportError:  # reported by the module through HAS_PSYCOPG2
    pass

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import PostgresError, connect, query, query_one

SERVER_SQL = """
SELECT pg_is_in_recovery() AS in_recovery, current_setting('data_directory') AS data_directory,
       (SELECT pg_database_size(oid) FROM pg_database WHERE datname = %(db)s) AS database_bytes,
       current_setting('server_version_num')::int AS server_version_num
"""

LONG_TRANSACTIONS_SQL = """
SELECT pid, usename AS user, datname AS database, application_name, state,
       round(extract(epoch FROM now() - xact_start))::int AS seconds, left(query, 200) AS query
  FROM pg_stat_activity
 WHERE xact_start < now() - make_interval(secs => %(secs)s)
   AND pid <> pg_backend_pid() AND backend_type = 'client backend'
 ORDER BY xact_start
"""

REPLICATION_SQL = """
SELECT application_name, host(client_addr) AS client_addr, state,
       coalesce(extract(epoch FROM replay_lag), 0)::float AS replay_lag_seconds
  FROM pg_stat_replication
 ORDER BY application_name
"""


def judge(server: dict[str, Any], free_bytes: int | None, long_transactions: list[dict[str, Any]],
          replicas: list[dict[str, Any]], limits: dict[str, Any]) -> list[str]:
    """Reasons not to migrate now; empty when the database is ready."""
    problems = []
    if server["database_bytes"] is None:
        problems.append("database %s does not exist on this server: check the database name" % limits["database"])
    if server["in_recovery"]:
        problems.append("this server is a standby: migrations run against the primary")
    for tx in long_transactions:
        problems.append("pid %s (%s, %s) has had a transaction open for %d s (state %s): DDL would queue behind it "
                        "and every writer behind the DDL; end it or wait (%s)" % (
                            tx["pid"], tx["user"], tx["application_name"] or "no application_name", tx["seconds"],
                            tx["state"], (tx["query"] or "").strip()[:80]))
    for replica in replicas:
        if replica["state"] != "streaming":
            problems.append("replica %s (%s) is %s, not streaming" % (
                replica["application_name"], replica["client_addr"], replica["state"]))
        elif replica["replay_lag_seconds"] > limits["max_replica_lag_seconds"]:
            problems.append("replica %s replays %.0f s behind (limit %s s)" % (
                replica["application_name"], replica["replay_lag_seconds"], limits["max_replica_lag_seconds"]))
    if len(replicas) < limits["min_replicas"]:
        problems.append("%d replica(s) stream from this primary, %d expected" % (len(replicas), limits["min_replicas"]))
    needed = int((server["database_bytes"] or 0) * limits["free_disk_factor"]) + limits["reserve_mb"] * 1024 * 1024
    if free_bytes is None:
        problems.append("the data directory %s is not on this host: run the check on the database host"
                        % server["data_directory"])
    elif free_bytes < needed:
        problems.append("%d MB free under %s, %d MB needed (the database's %d MB x %g, for a restore next to it, + "
                        "%d MB)" % (free_bytes // 1048576, server["data_directory"], needed // 1048576,
                                    (server["database_bytes"] or 0) // 1048576, limits["free_disk_factor"],
                                    limits["reserve_mb"]))
    return problems


def free_bytes_of(path: str) -> int | None:
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def read_preflight(params: dict[str, Any]) -> dict[str, Any]:
    """What the preflight reads from the server; PostgresError when it cannot."""
    conn = connect(params)
    try:
        server = query_one(conn, SERVER_SQL, {"db": params["app_database"]})
        long_transactions = query(conn, LONG_TRANSACTIONS_SQL, {"secs": params["max_transaction_seconds"]})
        replicas = query(conn, REPLICATION_SQL)
    finally:
        conn.close()
    if not server:
        raise PostgresError("the server returned nothing for its settings")
    free = free_bytes_of(server["data_directory"])
    limits = {k: params[k] for k in ("max_replica_lag_seconds", "min_replicas", "free_disk_factor", "reserve_mb")}
    limits["database"] = params["app_database"]
    return {"server": server, "free_bytes": free, "long_transactions": long_transactions, "replicas": replicas,
            "problems": judge(server, free, long_transactions, replicas, limits)}


SESSIONS_SQL = """
SELECT pid, usename AS user, datname AS database, application_name, state
  FROM pg_stat_activity
 WHERE datname = ANY(%(names)s) AND pid <> pg_backend_pid()
 ORDER BY pid
"""


def swap_plan(existing: set[str], name: str, replacement: str, keep_as: str) -> str:
    """'swap', 'done' (an earlier run swapped them), or raise PostgresError naming what is wrong."""
    if len({name, replacement, keep_as}) < 3:
        raise PostgresError("name, replacement and keep_as must be three different databases")
    if keep_as in existing and replacement not in existing and name in existing:
        return "done"
    missing = [d for d in (name, replacement) if d not in existing]
    if missing:
        raise PostgresError("database %s does not exist: nothing to swap" % " and ".join(missing))
    if keep_as in existing:
        raise PostgresError("database %s already exists: choose another keep_as (it is never overwritten)" % keep_as)
    return "swap"


def swap_databases(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Rename name to keep_as and replacement to name, in one transaction (both renames or neither).

    ALTER DATABASE ... RENAME needs every session of both databases gone: with terminate_sessions they are ended
    (the application must be stopped first, or it reconnects), else their list is the error.
    """
    name, replacement, keep_as = params["name"], params["replacement"], params["keep_as"]
    conn = connect(dict(params, login_db="postgres"))
    try:
        existing = {r["datname"] for r in query(conn, "SELECT datname FROM pg_database")}
        plan = swap_plan(existing, name, replacement, keep_as)
        result = {"changed": plan == "swap", "database": name, "kept_as": keep_as, "terminated": []}
        if plan == "done" or check_mode:
            return result
        for attempt in range(params["retries"] + 1):
            sessions = query(conn, SESSIONS_SQL, {"names": [name, replacement]})
            if sessions and not params["terminate_sessions"]:
                raise PostgresError("%d session(s) use %s or %s (%s): stop the application first, or set "
                                    "terminate_sessions. Nothing was changed." % (
                                        len(sessions), name, replacement,
                                        ", ".join("pid %s %s/%s" % (s["pid"], s["user"], s["application_name"])
                                                  for s in sessions[:5])))
            for session in sessions:
                query(conn, "SELECT pg_terminate_backend(%(pid)s)", {"pid": session["pid"]})
                result["terminated"].append(session)
            time.sleep(0.5 if sessions else 0)
            try:
                with conn.cursor() as cur:
                    cur.execute("BEGIN")
                    cur.execute("ALTER DATABASE %s RENAME TO %s" % (quote_ident(name), quote_ident(keep_as)))
                    cur.execute("ALTER DATABASE %s RENAME TO %s" % (quote_ident(replacement), quote_ident(name)))
                    cur.execute("COMMIT")
                return result
            except psycopg2.Error as exc:
                with conn.cursor() as cur:
                    cur.execute("ROLLBACK")
                if "being accessed by other users" not in str(exc) or attempt == params["retries"]:
                    raise PostgresError("renaming %s failed: %s. Nothing was changed."
                                        % (name, str(exc).strip())) from None
        return result
    finally:
        conn.close()


def quote_ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')
