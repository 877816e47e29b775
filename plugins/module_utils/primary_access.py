# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The primary side of a replica, against the server: the replication role, one pg_hba.conf line per replica
(checked with pg_hba_file_rules, put back when rejected), physical slots and wal_log_hints. What to change
is decided by the pure functions of replica_access.py and pg_datadir.py; this file runs the SQL.
Used by pg_replica_access (all of it) and pg_promote (the slots of the replicas it keeps)."""

from __future__ import annotations

import os
import re
from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.files import write_atomically
from ansible_collections.muejam.dbops.plugins.module_utils.pg_datadir import REFUSE, judge_replica
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import PostgresError, connect, query, query_one
from ansible_collections.muejam.dbops.plugins.module_utils.replica_access import plan_hba, role_changes, too_wide


def ensure_role(conn, params, check_mode: bool) -> list[str]:
    user, password = params["replication_user"], params["replication_password"]
    row = query(conn, "SELECT rolcanlogin, rolreplication, rolpassword FROM pg_authid WHERE rolname = %s", (user,))
    needed = role_changes(row[0] if row else None, password)
    if not needed:
        return []
    if not check_mode:
        name = query_one(conn, "SELECT quote_ident(%s) AS name", (user,))["name"]
        query(conn, "SET password_encryption = 'scram-sha-256'")
        verb = "CREATE" if needed == ["create"] else "ALTER"
        query(conn, "%s ROLE %s WITH LOGIN REPLICATION PASSWORD %%s" % (verb, name), (password,))
    if needed == ["create"]:
        return ["role %s created" % user]
    return ["role %s: %s updated" % (user, " and ".join(needed))]


def ensure_wal_log_hints(conn, settings: dict, check_mode: bool) -> tuple[list[str], bool]:
    """wal_log_hints on (ALTER SYSTEM, reload) when the cluster has no data checksums; (changes, restart needed)."""
    if settings["checksums"] or settings["hints"]:
        return [], False
    # Set earlier (by ALTER SYSTEM or a file) and waiting for a restart? The last file entry wins; its
    # error then reads "setting could not be applied", which is why errors are not filtered out.
    configured = query(conn, "SELECT setting FROM pg_file_settings WHERE name = 'wal_log_hints' "
                             "ORDER BY seqno DESC LIMIT 1")
    if configured and configured[0]["setting"].lower() in ("on", "true", "yes", "1"):
        return [], True
    if not check_mode:
        query(conn, "ALTER SYSTEM SET wal_log_hints = on")
        query(conn, "SELECT pg_reload_conf()")
    return ["wal_log_hints turned on (no data checksums; takes effect at the next restart)"], True


def ensure_hba(conn, params, check_mode: bool) -> tuple[list[str], bool, str, str | None]:
    """(changes, reloaded, hba_file, the file's text with the changes): a new replica starts from that
    text, so it accepts the logins its primary accepts (the application's above all) if it is promoted."""
    hba_file = query_one(conn, "SELECT current_setting('hba_file') AS f")["f"]
    if not params["replicas"]:
        return [], False, hba_file, None
    try:
        with open(hba_file, encoding="utf-8") as handle:
            old = handle.read()
    except OSError as exc:
        raise PostgresError("cannot read %s: %s; run the module as the cluster's owner (become_user: postgres)"
                            % (hba_file, exc)) from None
    new, changes = plan_hba(old, params["replicas"], params["replication_user"], params["method"])
    if not changes or check_mode:
        return changes, False, hba_file, new
    try:
        write_atomically(hba_file, new, os.stat(hba_file).st_mode & 0o7777)
    except OSError as exc:
        raise PostgresError("cannot write %s: %s; nothing was changed there" % (hba_file, exc)) from None
    query(conn, "SELECT pg_reload_conf()")
    errors = query(conn, "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL")
    if errors:
        write_atomically(hba_file, old, os.stat(hba_file).st_mode & 0o7777)
        query(conn, "SELECT pg_reload_conf()")
        raise PostgresError("PostgreSQL rejects %s after the edit (%s); the previous file was put back and "
                            "reloaded. Check the replicas' addresses." % (
                                hba_file, "; ".join("line %s: %s" % (e["line_number"], e["error"]) for e in errors)))
    return changes, True, hba_file, new


def ensure_physical_slots(conn, names: list[str], check_mode: bool) -> list[str]:
    """Create the missing physical slots (reserving WAL at once); returns the names created. A name taken
    by a logical slot is refused: a standby cannot stream from it, and dropping it would lose a consumer's place."""
    existing = {row["slot_name"]: row["slot_type"] for row in
                query(conn, "SELECT slot_name, slot_type FROM pg_replication_slots")}
    created = []
    for slot in names:
        if existing.get(slot) == "physical" or slot in created:
            continue
        if slot in existing:
            raise PostgresError("slot %s exists but is a %s slot, not a physical one: drop or rename it first"
                                % (slot, existing[slot]))
        if not check_mode:
            query(conn, "SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        created.append(slot)
    return created


# Everything the role needs from the primary, and what judging the replicas needs, in one query.
PRIMARY_SQL = """
SELECT current_setting('server_version_num')::int AS version_num,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       pg_is_in_recovery() AS in_recovery,
       current_setting('data_checksums') = 'on' AS checksums,
       current_setting('wal_log_hints') = 'on' AS hints,
       (SELECT json_object_agg(name, setting) FROM pg_settings WHERE name = ANY(%s)) AS initial_settings
"""
# A new standby's first postgresql.conf: the primary's locale and time zone, and the limits a hot standby
# needs at least as high as its primary's.
INITIAL_SETTINGS = ["lc_messages", "lc_monetary", "lc_numeric", "lc_time", "TimeZone", "log_timezone", "DateStyle",
                    "default_text_search_config", "max_connections", "max_worker_processes", "max_wal_senders",
                    "max_prepared_transactions", "max_locks_per_transaction"]
_ADDRESS = re.compile(r"^(([0-9]{1,3}[.]){3}[0-9]{1,3}|[0-9a-fA-F:]+)/[0-9]+$")


def refusals(params, primary: dict) -> tuple[dict, list[str]]:
    """Verdicts for the replicas given facts, and every reason to change nothing."""
    verdicts, problems = {}, []
    for replica in params["replicas"]:
        if not _ADDRESS.match(replica["source"]):
            problems.append("The address of %s is unknown (%s): set pg_replica_address (its pg_hba.conf entry on "
                            "the primary is that one address)." % (replica["name"], replica["source"]))
        elif too_wide(replica["source"]):
            problems.append("The address of %s (%s) lets every address connect: give the replica's own address "
                            "(/32 or /128), or the one network you mean." % (replica["name"], replica["source"]))
        if replica["datadir"] is None:
            continue
        verdict, reason = judge_replica(replica["datadir"], primary["major"], primary["system_identifier"],
                                        replica["force"], replica["name"], params["primary_name"])
        verdicts[replica["name"]] = {"verdict": verdict, "reason": reason}
        if verdict == REFUSE:
            problems.append(reason)
    return verdicts, problems


def grant_replica_access(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Judge the replicas against the primary, then role, pg_hba, slots and wal_log_hints; the module's result.
    Refuses (PostgresError, nothing changed) a standby given as primary and any replica judge_replica refuses."""
    conn = connect(params)
    try:
        primary = query_one(conn, PRIMARY_SQL, (INITIAL_SETTINGS,))
        primary["major"] = primary["version_num"] // 10000
        if primary["in_recovery"]:
            raise PostgresError("%s is in recovery (a standby), not a primary: set pg_replica_primary to the "
                                "current primary. Nothing was changed." % params["primary_name"])
        verdicts, problems = refusals(params, primary)
        if problems:
            raise PostgresError(" ".join(problems) + " Nothing was changed.")
        changes = ensure_role(conn, params, check_mode) if params["manage_role"] else []
        hba_changes, reloaded, hba_file, hba_content = ensure_hba(conn, params, check_mode)
        changes += hba_changes
        changes += ["slot %s created" % slot for slot in
                    ensure_physical_slots(conn, [r["slot"] for r in params["replicas"] if r["slot"]], check_mode)]
        restart_required = False
        if params["wal_log_hints"]:
            hint_changes, restart_required = ensure_wal_log_hints(conn, primary, check_mode)
            changes += hint_changes
    finally:
        conn.close()
    summary = {"version_num": primary["version_num"], "major": primary["major"],
               "system_identifier": primary["system_identifier"], "data_checksums": primary["checksums"],
               "wal_log_hints": primary["hints"], "initial_settings": primary["initial_settings"] or {},
               "hba_content": hba_content}
    return {"changed": bool(changes), "changes": changes, "reloaded": reloaded, "hba_file": hba_file,
            "primary": summary, "replicas": verdicts, "data_checksums": primary["checksums"],
            "rewind_ready": primary["checksums"] or primary["hints"], "restart_required": restart_required,
            "msg": "; ".join(changes) or "replication access already in place"}
