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
    description: Its password (never logged; stored as SCRAM-SHA-256). Required unless O(manage_role=false).
    type: str
  manage_role:
    description:
      - Create the role or set its attributes and password. V(false) leaves an existing role alone (for example
        the superuser that C(pg_rewind) connects as) and only writes the pg_hba.conf lines and slots.
    type: bool
    default: true
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
        description:
          - Its address with a prefix length (C(192.0.2.10/32)); never a whole network unless you mean it.
          - One that lets every address connect (C(0.0.0.0/0), C(::/0), C(0.0.0.0/32)) is refused.
        type: str
        required: true
      slot:
        description: Its physical replication slot; none when empty (an entry for C(pg_rewind) needs no slot).
        type: str
      database:
        description: >-
          The database of its pg_hba.conf line: C(replication) to stream, C(postgres) for C(pg_rewind), which
          connects to a normal database.
        type: str
        default: replication
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
    - C(hba_content) is the primary's C(pg_hba.conf) with this run's entries (null when no replica was given). A new
      replica starts from it (O(muejam.dbops.pg_standby#module:hba_content)), so that once promoted it accepts the
      logins its primary accepted, the application's among them.
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

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.masking import scrub
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    postgres_argument_spec,
)
from ansible_collections.muejam.dbops.plugins.module_utils.primary_access import grant_replica_access


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        replication_user={"type": "str", "default": "replicator"},
        replication_password={"type": "str", "no_log": True},
        manage_role={"type": "bool", "default": True},
        replicas={"type": "list", "elements": "dict", "required": True, "options": {
            "name": {"type": "str", "required": True},
            "source": {"type": "str", "required": True},
            "slot": {"type": "str"},
            "database": {"type": "str", "default": "replication"},
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
    if params["manage_role"] and not params["replication_password"]:
        module.fail_json(msg="replication_password is empty: set the replication password (keep it in Ansible Vault)")
    try:
        result = grant_replica_access(params, module.check_mode)
    except PostgresError as exc:
        module.fail_json(msg=scrub(str(exc), params["replication_password"] or ""))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
