#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_replica_access
short_description: Let replicas stream from this PostgreSQL primary (role, pg_hba.conf entries, slots) in one step
version_added: 0.3.0
description:
  - The primary side of M(muejam.dbops.pg_replica) in one round trip. Runs on the primary as its OS owner
    (C(become_user=postgres)), connecting through the Unix socket.
  - Ensures the replication role exists with C(LOGIN REPLICATION) and the given password, stored as
    SCRAM-SHA-256. The password is set again only when the stored verifier does not match it.
  - Ensures one C(host replication <user> <address> <method>) line per replica in C(pg_hba.conf), marked with a
    comment naming the replica. A replica whose address changed gets its line replaced, a new one is appended;
    lines the module does not own are never touched. After an edit it reloads the server and reads
    C(pg_hba_file_rules); if PostgreSQL reports an error in the file, the previous file is put back, the server
    reloaded again, and the module fails.
  - Ensures a physical replication slot per replica (reserving WAL at once).
  - Reports whether the primary can later be rewound (data checksums or C(wal_log_hints)); with O(wal_log_hints)
    it turns that setting on, which takes effect at the next restart.
  - Before changing anything it reads the primary (version, system identifier, the settings a new standby starts
    from, RV(primary)) and judges every replica it is given facts for (O(replicas[].datadir), from
    M(muejam.dbops.pg_datadir_info) on the replica). A replica with another major version installed, or whose data
    directory holds anything but nothing or a standby of this primary, makes it fail with nothing changed.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  replication_user:
    description: The replication role.
    type: str
    default: replicator
  replication_password:
    description: Its password (never logged; stored as SCRAM-SHA-256).
    type: str
    required: true
  replicas:
    description: The replicas allowed to stream.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Replica name, used in the pg_hba.conf comment.
        type: str
        required: true
      source:
        description: Its address with a prefix length (C(192.0.2.10/32)); never a whole network unless you mean it.
        type: str
        required: true
      slot:
        description: Its physical replication slot.
        type: str
        required: true
      datadir:
        description:
          - What M(muejam.dbops.pg_datadir_info) returned on the replica (C(installed_majors) and C(candidates) are
            read; without O(ignore:data_directory) there, the candidate for this primary's major version is judged).
          - When given, the replica is judged before anything changes (see RV(replicas)).
        type: dict
      force:
        description: Accept a data directory that holds something else (it will be moved aside and re-cloned).
        type: bool
        default: false
  primary_name:
    description: Name of this primary in messages (for example its inventory name).
    type: str
    default: the primary
  method:
    description: Authentication method of the pg_hba.conf lines.
    type: str
    default: scram-sha-256
    choices: [scram-sha-256, md5]
  wal_log_hints:
    description:
      - Turn on C(wal_log_hints) (C(ALTER SYSTEM), reload) when the cluster has no data checksums, so that this
        primary can later be rewound with C(pg_rewind) after a failover. It takes effect at the next restart; see
        RV(restart_required).
    type: bool
    default: false
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Let pg2 stream from the primary
  muejam.dbops.pg_replica_access:
    replication_password: "{{ vault_replication_password }}"
    replicas:
      - {name: pg2, source: 192.0.2.12/32, slot: pg2}
  delegate_to: pg1
  become: true
  become_user: postgres
"""

RETURN = r"""
changes:
  description: What was changed (in check mode, what would be), in words.
  returned: success
  type: list
  elements: str
  sample: ["role replicator created", "pg_hba.conf: pg2 allowed to replicate from 192.0.2.12/32", "slot pg2 created"]
reloaded:
  description: Whether the server was reloaded (after a pg_hba.conf edit).
  returned: success
  type: bool
hba_file:
  description: The pg_hba.conf edited.
  returned: success
  type: str
  sample: /etc/postgresql/15/main/pg_hba.conf
rewind_ready:
  description: Whether the primary has data checksums or wal_log_hints on now (pg_rewind can later rewind it).
  returned: success
  type: bool
primary:
  description:
    - What the primary is, read before any change. C(initial_settings) are the locale, time zone and hot-standby
      limits a new standby's first C(postgresql.conf) takes from its primary (M(muejam.dbops.pg_standby)).
  returned: success
  type: dict
  sample: {version_num: 150010, major: 15, system_identifier: "7441211716372488212", data_checksums: true,
           wal_log_hints: false, initial_settings: {max_connections: "100", TimeZone: Etc/UTC}}
replicas:
  description: For each replica given O(replicas[].datadir), the verdict on its data directory and why.
  returned: success
  type: dict
  sample: {pg2: {verdict: clone, reason: /var/lib/postgresql/15/main is empty, the replica will be cloned}}
restart_required:
  description:
    - With O(wal_log_hints), whether wal_log_hints is configured but waits for a restart of the primary (this run
      or an earlier one set it). The module never restarts the server.
  returned: success
  type: bool
data_checksums:
  description: Whether the cluster has data checksums.
  returned: success
  type: bool
msg:
  description: Summary.
  returned: always
  type: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.pg_datadir import REFUSE, judge_replica, write_atomically
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    connect,
    postgres_argument_spec,
    query,
    query_one,
)
from ansible_collections.muejam.dbops.plugins.module_utils.replica_access import plan_hba, role_changes


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


def ensure_hba(module, conn, params) -> tuple[list[str], bool, str]:
    hba_file = query_one(conn, "SELECT current_setting('hba_file') AS f")["f"]
    if not params["replicas"]:
        return [], False, hba_file
    try:
        with open(hba_file, encoding="utf-8") as handle:
            old = handle.read()
    except OSError as exc:
        raise PostgresError("cannot read %s: %s; run the module as the cluster's owner (become_user: postgres)"
                            % (hba_file, exc)) from None
    new, changes = plan_hba(old, params["replicas"], params["replication_user"], params["method"])
    if not changes or module.check_mode:
        return changes, False, hba_file
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
    return changes, True, hba_file


def ensure_slots(conn, params, check_mode: bool) -> list[str]:
    existing = {row["slot_name"]: row["slot_type"] for row in
                query(conn, "SELECT slot_name, slot_type FROM pg_replication_slots")}
    changes = []
    for replica in params["replicas"]:
        slot = replica["slot"]
        if existing.get(slot) == "physical":
            continue
        if slot in existing:
            raise PostgresError("slot %s exists but is a %s slot, not a physical one: drop or rename it first"
                                % (slot, existing[slot]))
        if not check_mode:
            query(conn, "SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        changes.append("slot %s created" % slot)
    return changes


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
        if replica["datadir"] is None:
            continue
        verdict, reason = judge_replica(replica["datadir"], primary["major"], primary["system_identifier"],
                                        replica["force"], replica["name"], params["primary_name"])
        verdicts[replica["name"]] = {"verdict": verdict, "reason": reason}
        if verdict == REFUSE:
            problems.append(reason)
    return verdicts, problems


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        replication_user={"type": "str", "default": "replicator"},
        replication_password={"type": "str", "required": True, "no_log": True},
        replicas={"type": "list", "elements": "dict", "required": True, "options": {
            "name": {"type": "str", "required": True},
            "source": {"type": "str", "required": True},
            "slot": {"type": "str", "required": True},
            "datadir": {"type": "dict"},
            "force": {"type": "bool", "default": False},
        }},
        method={"type": "str", "default": "scram-sha-256", "choices": ["scram-sha-256", "md5"]},
        wal_log_hints={"type": "bool", "default": False},
        primary_name={"type": "str", "default": "the primary"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    params = module.params
    if not params["replication_password"]:
        module.fail_json(msg="replication_password is empty: set the replication password (keep it in Ansible Vault)")
    try:
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
            changes = ensure_role(conn, params, module.check_mode)
            hba_changes, reloaded, hba_file = ensure_hba(module, conn, params)
            changes += hba_changes
            changes += ensure_slots(conn, params, module.check_mode)
            restart_required = False
            if params["wal_log_hints"]:
                hint_changes, restart_required = ensure_wal_log_hints(conn, primary, module.check_mode)
                changes += hint_changes
        finally:
            conn.close()
    except PostgresError as exc:
        module.fail_json(msg=str(exc).replace(params["replication_password"], "********"))
    summary = {"version_num": primary["version_num"], "major": primary["major"],
               "system_identifier": primary["system_identifier"], "data_checksums": primary["checksums"],
               "wal_log_hints": primary["hints"], "initial_settings": primary["initial_settings"] or {}}
    module.exit_json(changed=bool(changes), changes=changes, reloaded=reloaded, hba_file=hba_file, primary=summary,
                     replicas=verdicts, data_checksums=primary["checksums"],
                     rewind_ready=primary["checksums"] or primary["hints"], restart_required=restart_required,
                     msg="; ".join(changes) or "replication access already in place")


if __name__ == "__main__":
    main()
