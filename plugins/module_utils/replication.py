# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading streaming-replication state from a primary or a standby, and judging it against thresholds."""

from __future__ import annotations

from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    mask_conninfo,
    parse_conninfo,
    query,
    query_one,
)

# Lag in seconds on a primary: replay_lag is measured by the walsender; when the standby has
# replayed everything the primary has written there is no lag, whatever the last sample said.
_STANDBYS_SQL = """
SELECT application_name,
       host(client_addr) AS client_addr,
       state,
       sync_state,
       sent_lsn::text AS sent_lsn,
       write_lsn::text AS write_lsn,
       flush_lsn::text AS flush_lsn,
       replay_lsn::text AS replay_lsn,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint AS lag_bytes,
       CASE WHEN replay_lsn IS NOT NULL AND replay_lsn >= pg_current_wal_lsn() THEN 0
            ELSE COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) END::float8 AS lag_seconds
  FROM pg_stat_replication
 ORDER BY application_name, client_addr
"""

_SLOTS_SQL = """
SELECT slot_name,
       slot_type,
       active,
       restart_lsn::text AS restart_lsn,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint AS retained_bytes,
       wal_status
  FROM pg_replication_slots
 ORDER BY slot_name
"""

_STANDBY_SLOTS_SQL = """
SELECT slot_name, slot_type, active, restart_lsn::text AS restart_lsn,
       NULL::bigint AS retained_bytes, wal_status
  FROM pg_replication_slots
 ORDER BY slot_name
"""

# On a standby, replay lag reads 0 when everything received has been replayed: the age of the
# last replayed transaction only measures lag while there is something left to replay.
_STANDBY_SQL = """
SELECT pg_last_wal_receive_lsn()::text AS received_lsn,
       pg_last_wal_replay_lsn()::text AS replayed_lsn,
       pg_last_xact_replay_timestamp() AS last_replay_timestamp,
       pg_is_wal_replay_paused() AS replay_paused,
       COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint AS lag_bytes,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT NULL
                 AND pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn() THEN 0
            WHEN pg_last_xact_replay_timestamp() IS NULL THEN 0
            ELSE GREATEST(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
       END::float8 AS lag_seconds,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_timeline
"""

_RECEIVER_SQL = """
SELECT status, received_tli, sender_host, sender_port, conninfo, slot_name,
       written_lsn::text AS written_lsn, flushed_lsn::text AS flushed_lsn,
       latest_end_lsn::text AS latest_end_lsn
  FROM pg_stat_wal_receiver
"""


# WAL archiving, on every server (archive_mode and archive_command are set ahead of a promotion on
# standbys); archive_library exists from 15 on (missing_ok: NULL before).
_ARCHIVER_SQL = """
SELECT current_setting('archive_mode') AS archive_mode,
       current_setting('archive_command') AS archive_command,
       current_setting('archive_library', true) AS archive_library,
       archived_count, last_archived_wal,
       to_char(last_archived_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_archived_time,
       failed_count, last_failed_wal,
       to_char(last_failed_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last_failed_time,
       last_failed_time > COALESCE(last_archived_time, '-infinity') AS failing
  FROM pg_stat_archiver
"""


def read_archiving(conn: Any) -> dict[str, Any]:
    """The server's WAL archiving: its settings and pg_stat_archiver's counters (times in UTC, ISO 8601)."""
    row = query_one(conn, _ARCHIVER_SQL)
    command = (row["archive_command"] or "").strip()
    configured = bool(command and command != "(disabled)") or bool(row["archive_library"])
    row["archives"] = row["archive_mode"] != "off" and configured
    row["failing"] = bool(row["failing"])
    return row


def archiving_problems(state: dict[str, Any], expect_archiving: bool) -> list[str]:
    """A primary whose WAL goes nowhere (when archiving is expected) or whose archive_command fails."""
    archiving = state.get("archiving")
    if state["role"] != "primary" or not archiving:
        return []
    if not archiving["archives"]:
        if not expect_archiving:
            return []
        return ["the primary does not archive WAL (archive_mode=%s): its backups and point-in-time recovery stopped "
                "here; run playbooks/backup.yml -e backup_hosts=<this host> (a failover does it for the new primary)"
                % archiving["archive_mode"]]
    if archiving["failing"]:
        return ["WAL archiving fails (%d failures, the last on %s at %s; last success: %s): check the bucket and "
                "credentials in /etc/muejam-dbops/backup.json and the server log"
                % (archiving["failed_count"], archiving["last_failed_wal"], archiving["last_failed_time"],
                   archiving["last_archived_time"] or "never")]
    return []


def is_in_recovery(conn: Any) -> bool:
    """True on a standby (or a server restoring from archive)."""
    return bool(query_one(conn, "SELECT pg_is_in_recovery() AS r")["r"])


def timeline_of_walfile(walfile: str) -> int:
    """The timeline is the first 8 hex digits of a WAL file name."""
    return int(walfile[:8], 16)


_DATABASES_SQL = """
SELECT datname AS name, pg_database_size(oid) AS size_bytes
FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname
"""


def read_primary(conn: Any) -> dict[str, Any]:
    """State of a primary: timeline, current LSN, standbys and slots."""
    head = query_one(conn, "SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS walfile")
    standbys = query(conn, _STANDBYS_SQL)
    return {
        "role": "primary",
        "timeline": timeline_of_walfile(head["walfile"]),
        "current_lsn": head["lsn"],
        "replicas": standbys,
        "streaming_replicas": sum(1 for s in standbys if s["state"] == "streaming"),
        "slots": query(conn, _SLOTS_SQL),
        "standby": {},
        "databases": query(conn, _DATABASES_SQL),
    }


def read_standby(conn: Any) -> dict[str, Any]:
    """State of a standby: upstream, WAL receiver, received/replayed LSN, lag."""
    local = query_one(conn, _STANDBY_SQL)
    receiver = query_one(conn, _RECEIVER_SQL)
    conninfo_setting = query_one(conn, "SELECT current_setting('primary_conninfo') AS c")["c"] or ""
    upstream = parse_conninfo(conninfo_setting) if conninfo_setting else {}
    timeline = receiver.get("received_tli") or local["checkpoint_timeline"]
    last_replay = local["last_replay_timestamp"]
    standby = {
        "upstream_host": receiver.get("sender_host") or upstream.get("host"),
        "upstream_port": int(receiver.get("sender_port") or upstream.get("port") or 5432),
        "upstream_conninfo": mask_conninfo(conninfo_setting) if conninfo_setting else "",
        "application_name": upstream.get("application_name"),
        "slot_name": receiver.get("slot_name") or None,
        "receiver_status": receiver.get("status") or "stopped",
        "received_lsn": local["received_lsn"],
        "replayed_lsn": local["replayed_lsn"],
        "flushed_lsn": receiver.get("flushed_lsn"),
        "replay_paused": bool(local["replay_paused"]),
        "last_replay_timestamp": last_replay.isoformat() if last_replay else None,
        "lag_bytes": int(local["lag_bytes"]),
        "lag_seconds": float(local["lag_seconds"]),
    }
    return {
        "role": "standby",
        "timeline": int(timeline),
        "current_lsn": local["replayed_lsn"],
        "replicas": query(conn, _STANDBYS_SQL.replace("pg_current_wal_lsn()", "pg_last_wal_replay_lsn()")),
        "streaming_replicas": 0,
        "slots": query(conn, _STANDBY_SLOTS_SQL),
        "standby": standby,
    }


def read_replication_state(conn: Any) -> dict[str, Any]:
    """Replication state of whichever kind of server this is, with its version."""
    state = read_standby(conn) if is_in_recovery(conn) else read_primary(conn)
    state["server_version_num"] = int(conn.server_version)
    state["server_version"] = query_one(conn, "SHOW server_version")["server_version"].split()[0]
    state["streaming_replicas"] = sum(1 for s in state["replicas"] if s["state"] == "streaming")
    state["archiving"] = read_archiving(conn)
    # Set by role pg_restore on a server restored from S3: not a member of the replication cluster.
    state["detached"] = query_one(conn, "SELECT current_setting('dbops.detached', true) AS d")["d"] or None
    return state


def standby_problems(rep: dict[str, Any], thresholds: dict[str, Any]) -> list[str]:
    """What is wrong with one standby connected to this primary (not streaming, lag over max_lag_bytes or
    max_lag_seconds; None means not checked), as sentences."""
    problems = []
    name = rep["application_name"] or rep["client_addr"] or "unnamed standby"
    max_b, max_s = thresholds.get("max_lag_bytes"), thresholds.get("max_lag_seconds")
    if rep["state"] != "streaming":
        problems.append("standby %s is %s, not streaming" % (name, rep["state"]))
    if max_b is not None and rep["lag_bytes"] > max_b:
        problems.append("standby %s replay lag is %d bytes (limit %d)" % (name, rep["lag_bytes"], max_b))
    if max_s is not None and rep["lag_seconds"] > max_s:
        problems.append("standby %s replay lag is %.1f s (limit %s s)" % (name, rep["lag_seconds"], max_s))
    return problems


def find_problems(state: dict[str, Any], thresholds: dict[str, Any]) -> list[str]:
    """Everything in a replication state that breaks the given thresholds, as readable sentences.

    thresholds keys (None means not checked): expected_role, max_lag_seconds, max_lag_bytes,
    min_streaming_replicas, max_slot_retained_bytes, expect_archiving (a primary must archive WAL).
    """
    problems: list[str] = archiving_problems(state, bool(thresholds.get("expect_archiving")))
    expected = thresholds.get("expected_role")
    if expected and expected != "any" and state["role"] != expected:
        problems.append("server is a %s, expected a %s" % (state["role"], expected))
    for rep in state["replicas"]:
        problems += standby_problems(rep, thresholds)
    minimum = thresholds.get("min_streaming_replicas")
    if minimum is not None and state["role"] == "primary" and state["streaming_replicas"] < minimum:
        problems.append("%d standby(s) streaming, at least %d required" % (state["streaming_replicas"], minimum))
    max_slot = thresholds.get("max_slot_retained_bytes")
    for slot in state["slots"]:
        if max_slot is not None and slot["retained_bytes"] is not None and slot["retained_bytes"] > max_slot:
            problems.append("slot %s (%s) retains %d bytes of WAL (limit %d)"
                            % (slot["slot_name"], "active" if slot["active"] else "inactive",
                               slot["retained_bytes"], max_slot))
        if slot.get("wal_status") == "lost":
            problems.append("slot %s has lost required WAL; its standby must be re-cloned" % slot["slot_name"])
    standby = state["standby"]
    if standby:
        max_s, max_b = thresholds.get("max_lag_seconds"), thresholds.get("max_lag_bytes")
        if standby["receiver_status"] != "streaming":
            problems.append("WAL receiver is %s, not streaming from the primary" % standby["receiver_status"])
        if standby["replay_paused"]:
            problems.append("WAL replay is paused (pg_wal_replay_resume() resumes it)")
        if max_b is not None and standby["lag_bytes"] > max_b:
            problems.append("%d bytes received but not replayed (limit %d)" % (standby["lag_bytes"], max_b))
        if max_s is not None and standby["lag_seconds"] > max_s:
            problems.append("replay lag is %.1f s (limit %s s)" % (standby["lag_seconds"], max_s))
    return problems


def not_ready(state: dict[str, Any], names: list[str], thresholds: dict[str, Any]) -> list[str]:
    """Those of names (application names) that no standby of this primary streams as within the lag limits
    of thresholds (max_lag_bytes, max_lag_seconds; None means not checked)."""
    ready = {rep["application_name"] for rep in state["replicas"] if not standby_problems(rep, thresholds)}
    return [name for name in names if name not in ready]


def absent_standbys(state: dict[str, Any], names: list[str], waited: float) -> list[str]:
    """A problem for each of names that is not connected at all (one connected but not streaming is reported
    by find_problems)."""
    connected = {rep["application_name"] for rep in state["replicas"]}
    return ["standby %s is not connected (waited %.0f s): check that it runs and can reach this server "
            "(its log, this server's pg_hba.conf, its slot)" % (name, waited)
            for name in names if name not in connected]


RUNBOOK_LAG = "Incident Response / Replication Lag"


def report_checks(state: dict[str, Any], thresholds: dict[str, Any], problems: list[str], host: str,
                  playbook: str = "") -> list[dict[str, Any]]:
    """The state as report checks (module_utils/report.py): one per standby of a primary (its lag), one for a
    standby's own replay, one for every other problem of this server, and each database's size (reported only).
    """
    max_s = thresholds.get("max_lag_seconds")
    limit = "< %g s" % max_s if max_s is not None else "reported only"
    base = {"unit": "s", "threshold": limit, "critical": True, "runbook": RUNBOOK_LAG, "playbook": playbook}
    checks, covered = [], set()
    for rep in state["replicas"]:
        found = standby_problems(rep, thresholds)
        covered.update(found)
        name = rep["application_name"] or rep["client_addr"] or "unnamed standby"
        checks.append(dict(base, check="replication lag", target="%s -> %s" % (host, name),
                           value=rep["lag_seconds"], status="fail" if found else "ok", reason="; ".join(found)))
    standby = state["standby"]
    if standby:
        mine = [p for p in problems if p not in covered]
        covered.update(mine)
        checks.append(dict(base, check="replica replay lag", target=host, value=standby["lag_seconds"],
                           status="fail" if mine else "ok", reason="; ".join(mine)))
    rest = [p for p in problems if p not in covered]
    checks.append(dict(base, check="postgresql %s" % state["role"], target=host, unit="", value=state["role"],
                       threshold="no problem found", status="fail" if rest else "ok", reason="; ".join(rest),
                       runbook="Daily Operations / Check Replication Status" if rest else ""))
    for db in state.get("databases", []):
        checks.append({"check": "database size", "target": "%s/%s" % (host, db["name"]), "unit": "MB",
                       "value": round(db["size_bytes"] / 1048576.0, 1), "threshold": "reported only",
                       "status": "ok", "reason": "", "critical": False, "runbook": "", "playbook": ""})
    return checks
