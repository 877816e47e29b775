#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_standby
short_description: Make this host a streaming standby of a PostgreSQL primary, in one step
version_added: 0.3.0
description:
  - The replica side of M(muejam.dbops.pg_replica) in one round trip (Debian layout, run as root).
  - Reads the data directory first (like M(muejam.dbops.pg_datadir_info)) and refuses, changing nothing, when it
    holds anything but a standby of the expected primary, unless O(force=true).
  - Writes the replication passfile (mode 0600), clones with C(pg_basebackup) when the directory is absent or
    empty (or forced; a forced directory is moved aside, never deleted), leaves C(standby.signal), and writes two
    C(conf.d) files it owns, one with the settings that need a restart and one with C(primary_conninfo) and
    C(primary_slot_name), which a reload applies.
  - Then starts, restarts or reloads the server only as much as the changes need, and waits until its WAL
    receiver streams. A second run on a healthy standby changes nothing.
  - The password reaches C(pg_basebackup) and the WAL receiver through the passfile, never a command line.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  pg_version:
    description:
      - PostgreSQL major version of the primary; it must be installed on this host.
      - The alias C(major) is deprecated and will be removed in 0.5.0.
    type: int
    required: true
    aliases: [major]
  cluster_name:
    description: Debian cluster name (C(/etc/postgresql/<pg_version>/<cluster_name>)).
    type: str
    default: main
  data_directory:
    description: The standby's data directory. Default C(/var/lib/postgresql/<pg_version>/<cluster_name>).
    type: path
  port:
    description: Port of the standby (to check that it streams).
    type: int
    default: 5432
  primary_host:
    description: Address of the primary (C(primary_conninfo), C(pg_basebackup)).
    type: str
    required: true
  primary_port:
    description: Port of the primary.
    type: int
    default: 5432
  replication_user:
    description: Role with the REPLICATION attribute on the primary.
    type: str
    default: replicator
  replication_password:
    description: Its password, written only to O(passfile).
    type: str
    required: true
  passfile:
    description: The libpq passfile (mode 0600, owned by postgres).
    type: path
    default: /var/lib/postgresql/.pgpass_pg_replica
  application_name:
    description: Name the standby announces (C(pg_stat_replication.application_name)).
    type: str
    required: true
  slot_name:
    description: Physical replication slot on the primary (it must exist; M(muejam.dbops.pg_replica) creates it).
    type: str
    required: true
  expected_system_identifier:
    description: System identifier of the primary; a data directory with another one holds a different cluster.
    type: str
    required: true
  force:
    description:
      - Clone even when the data directory holds something else. The old directory is renamed to
        C(<data_directory>.replaced-<timestamp>), not deleted.
    type: bool
    default: false
  settings:
    description: Settings that need a restart (for example C(listen_addresses), C(hot_standby), C(wal_keep_size)).
    type: dict
    default: {}
  wal_retrieve_retry_interval:
    description:
      - How soon the standby tries its upstream again after losing it (written with the upstream, applied by a
        reload). Also bounds how long a standby waits before following a new primary after a failover.
    type: str
    default: 1s
  basebackup_extra_args:
    description: Extra arguments for C(pg_basebackup) (for example C(--max-rate=100M)).
    type: list
    elements: str
    default: []
  wait_seconds:
    description: How long to wait (see O(wait_until)). C(0) does not wait.
    type: int
    default: 300
  wait_until:
    description:
      - C(streaming) waits until the WAL receiver streams.
      - C(running) returns once the server runs (its C(postmaster.pid) names a live process) and leaves the wait for
        streaming to the caller, for example M(muejam.dbops.pg_replication_status) with O(ignore:wait_for) on the
        primary, which sees the slot and the lag as well. A start that fails is reported at once either way.
    type: str
    choices: [streaming, running]
    default: streaming
  initial_settings:
    description:
      - Settings for the first C(postgresql.conf), used only when this host has no configuration for the cluster
        yet (a new replica). Pass the primary's locale, time zone and text search settings
        (C(lc_messages), C(lc_monetary), C(lc_numeric), C(lc_time), C(timezone), C(log_timezone), C(datestyle),
        C(default_text_search_config)), and C(max_connections) at least as high as the primary's.
      - The rest is what C(initdb) would choose (C(shared_buffers=128MB), ...); C(pg_createcluster) adds Debian's own.
    type: dict
    default: {}
  hba_content:
    description:
      - The text of the first C(pg_hba.conf), used only when this host has no configuration for the cluster yet (a
        new replica). Pass the primary's (M(muejam.dbops.pg_replica_access) returns it as C(primary.hba_content)), so
        that the replica accepts the logins its primary accepts and keeps accepting them once promoted.
      - When not given, Debian's C(initdb) default (peer locally, passwords over TCP from the loopback only).
    type: str
  pg_lib_root:
    description: Where PostgreSQL's versioned directories are installed (Debian layout).
    type: path
    default: /usr/lib/postgresql
  pg_share_root:
    description: Where the configuration samples of each major version are (C(<pg_share_root>/<major>/*.sample)).
    type: path
    default: /usr/share/postgresql
notes:
  - Needs C(pg_createcluster), C(runuser) and systemd (C(postgresql@<major>-<cluster>)), as on Debian.
  - A new replica gets its configuration without an C(initdb). The samples are written into the cloned directory
    and C(pg_createcluster) integrates it.
  - The copy is flushed to disk by the module (every file, then every directory, as C(pg_basebackup) does without
    C(--no-sync)) while C(pg_createcluster) runs, and the server starts only after that. A copy that cannot be
    flushed is moved aside (C(<data_directory>.unsynced-<time>)) and the module fails.
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Follow the primary
  muejam.dbops.pg_standby:
    pg_version: 15
    primary_host: pg1
    replication_password: "{{ vault_replication_password }}"
    application_name: pg2
    slot_name: pg2
    expected_system_identifier: "{{ primary.system_identifier }}"
    settings:
      listen_addresses: "*"
      hot_standby: true
  become: true
"""

RETURN = r"""
state:
  description: What the data directory held before the run (see M(muejam.dbops.pg_datadir_info)).
  returned: always
  type: str
  sample: replica
verdict:
  description: C(keep), C(clone) or C(refuse).
  returned: always
  type: str
  sample: keep
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: success
  type: list
  elements: str
  sample: ["wrote 51-pg_replica-upstream.conf", "reloaded"]
cloned:
  description: Whether the data directory was cloned from the primary.
  returned: success
  type: bool
moved_aside:
  description: Where a forced, replaced data directory was moved (null when none was).
  returned: success
  type: str
receiver_status:
  description:
    - Status of the WAL receiver at the end (C(streaming) when healthy); with O(wait_until=running), C(running) once
      the server runs. Null in check mode or without waiting.
  returned: success
  type: str
  sample: streaming
seconds:
  description:
    - Wall time spent in each command the module ran (C(pg_basebackup), C(systemctl start), C(psql), ...), and in
      the wait of O(wait_until) (C(wait until running) or C(wait until streaming), polls included).
  returned: always
  type: dict
  sample: {"pg_basebackup": 41.2, "systemctl start": 0.9, "psql": 0.4}
msg:
  description: What happened, in words.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.standby_setup import Standby, cluster_host_argument_spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=cluster_host_argument_spec(
            pg_version={"type": "int", "required": True, "aliases": ["major"],
                        "deprecated_aliases": [{"name": "major", "version": "0.5.0",
                                                "collection_name": "muejam.dbops"}]},
            primary_host={"type": "str", "required": True},
            primary_port={"type": "int", "default": 5432},
            replication_user={"type": "str", "default": "replicator"},
            replication_password={"type": "str", "required": True, "no_log": True},
            passfile={"type": "path", "default": "/var/lib/postgresql/.pgpass_pg_replica"},
            application_name={"type": "str", "required": True},
            slot_name={"type": "str", "required": True},
            expected_system_identifier={"type": "str", "required": True},
            force={"type": "bool", "default": False},
            settings={"type": "dict", "default": {}},
            wal_retrieve_retry_interval={"type": "str", "default": "1s"},
            basebackup_extra_args={"type": "list", "elements": "str", "default": []},
            wait_seconds={"type": "int", "default": 300},
            wait_until={"type": "str", "default": "streaming", "choices": ["streaming", "running"]},
            pg_share_root={"type": "path", "default": "/usr/share/postgresql"},
            initial_settings={"type": "dict", "default": {}},
            hba_content={"type": "str"},
        ),
        supports_check_mode=True,
    )
    Standby(module).converge()


if __name__ == "__main__":
    main()
