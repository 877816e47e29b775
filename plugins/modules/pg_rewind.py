#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_rewind
short_description: Rewind a PostgreSQL server that diverged from the new primary, in one step
version_added: 0.4.0
description:
  - Brings a server whose WAL went past the new primary's branch point (an old primary, or a replica that replayed
    more than the promoted one) back onto the new primary's timeline with C(pg_rewind) (Debian layout, run as root).
  - Reads the cluster state from the control file (as M(muejam.dbops.pg_datadir_info) does). A running server is
    stopped; one that did not stop cleanly first finishes crash recovery in standby mode (C(standby.signal)), so it
    can never accept writes, then stops. A masked service (a fenced old primary) is unmasked, not started.
  - The password reaches C(pg_rewind) through a passfile (mode 0600) whose fields are escaped as libpq reads them,
    so a password holding C(:) or C(\) works; the source conninfo quotes its values.
  - On success it leaves C(standby.signal), so the server starts as a standby; then point it at the primary with
    M(muejam.dbops.pg_standby) (role M(muejam.dbops.pg_replica)). When C(pg_rewind) fails the data directory is kept
    as it is (O(on_failure=fail)) or renamed aside, never deleted (O(on_failure=move_aside)), for a re-clone.
  - The new primary must let this host connect to database C(postgres) as O(rewind_user);
    M(muejam.dbops.pg_replica_access) with C(database=postgres) and C(manage_role=false) writes that line.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  pg_version:
    description: PostgreSQL major version of the cluster to rewind.
    type: int
    required: true
  cluster_name:
    description: Debian cluster name (C(/etc/postgresql/<pg_version>/<cluster_name>)).
    type: str
    default: main
  data_directory:
    description: The data directory. Default C(/var/lib/postgresql/<pg_version>/<cluster_name>).
    type: path
  port:
    description: Port of this server (to see when crash recovery has finished).
    type: int
    default: 5432
  source_host:
    description: The new primary, as this host reaches it.
    type: str
    required: true
  source_port:
    description: Its port.
    type: int
    default: 5432
  rewind_user:
    description:
      - The role C(pg_rewind) connects as (a superuser, or a role with the grants pg_rewind documents).
      - When the new primary has not checkpointed since its promotion, the module runs C(CHECKPOINT) there first
        (pg_rewind before PostgreSQL 16 would otherwise answer "no rewind required" for a server that diverged),
        so a role that is not a superuser also needs C(pg_checkpoint) (PostgreSQL 15 and later).
    type: str
    default: postgres
  rewind_password:
    description: Its password on the new primary (never logged).
    type: str
    required: true
  passfile:
    description: Where the passfile is written (owned by postgres, mode 0600).
    type: path
    default: /var/lib/postgresql/.pgpass_pg_rewind
  on_failure:
    description:
      - When C(pg_rewind) fails, C(fail) (the data directory untouched) or C(move_aside) (renamed to
        C(<data_directory>.diverged-<time>)).
    type: str
    default: fail
    choices: [fail, move_aside]
  recovery_timeout:
    description: Seconds to wait for crash recovery in standby mode.
    type: int
    default: 120
  pg_lib_root:
    description: Where the PostgreSQL binaries live (C(<pg_lib_root>/<pg_version>/bin)).
    type: path
    default: /usr/lib/postgresql
attributes:
  check_mode:
    support: full
    details: Reports the steps it would take; does not stop, start or rewind anything.
  diff_mode:
    support: none
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Rewind the old primary onto the new primary's timeline
  muejam.dbops.pg_rewind:
    pg_version: 15
    source_host: 10.0.0.12
    rewind_password: "{{ vault_postgres_password }}"
    on_failure: move_aside
  become: true
"""

RETURN = r"""
verdict:
  description:
    - C(rewound), C(not_needed) (the timelines had not diverged), C(failed) (with O(on_failure=move_aside)); null in
      check mode.
  returned: always
  type: str
  sample: rewound
actions:
  description: What was done (or would be, in check mode), in order.
  returned: always
  type: list
  elements: str
moved_aside:
  description: Where the data directory went after a failed rewind with O(on_failure=move_aside), else null.
  returned: success
  type: str
output:
  description: The last lines of pg_rewind's output (passwords masked).
  returned: when pg_rewind ran
  type: str
seconds:
  description: Time spent per command.
  returned: always
  type: dict
msg:
  description: What happened, in words.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.rewind import Rewind
from ansible_collections.muejam.dbops.plugins.module_utils.standby_setup import cluster_host_argument_spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=cluster_host_argument_spec(
            source_host={"type": "str", "required": True},
            source_port={"type": "int", "default": 5432},
            rewind_user={"type": "str", "default": "postgres"},
            rewind_password={"type": "str", "required": True, "no_log": True},
            passfile={"type": "path", "default": "/var/lib/postgresql/.pgpass_pg_rewind"},
            on_failure={"type": "str", "default": "fail", "choices": ["fail", "move_aside"]},
            recovery_timeout={"type": "int", "default": 120},
        ),
        supports_check_mode=True,
    )
    Rewind(module).converge()


if __name__ == "__main__":
    main()
