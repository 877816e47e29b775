#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_promote
short_description: Promote a PostgreSQL standby to primary
version_added: 0.1.0
description:
  - Promotes a standby with C(pg_promote(wait => true)) and waits until it accepts writes.
  - Returns the new timeline and the WAL positions at promotion.
  - On a server that is already a primary it changes nothing and says so, which makes a failover
    playbook safe to run again.
  - It does not fence the old primary or repoint other standbys; the C(muejam.dbops.pg_failover)
    role does that around this module.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  wait_seconds:
    description:
      - How long to wait for the promotion to finish before failing.
    type: int
    default: 60
requirements:
  - PostgreSQL 12 or later (C(pg_promote())); the login role must be a superuser or have EXECUTE on C(pg_promote).
seealso:
  - name: pg_promote() (PostgreSQL documentation)
    description: The function this module calls.
    link: https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-RECOVERY-CONTROL
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Promote this standby
  muejam.dbops.pg_promote:
    wait_seconds: 30
  become: true
  become_user: postgres
  register: promotion

- name: Show the new timeline
  ansible.builtin.debug:
    msg: "Primary now on timeline {{ promotion.timeline }} (was a standby: {{ promotion.changed }})"
"""

RETURN = r"""
promoted:
  description: True when this run promoted the server (or would, in check mode).
  returned: success
  type: bool
  sample: true
was_primary:
  description: True when the server already was a primary, so nothing was done.
  returned: success
  type: bool
  sample: false
timeline:
  description: Timeline of the server after the run (in check mode, the standby's current timeline).
  returned: success
  type: int
  sample: 2
replayed_lsn:
  description: Last WAL position replayed before promotion (null when the server already was a primary).
  returned: success
  type: str
  sample: 0/5000148
lsn:
  description: Current WAL position after the run (in check mode, the last replayed position).
  returned: success
  type: str
  sample: 0/50001C0
msg:
  description: What happened, in words.
  returned: always
  type: str
  sample: promoted to primary on timeline 2
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    connect,
    postgres_argument_spec,
)
from ansible_collections.muejam.dbops.plugins.module_utils.promotion import promote


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(wait_seconds={"type": "int", "default": 60})
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    try:
        conn = connect(module.params)
        try:
            result = promote(conn, module.params["wait_seconds"], module.check_mode)
        finally:
            conn.close()
    except PostgresError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=result["promoted"], **result)


if __name__ == "__main__":
    main()
