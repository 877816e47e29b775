# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Weekly maintenance against a server: the statistics it reads, and VACUUM / ANALYZE / REINDEX run so that no
writer waits longer than ``lock_timeout``. The decisions are in ``maintenance.py``.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any, Callable

from ansible_collections.muejam.dbops.plugins.module_utils.maintenance import (
    action_name,
    confirm_reindex,
    estimated_bloat,
    plan_vacuum,
    reindex_decision,
    space_problem,
    statements_diagnosis,
    top_statements_sql,
    vacuum_options,
)
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    PostgresError,
    connect,
    query,
    query_one,
    server_major_version,
)

STANDBY_REASON = ("a standby: VACUUM, ANALYZE and REINDEX cannot run on a server in recovery; the primary's run "
                  "reaches it through replication")

_DATABASES_SQL = """
SELECT datname AS name, pg_database_size(oid) AS bytes FROM pg_database
WHERE datallowconn AND NOT datistemplate ORDER BY datname"""

# Sizes come from the catalog (relpages, as of the last VACUUM, ANALYZE or index build): pg_relation_size()
# and friends take a lock on the relation and would wait behind a session holding ACCESS EXCLUSIVE.
_TABLE_STATS_SQL = """
SELECT current_database() AS database, n.nspname AS schema, c.relname AS table, c.reltuples::bigint AS reltuples,
       (c.relpages + coalesce(t.relpages, 0))::bigint * current_setting('block_size')::int AS table_bytes,
       coalesce((SELECT sum(ic.relpages) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                 WHERE x.indrelid = c.oid), 0)::bigint * current_setting('block_size')::int AS index_bytes,
       s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
       extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum))::float AS since_vacuum_s,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float AS since_analyze_s,
       greatest(s.last_vacuum, s.last_autovacuum)::text AS last_vacuum,
       greatest(s.last_analyze, s.last_autoanalyze)::text AS last_analyze,
       age(c.relfrozenxid)::bigint AS xid_age
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
  AND n.nspname NOT LIKE 'pg_temp%%'"""

# Index key width from the planner's statistics (None when a column has none or is an expression), for the
# bloat estimate; the fill factor from the index's reloptions (btree default 90).
_INDEXES_SQL = """
SELECT current_database() AS database, n.nspname AS schema, ci.relname AS index, ct.relname AS table,
       i.indexrelid::bigint AS oid, i.indrelid::bigint AS table_oid, am.amname AS method, i.indisvalid AS valid,
       ci.relpages::bigint * current_setting('block_size')::int AS bytes, ci.relpages::bigint AS relpages,
       ci.reltuples::float AS reltuples,
       coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(ci.reloptions) o WHERE o LIKE 'fillfactor=%%'),
                90) AS fillfactor,
       CASE WHEN (SELECT count(*) FROM unnest(i.indkey) k(attnum) WHERE k.attnum = 0) > 0 THEN NULL
            WHEN (SELECT count(*) FROM unnest(i.indkey) k(attnum)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = ct.relname
                   AND st.attname = a.attname) < i.indnatts THEN NULL
            ELSE (SELECT sum(st.avg_width) FROM unnest(i.indkey) k(attnum)
                  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = ct.relname
                   AND st.attname = a.attname)::float END AS key_width,
       EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = i.indexrelid AND x.contype = 'x') AS exclusion,
       (SELECT p.pid FROM pg_stat_progress_create_index p WHERE p.relid = i.indrelid LIMIT 1) AS building_pid,
       ci.reltablespace::bigint AS tablespace
FROM pg_index i
JOIN pg_class ci ON ci.oid = i.indexrelid
JOIN pg_class ct ON ct.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
JOIN pg_am am ON am.oid = ci.relam
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
  AND n.nspname NOT LIKE 'pg_temp%%' AND ct.relpersistence <> 't'"""

_LOCK_HOLDERS_SQL = """
SELECT DISTINCT l.pid, l.mode FROM pg_locks l
WHERE l.relation = %s::regclass AND l.granted AND l.pid <> pg_backend_pid()"""


def scheduling_argument_spec() -> dict[str, dict[str, Any]]:
    """Options pg_vacuum and pg_reindex share: which databases, how long to wait for a lock, the window."""
    return {
        "databases": {"type": "list", "elements": "str", "default": []},
        "lock_timeout_ms": {"type": "int", "default": 1000},
        "retries": {"type": "int", "default": 3},
        "retry_delay": {"type": "float", "default": 2.0},
        "window_minutes": {"type": "float"},
        "not_after": {"type": "str"},
        "report_target": {"type": "str"},
    }


def _utc(text: str | None) -> float | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


class Window:
    """The time after which no new statement starts: ``window_minutes`` from now, or ``not_after`` if earlier."""

    def __init__(self, minutes: float | None, not_after: str | None, clock: Callable[[], float] = time.time):
        ends = [t for t in (_utc(not_after), time.time() + minutes * 60 if minutes else None) if t is not None]
        self.ends = min(ends) if ends else None
        self.clock = clock

    def closed(self) -> bool:
        return self.ends is not None and self.clock() >= self.ends

    def reason(self) -> str:
        return "not started: the maintenance window ended at %s" % datetime.fromtimestamp(
            self.ends, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def quote_ident(name: str) -> str:
    return '"%s"' % name.replace('"', '""')


def qualified(schema: str, name: str) -> str:
    return "%s.%s" % (quote_ident(schema), quote_ident(name))


def in_recovery(conn: Any) -> bool:
    return bool(query_one(conn, "SELECT pg_is_in_recovery() AS r")["r"])


def list_databases(conn: Any, wanted: list[str]) -> list[dict[str, Any]]:
    """The connectable databases (all but templates), or those named; an unknown name is an error."""
    found = query(conn, _DATABASES_SQL)
    if not wanted:
        return found
    names = {d["name"] for d in found}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise PostgresError("database(s) %s do not exist or do not accept connections (found: %s)"
                            % (", ".join(unknown), ", ".join(sorted(names))))
    return [d for d in found if d["name"] in wanted]


def target_databases(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The databases to work on (params["databases"], or every one that accepts connections)."""
    conn = connect(params)
    try:
        return list_databases(conn, params["databases"])
    finally:
        conn.close()


def each_database(params: dict[str, Any], databases: list[dict[str, Any]]):
    """Yield (name, connection) for each database, closing each connection after use."""
    for db in databases:
        conn = connect(dict(params, login_db=db["name"]))
        try:
            yield db["name"], conn
        finally:
            conn.close()


def set_session(conn: Any, lock_timeout_ms: int) -> None:
    query(conn, "SET lock_timeout = %s", ("%dms" % lock_timeout_ms,))
    query(conn, "SET statement_timeout = 0")


def lock_holders(conn: Any, relation: str) -> str:
    rows = query(conn, _LOCK_HOLDERS_SQL, (relation,))
    return ", ".join("pid %s (%s)" % (r["pid"], r["mode"]) for r in rows) or "no session now"


def _locked_notice(conn: Any) -> bool:
    return any("lock not available" in notice for notice in conn.notices)


def _attempt(conn: Any, sql: str, relation: str, retries: int, delay: float) -> str:
    """Run a statement that must not wait for locks; retry while the relation is locked. Returns '' when it ran,
    else why it did not."""
    import psycopg2

    for attempt in range(retries + 1):
        del conn.notices[:]
        try:
            query(conn, sql)
            if not _locked_notice(conn):
                return ""
            why = "locked by another session (%s)" % lock_holders(conn, relation)
        except PostgresError as exc:
            if "lock timeout" not in str(exc) and "could not obtain lock" not in str(exc):
                raise
            why = "lock_timeout reached waiting for a lock (%s)" % lock_holders(conn, relation)
        except psycopg2.Error as exc:
            raise PostgresError(str(exc)) from None
        if attempt < retries:
            time.sleep(delay)
    return "%s; %d attempt(s), skipped (the next run tries again)" % (why, retries + 1)


def _skipped_on_standby(params: dict[str, Any]) -> dict[str, Any] | None:
    conn = connect(params)
    try:
        return {"changed": False, "skipped_reason": STANDBY_REASON, "plan": [], "done": [], "skipped": []} \
            if in_recovery(conn) else None
    finally:
        conn.close()


def run_vacuum(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Plan VACUUM / ANALYZE from the statistics, then run it table by table (none in check mode)."""
    standby = _skipped_on_standby(params)
    if standby:
        return standby
    limits = {k: params[k] for k in ("dead_ratio", "min_dead_tuples", "analyze_ratio", "min_changed_rows",
                                     "max_days_since_vacuum", "max_days_since_analyze", "freeze_age")}
    window = Window(params["window_minutes"], params["not_after"])
    plan, done, skipped = [], [], []
    for _name, conn in each_database(params, target_databases(params)):
        set_session(conn, params["lock_timeout_ms"])
        tables = [t for t in query(conn, _TABLE_STATS_SQL) if not params["tables"]
                  or "%s.%s" % (t["schema"], t["table"]) in params["tables"] or t["table"] in params["tables"]]
        mine = plan_vacuum(tables, limits)
        plan.extend(dict(p, action=action_name(p)) for p in mine)
        if check_mode:
            continue
        for item in mine:
            entry = dict(item, action=action_name(item))
            if window.closed():
                skipped.append(dict(entry, reason=window.reason()))
                continue
            relation = qualified(item["schema"], item["table"])
            began = time.monotonic()
            why = _attempt(conn, "%s %s" % (vacuum_options(item), relation), relation, params["retries"],
                           params["retry_delay"])
            if why:
                skipped.append(dict(entry, reason=why))
                continue
            after = query_one(conn, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = %s::regclass",
                              (relation,))
            done.append(dict(entry, seconds=round(time.monotonic() - began, 2),
                             dead_tuples_after=after.get("n_dead_tup")))
    return {"changed": bool(done) or (check_mode and bool(plan)), "plan": plan, "done": done, "skipped": skipped}


def _local_system_identifier(data_directory: str) -> int | None:
    """The system identifier in a local data directory's control file (its first 8 bytes), None if unreadable."""
    try:
        with open(os.path.join(data_directory, "global", "pg_control"), "rb") as handle:
            head = handle.read(8)
    except OSError:
        return None
    return int.from_bytes(head, "little") if len(head) == 8 else None


def free_bytes_for(conn: Any, tablespace_oid: int) -> tuple[int | None, str]:
    """Free bytes on the file system of a tablespace, and its path. None when this host is not the server's
    (the local data directory's control file must carry the server's system identifier)."""
    row = query_one(conn, "SELECT current_setting('data_directory') AS d, system_identifier::text AS id, "
                          "pg_tablespace_location(%s::oid) AS t FROM pg_control_system()", (tablespace_oid,))
    path = row["t"] or row["d"]
    if _local_system_identifier(row["d"]) != int(row["id"]) or not os.path.isdir(path):
        return None, path
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize, path


def _has_pgstattuple(conn: Any) -> bool:
    return bool(query(conn, "SELECT 1 FROM pg_extension WHERE extname = 'pgstattuple'"))


def _leaf_density(conn: Any, oid: int) -> float | None:
    row = query_one(conn, "SELECT avg_leaf_density::float AS d FROM pgstatindex(%s::regclass)", (oid,))
    return row.get("d")


def plan_reindex_in(conn: Any, limits: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(work, skipped) for one database: invalid indexes and confirmed bloated ones."""
    block_size = int(query_one(conn, "SELECT current_setting('block_size') AS b")["b"])
    confirm = _has_pgstattuple(conn)
    work, skipped = [], []
    for index in query(conn, _INDEXES_SQL):
        decision = reindex_decision(index, limits, block_size)
        if decision["action"] == "reindex" and index["valid"] and confirm:
            try:
                decision = confirm_reindex(decision, _leaf_density(conn, index["oid"]), index["fillfactor"], limits)
            except PostgresError as exc:
                if "lock timeout" not in str(exc):
                    raise
                holders = lock_holders(conn, qualified(index["schema"], index["table"]))
                decision = dict(decision, action="skip", reason=decision["reason"] + "; its table is locked by "
                                "another session (%s): not measured, skipped" % holders)
        elif decision["action"] == "reindex" and index["valid"]:
            decision = confirm_reindex(decision, None, index["fillfactor"], limits)
        entry = {"database": index["database"], "schema": index["schema"], "index": index["index"],
                 "table": index["table"], "bytes_before": index["bytes"], "oid": index["oid"],
                 "table_oid": index["table_oid"], "tablespace": index["tablespace"], "valid": index["valid"],
                 "estimated_bloat": decision.get("estimated_bloat"), "measured_bloat": decision.get("measured_bloat"),
                 "action": decision["action"], "reason": decision["reason"]}
        if decision["action"] in ("reindex", "drop"):
            work.append(entry)
        elif decision["action"] == "skip":
            skipped.append(entry)
    return work, skipped


_LEFTOVERS_SQL = """
SELECT n.nspname AS schema, c.relname AS index FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = %s::oid AND NOT i.indisvalid AND c.relname ~ '_cc(new|old)[0-9]*$'"""


def drop_leftovers(conn: Any, table_oid: int, retries: int, delay: float) -> list[str]:
    """Drop the transient indexes a failed REINDEX CONCURRENTLY left on a table; names of those still there."""
    left = []
    for row in query(conn, _LEFTOVERS_SQL, (table_oid,)):
        relation = qualified(row["schema"], row["index"])
        if _attempt(conn, "DROP INDEX CONCURRENTLY IF EXISTS %s" % relation, relation, retries, delay):
            left.append(row["index"])
    return left


def _rebuild(conn: Any, item: dict[str, Any], params: dict[str, Any]) -> str:
    relation = qualified(item["schema"], item["index"])
    if item["action"] == "drop":
        return _attempt(conn, "DROP INDEX CONCURRENTLY IF EXISTS %s" % relation, relation, params["retries"],
                        params["retry_delay"])
    try:
        why = _attempt(conn, "REINDEX INDEX CONCURRENTLY %s" % relation, relation, params["retries"],
                       params["retry_delay"])
    except PostgresError as exc:
        why = str(exc)
    if why:
        left = drop_leftovers(conn, item["table_oid"], params["retries"], params["retry_delay"])
        if left:
            why += "; the transient index(es) %s could not be dropped yet: the next run drops them" % ", ".join(left)
    return why


def run_reindex(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Rebuild invalid and bloated indexes with REINDEX INDEX CONCURRENTLY (drop leftovers of failed rebuilds)."""
    standby = _skipped_on_standby(params)
    if standby:
        return standby
    limits = {"bloat_ratio": params["bloat_ratio"], "min_index_bytes": int(params["min_index_mb"] * 1048576),
              "invalid_action": params["invalid_action"]}
    window = Window(params["window_minutes"], params["not_after"])
    reserve = params["reserve_mb"] * 1048576
    plan, done, skipped = [], [], []
    for _name, conn in each_database(params, target_databases(params)):
        set_session(conn, params["lock_timeout_ms"])
        work, not_done = plan_reindex_in(conn, limits)
        plan.extend(work)
        skipped.extend(not_done)
        if check_mode:
            continue
        for item in work:
            if window.closed():
                skipped.append(dict(item, reason=window.reason()))
                continue
            if item["action"] == "reindex" and params["check_free_space"]:
                free, path = free_bytes_for(conn, item["tablespace"])
                if free is None:
                    raise PostgresError("cannot check the free disk for rebuilding %s: the directory %s is not "
                                        "the server's on the host running the module (or not readable there). "
                                        "Run it on the database server (the role does), or set "
                                        "check_free_space=false" % (item["index"], path))
                problem = space_problem(item["bytes_before"], free, reserve, path)
                if problem:
                    skipped.append(dict(item, reason=problem))
                    continue
            began = time.monotonic()
            why = _rebuild(conn, item, params)
            if why:
                skipped.append(dict(item, reason=why))
                continue
            after = None
            if item["action"] == "reindex":
                after = query_one(conn, "SELECT pg_relation_size(%s::regclass) AS b",
                                  (qualified(item["schema"], item["index"]),))["b"]
            done.append(dict(item, bytes_after=after, seconds=round(time.monotonic() - began, 2)))
    return {"changed": bool(done) or (check_mode and bool(plan)), "plan": plan, "done": done, "skipped": skipped}


def statements_state(conn: Any, database: str) -> dict[str, Any]:
    row = query_one(conn, """
        SELECT current_setting('shared_preload_libraries') AS preload,
               EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') AS available,
               EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS installed,
               (SELECT pending_restart FROM pg_settings WHERE name = 'shared_preload_libraries') AS pending_restart""")
    return dict(row, problem=statements_diagnosis(row["preload"], row["available"], row["installed"], database))


def ensure_extension(conn: Any, name: str, check_mode: bool) -> bool:
    """CREATE EXTENSION when it is available and missing; whether it was (or would be) created."""
    row = query_one(conn, """
        SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = %s) AS available,
               EXISTS (SELECT 1 FROM pg_extension WHERE extname = %s) AS installed""", (name, name))
    if row["installed"] or not row["available"]:
        return False
    if not check_mode:
        query(conn, "CREATE EXTENSION IF NOT EXISTS %s" % quote_ident(name))
    return True


def read_report(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Sizes, the largest tables and indexes with their bloat, the top statements (or why they cannot be read)."""
    conn = connect(params)
    created = []
    try:
        major = server_major_version(conn)
        standby = in_recovery(conn)
        wanted = params["databases"] + [d for d in params["count_rows"] if params["databases"]]
        databases = list_databases(conn, sorted(set(wanted)))
        if params["create_extensions"] and not standby:
            created = [e for e in params["create_extensions"] if ensure_extension(conn, e, check_mode)]
        statements_info = statements_state(conn, params["login_db"])
        readable = not statements_info["problem"]
        statements = query(conn, top_statements_sql(major, params["top_statements"])) if readable else []
    finally:
        conn.close()
    tables, indexes, row_counts = [], [], {}
    block_size = 8192
    for name, conn in each_database(params, databases):
        set_session(conn, 5000)
        block_size = int(query_one(conn, "SELECT current_setting('block_size') AS b")["b"])
        tables.extend(dict(t, total_bytes=t["table_bytes"] + t["index_bytes"]) for t in query(conn, _TABLE_STATS_SQL))
        indexes.extend(query(conn, _INDEXES_SQL))
        if name in params["count_rows"]:
            row_counts[name] = {"%s.%s" % (t["schema"], t["table"]): query_one(
                conn, "SELECT count(*) AS n FROM %s" % qualified(t["schema"], t["table"]))["n"]
                for t in query(conn, _TABLE_STATS_SQL)}
    for index in indexes:
        index["estimated_bloat"] = estimated_bloat(index, block_size)
    for table in tables:
        live, dead = table["n_live_tup"] or 0, table["n_dead_tup"] or 0
        table["dead_ratio"] = round(dead / float(max(live + dead, 1)), 4)
    top = params["top_relations"]
    return {"changed": bool(created), "created_extensions": created, "server_version": major, "standby": standby,
            "databases": databases, "tables": sorted(tables, key=lambda t: -t["total_bytes"])[:top],
            "indexes": [{k: i[k] for k in ("database", "schema", "index", "table", "method", "valid", "bytes",
                                           "estimated_bloat")}
                        for i in sorted(indexes, key=lambda i: -i["bytes"])[:top]],
            "statements": statements, "pg_stat_statements": statements_info, "row_counts": row_counts}
