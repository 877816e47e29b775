# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Weekly maintenance decisions: pure functions of statistics the server reports, testable without a server.

What to VACUUM or ANALYZE comes from each table's dead tuples, changes since the last analyze, the time since
the last (auto)vacuum and its transaction-ID age; what to REINDEX from invalid indexes and a btree bloat
estimate (confirmed with pgstattuple where it is installed). Nothing here talks to a server: the SQL and the
execution are in ``maintenance_run.py``.
"""

from __future__ import annotations

import math
import re
from typing import Any

RUNBOOK = "Weekly Maintenance"
DAY = 86400.0

# pg_stat_statements columns by server major version: 13 renamed total_time to total_exec_time; 17 renamed
# blk_read_time / blk_write_time to shared_blk_read_time / shared_blk_write_time.
_STATEMENT_IO_COLUMNS = {
    13: ("blk_read_time", "blk_write_time"),
    17: ("shared_blk_read_time", "shared_blk_write_time"),
}

# A transient index of REINDEX CONCURRENTLY left by a failed run: PostgreSQL's documentation says to drop it.
_LEFTOVER = re.compile(r"_cc(new|old)[0-9]*$")

VACUUM_DEFAULTS = {"dead_ratio": 0.1, "min_dead_tuples": 1000, "analyze_ratio": 0.1, "min_changed_rows": 1000,
                   "max_days_since_vacuum": 7.0, "max_days_since_analyze": 7.0, "freeze_age": 150000000}


def statement_io_columns(major: int) -> tuple[str, str]:
    """The read / write time columns of pg_stat_statements on this server version."""
    return _STATEMENT_IO_COLUMNS[17] if major >= 17 else _STATEMENT_IO_COLUMNS[13]


def top_statements_sql(major: int, limit: int) -> str:
    """Top statements by mean execution time, the same output columns on every supported version."""
    read_col, write_col = statement_io_columns(major)
    return ("SELECT d.datname AS database, r.rolname AS user, s.queryid::text AS queryid, s.query, s.calls, "
            "round(s.total_exec_time::numeric, 2)::float AS total_ms, round(s.mean_exec_time::numeric, 2)::float "
            "AS mean_ms, round(s.max_exec_time::numeric, 2)::float AS max_ms, s.rows, s.shared_blks_hit, "
            "s.shared_blks_read, round((s.%s + s.%s)::numeric, 2)::float AS io_ms, s.temp_blks_written "
            "FROM pg_stat_statements s LEFT JOIN pg_database d ON d.oid = s.dbid LEFT JOIN pg_roles r "
            "ON r.oid = s.userid WHERE s.query NOT LIKE '%%pg_stat_statements%%' "
            "ORDER BY s.mean_exec_time DESC LIMIT %d" % (read_col, write_col, int(limit)))


def statements_diagnosis(preload: str, available: bool, installed: bool, database: str) -> str:
    """Why pg_stat_statements cannot be read and what to change; empty when it can."""
    libraries = [lib.strip().strip('"') for lib in preload.split(",") if lib.strip()]
    if not available:
        return ("the pg_stat_statements extension is not available on this server: install the PostgreSQL "
                "contrib modules (on Debian they come with the postgresql-NN package)")
    if "pg_stat_statements" not in libraries:
        wanted = ", ".join(libraries + ["pg_stat_statements"])
        return ("pg_stat_statements is not in shared_preload_libraries (now %r): set shared_preload_libraries = "
                "'%s' and restart PostgreSQL (pg_maintenance_preload_pg_stat_statements: true sets it and reports "
                "the restart; it never restarts the server)" % (preload, wanted))
    if not installed:
        return ("the pg_stat_statements extension is not created in database %r: run CREATE EXTENSION "
                "pg_stat_statements there (pg_maintenance_create_extensions: true does it)" % database)
    return ""


def _age_days(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / DAY


def vacuum_decision(table: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any] | None:
    """What one table needs ({vacuum, analyze, freeze, reasons}) or None; ``table`` holds the statistics row."""
    live, dead = table.get("n_live_tup") or 0, table.get("n_dead_tup") or 0
    changed = table.get("n_mod_since_analyze") or 0
    ratio = dead / float(max(live + dead, 1))
    reasons, vacuum, analyze, freeze = [], False, False, False
    if dead >= limits["min_dead_tuples"] and ratio >= limits["dead_ratio"]:
        vacuum = True
        reasons.append("%d dead tuples (%.0f %% of the rows)" % (dead, 100 * ratio))
    since_vacuum = _age_days(table.get("since_vacuum_s"))
    if dead > 0 and not vacuum and (since_vacuum is None or since_vacuum > limits["max_days_since_vacuum"]):
        vacuum = True
        reasons.append("%d dead tuples and %s" % (dead, "never vacuumed" if since_vacuum is None else
                                                  "last vacuumed %.1f days ago" % since_vacuum))
    xid_age = table.get("xid_age") or 0
    if xid_age >= limits["freeze_age"]:
        vacuum = freeze = True
        reasons.append("transaction-ID age %d reached %d (freeze before autovacuum's anti-wraparound run)"
                       % (xid_age, limits["freeze_age"]))
    since_analyze = _age_days(table.get("since_analyze_s"))
    rows = max(table.get("reltuples") or 0, live)
    if changed >= max(limits["min_changed_rows"], limits["analyze_ratio"] * rows):
        analyze = True
        reasons.append("%d rows changed since the last analyze" % changed)
    elif live > 0 and since_analyze is None:
        analyze = True
        reasons.append("never analysed")
    elif changed > 0 and since_analyze is not None and since_analyze > limits["max_days_since_analyze"]:
        analyze = True
        reasons.append("%d rows changed and last analysed %.1f days ago" % (changed, since_analyze))
    if not (vacuum or analyze):
        return None
    return {"vacuum": vacuum, "analyze": analyze, "freeze": freeze, "reasons": reasons, "dead_tuples": dead,
            "xid_age": xid_age}


def plan_vacuum(tables: list[dict[str, Any]], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """The tables to work on, most urgent first: freezing, then the most dead tuples, then analyze only."""
    plan = []
    for table in tables:
        decision = vacuum_decision(table, limits)
        if decision:
            plan.append(dict(decision, database=table["database"], schema=table["schema"], table=table["table"],
                             bytes=table.get("table_bytes") or 0))
    plan.sort(key=lambda p: (not p["freeze"], not p["vacuum"], -p["dead_tuples"], p["database"], p["schema"],
                             p["table"]))
    return plan


def vacuum_options(item: dict[str, Any]) -> str:
    """The option list of the VACUUM or ANALYZE statement for one planned table."""
    if not item["vacuum"]:
        return "ANALYZE (SKIP_LOCKED)"
    options = ["SKIP_LOCKED"] + (["FREEZE"] if item["freeze"] else []) + (["ANALYZE"] if item["analyze"] else [])
    return "VACUUM (%s)" % ", ".join(options)


def action_name(item: dict[str, Any]) -> str:
    if not item["vacuum"]:
        return "analyze"
    return ("vacuum freeze" if item["freeze"] else "vacuum") + (" analyze" if item["analyze"] else "")


def is_leftover(index_name: str) -> bool:
    """An index left by a failed REINDEX CONCURRENTLY (suffix _ccnew / _ccold)."""
    return bool(_LEFTOVER.search(index_name))


def estimated_btree_pages(reltuples: float, key_width: float, fillfactor: int, block_size: int) -> int:
    """Pages a freshly built btree index of these tuples needs: 8-byte tuple header and 4-byte line pointer per
    entry, entries aligned to 8 bytes, leaf pages filled to the fill factor, about 1 % internal pages, a metapage."""
    entry = 8 * math.ceil((8 + key_width) / 8.0) + 4
    usable = (block_size - 24 - 16) * fillfactor / 100.0
    leaf = math.ceil(max(reltuples, 0) * entry / usable) if reltuples > 0 else 1
    return int(leaf + math.ceil(leaf / 100.0) + 1)


def estimated_bloat(index: dict[str, Any], block_size: int) -> float | None:
    """Share of a btree index's pages a rebuild would free, from the catalog; None when it cannot be estimated
    (not a btree, an expression column or columns without statistics, or no size yet)."""
    if index["method"] != "btree" or index.get("key_width") is None or (index.get("relpages") or 0) <= 1:
        return None
    pages = estimated_btree_pages(index["reltuples"] or 0, index["key_width"], index["fillfactor"], block_size)
    return max(0.0, 1.0 - pages / float(index["relpages"]))


def confirmed_bloat(avg_leaf_density: float | None, fillfactor: int) -> float | None:
    """Bloat from pgstattuple's pgstatindex(): how far the leaf pages are below the fill factor."""
    if avg_leaf_density is None or isinstance(avg_leaf_density, float) and math.isnan(avg_leaf_density):
        return None
    return max(0.0, 1.0 - float(avg_leaf_density) / fillfactor)


def reindex_decision(index: dict[str, Any], limits: dict[str, Any], block_size: int) -> dict[str, Any]:
    """What to do with one index: {action: reindex | drop | skip | none, reason, estimated_bloat}."""
    name = index["index"]
    if not index["valid"]:
        if index.get("building_pid"):
            return {"action": "skip", "reason": "invalid because CREATE INDEX CONCURRENTLY or REINDEX is building "
                                                "it now (pid %s): left alone" % index["building_pid"]}
        if is_leftover(name):
            return {"action": "drop", "reason": "invalid leftover of a failed REINDEX CONCURRENTLY (dropped, as "
                                                "PostgreSQL's documentation advises)"}
        action = limits["invalid_action"]
        reason = "invalid (a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY)"
        if action == "reindex" and index.get("exclusion"):
            return {"action": "skip", "reason": reason + "; an exclusion constraint's index cannot be rebuilt "
                                                         "concurrently: rebuild it in a maintenance window"}
        if action == "report":
            return {"action": "skip", "reason": reason + "; reported only (pg_maintenance_invalid_index_action)"}
        return {"action": action, "reason": reason}
    bloat = estimated_bloat(index, block_size)
    if index["bytes"] < limits["min_index_bytes"]:
        return {"action": "none", "reason": "", "estimated_bloat": bloat}
    if bloat is None or bloat < limits["bloat_ratio"]:
        return {"action": "none", "reason": "", "estimated_bloat": bloat}
    if index.get("exclusion"):
        return {"action": "skip", "estimated_bloat": bloat,
                "reason": "estimated %.0f %% bloat, but an exclusion constraint's index cannot be rebuilt "
                          "concurrently" % (100 * bloat)}
    return {"action": "reindex", "estimated_bloat": bloat, "reason": "estimated %.0f %% bloat" % (100 * bloat)}


def confirm_reindex(decision: dict[str, Any], density: float | None, fillfactor: int,
                    limits: dict[str, Any]) -> dict[str, Any]:
    """A bloat estimate checked against pgstatindex's leaf density (None: not measured, the estimate stands)."""
    if decision["action"] != "reindex" or decision["reason"].startswith("invalid"):
        return decision
    measured = confirmed_bloat(density, fillfactor)
    if measured is None:
        return dict(decision, reason=decision["reason"] + " (estimate only: pgstattuple is not installed in this "
                                                          "database)")
    if measured < limits["bloat_ratio"]:
        return dict(decision, action="none", measured_bloat=measured,
                    reason="estimated %.0f %% bloat, pgstattuple measures %.0f %%: not rebuilt"
                           % (100 * decision["estimated_bloat"], 100 * measured))
    return dict(decision, measured_bloat=measured,
                reason="%.0f %% bloat (pgstattuple leaf density %.0f %%, fill factor %d)"
                       % (100 * measured, density, fillfactor))


def space_problem(needed_bytes: int, free_bytes: int, reserve_bytes: int, where: str) -> str:
    """Why a rebuild needing ``needed_bytes`` must not start, or empty: the new copy plus the reserve must fit."""
    if free_bytes - needed_bytes >= reserve_bytes:
        return ""
    megabytes = (free_bytes // 1048576, needed_bytes // 1048576, reserve_bytes // 1048576)
    return ("not enough free disk on %s for the new copy: %d MB free, the copy needs %d MB and %d MB must stay "
            "free (pg_maintenance_reindex_reserve_mb)" % ((where,) + megabytes))


def _check(check: str, target: str, status: str, value: Any, threshold: str, reason: str, unit: str = "",
           critical: bool = False, playbook: str = "") -> dict[str, Any]:
    return {"check": check, "target": target, "status": status, "value": value, "unit": unit,
            "threshold": threshold, "reason": reason, "critical": critical,
            "runbook": RUNBOOK if status != "ok" else "", "playbook": playbook}


def vacuum_checks(result: dict[str, Any], host: str, check_mode: bool = False) -> list[dict[str, Any]]:
    """The vacuum run as report checks: done, and what was skipped (locked, the window ended) as a warning."""
    if result.get("skipped_reason"):
        return [_check("vacuum / analyze", host, "ok", "skipped", "primaries only", result["skipped_reason"])]
    if check_mode:
        planned = ", ".join("%s %s.%s.%s" % (p["action"], p["database"], p["schema"], p["table"])
                            for p in result["plan"])
        return [_check("vacuum / analyze", host, "ok", "would work on %d table(s)" % len(result["plan"]),
                       "every planned table", planned)]
    done, skipped = result["done"], result["skipped"]
    reason = "; ".join("%s.%s.%s: %s" % (s["database"], s["schema"], s["table"], s["reason"]) for s in skipped)
    value = "%d done, %d skipped" % (len(done), len(skipped))
    return [_check("vacuum / analyze", host, "warn" if skipped else "ok", value, "every planned table", reason)]


def reindex_checks(result: dict[str, Any], host: str, check_mode: bool = False) -> list[dict[str, Any]]:
    """One check per index rebuilt, dropped or skipped (a warning); in check mode one per planned index."""
    if result.get("skipped_reason"):
        return [_check("reindex", host, "ok", "skipped", "primaries only", result["skipped_reason"])]
    checks = [_check("reindex %s" % item["action"], "%s/%s.%s" % (host, item["database"], item["index"]), "ok",
                     "would %s" % item["action"], "invalid or bloated indexes", item["reason"])
              for item in (result["plan"] if check_mode else [])]
    for item in result["done"]:
        before, after = item.get("bytes_before"), item.get("bytes_after")
        size = " (%.1f -> %.1f MB)" % (before / 1048576.0, after / 1048576.0) if after is not None else ""
        checks.append(_check("reindex %s" % item["action"], "%s/%s.%s" % (host, item["database"], item["index"]),
                             "ok", item["action"] + ("ed" if item["action"] == "reindex" else "ped"),
                             "invalid or bloated indexes", item["reason"] + size))
    for item in result["skipped"]:
        checks.append(_check("reindex", "%s/%s.%s" % (host, item["database"], item["index"]), "warn", "skipped",
                             "invalid or bloated indexes", item["reason"]))
    if not checks:
        checks.append(_check("reindex", host, "ok", "nothing to rebuild", "invalid or bloated indexes", ""))
    return checks


def _mb(value: int | None) -> float:
    return round((value or 0) / 1048576.0, 1)


def info_checks(report: dict[str, Any], host: str, slow_ms: float, shown: int = 5) -> list[dict[str, Any]]:
    """The maintenance report as report checks: pg_stat_statements' state, the slowest statements, the largest
    tables with their dead tuples (reported only)."""
    checks = []
    problem = report["pg_stat_statements"]["problem"]
    if problem or not report["standby"]:
        checks.append(_check("pg_stat_statements", host, "warn" if problem else "ok",
                             "not readable" if problem else "%d statements" % len(report["statements"]),
                             "preloaded and created", problem))
    for rank, row in enumerate(report["statements"][:shown], 1):
        text = " ".join((row["query"] or "").split())
        checks.append(_check("slowest statement #%d" % rank, "%s/%s" % (host, row["database"]),
                             "warn" if row["mean_ms"] > slow_ms else "ok", row["mean_ms"], "< %g ms" % slow_ms,
                             "%s (%d calls, %s rows)" % (text[:160], row["calls"], row["rows"]), unit="ms mean"))
    for table in report["tables"][:shown]:
        name = "%s/%s.%s.%s" % (host, table["database"], table["schema"], table["table"])
        checks.append(_check("table size", name,
                             "ok", _mb(table["total_bytes"]), "reported only",
                             "table %.1f MB, indexes %.1f MB, %d dead tuples (%.0f %%)"
                             % (_mb(table["table_bytes"]), _mb(table["index_bytes"]), table["n_dead_tup"] or 0,
                                100 * table["dead_ratio"]), unit="MB"))
    return checks
