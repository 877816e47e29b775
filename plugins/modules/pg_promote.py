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
  keep_slots:
    description:
      - Physical replication slots to ensure on the (new) primary, reserving WAL at once; for example one for the
        old primary, so that WAL it needs to be rewound and to stream again is kept until it rejoins.
      - Also done when the server already was the primary; an existing slot is left as it is.
    type: list
    elements: str
    default: []
  remove_conf_files:
    description:
      - Files to remove from the C(conf.d) directory next to the server's C(config_file) (for example the standby's
        upstream settings written by M(muejam.dbops.pg_standby)); the server is reloaded when one was removed.
    type: list
    elements: str
    default: []
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
branch:
  description:
    - Where the current timeline began, from its history file (C(parent_timeline), C(lsn)); null on timeline 1
      and in check mode on a standby. A standby of the old timeline whose WAL went past C(lsn) has diverged.
  returned: success
  type: dict
  sample: {"parent_timeline": 1, "lsn": "0/5000148"}
slots_created:
  description: Slots of O(keep_slots) that were created (or would be, in check mode).
  returned: success
  type: list
  elements: str
write_xid:
  description:
    - Transaction id assigned by C(txid_current()) at the end of the run, which proves the server accepts writes
      (null in check mode on a standby).
  returned: success
  type: int
  sample: 771
conf_files_removed:
  description: Files of O(remove_conf_files) that were removed (or would be, in check mode).
  returned: success
  type: list
  elements: str
msg:
  description: What happened, in words.
  returned: always
  type: str
  sample: promoted to primary on timeline 2
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    connect,
    postgres_argument_spec,
    query,
    query_one,
)
from ansible_collections.muejam.dbops.plugins.module_utils.primary_access import ensure_physical_slots
from ansible_collections.muejam.dbops.plugins.module_utils.promotion import branch_point, promote


def write_check(conn) -> int:
    """Prove the server accepts writes: assign a transaction id (txid_current() fails in recovery)."""
    return int(query_one(conn, "SELECT txid_current() AS xid")["xid"])


def remove_conf_files(conn, names: list[str], check_mode: bool) -> list[str]:
    """Remove the named files from conf.d next to config_file; reload when one was removed."""
    if not names:
        return []
    conf_d = os.path.join(os.path.dirname(query_one(conn, "SELECT current_setting('config_file') AS f")["f"]), "conf.d")
    removed = [name for name in names if os.path.exists(os.path.join(conf_d, os.path.basename(name)))]
    if removed and not check_mode:
        for name in removed:
            try:
                os.unlink(os.path.join(conf_d, os.path.basename(name)))
            except OSError as exc:
                raise PostgresError("cannot remove %s from %s: %s (run as the cluster's owner)"
                                    % (name, conf_d, exc)) from None
        query(conn, "SELECT pg_reload_conf()")
    return removed


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        wait_seconds={"type": "int", "default": 60},
        keep_slots={"type": "list", "elements": "str", "default": []},
        remove_conf_files={"type": "list", "elements": "str", "default": []},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    try:
        conn = connect(module.params)
        try:
            result = promote(conn, module.params["wait_seconds"], module.check_mode)
            is_primary = result["was_primary"] or not module.check_mode
            result["branch"] = branch_point(conn) if is_primary else None
            result["slots_created"] = ensure_physical_slots(conn, module.params["keep_slots"], module.check_mode)
            result["conf_files_removed"] = remove_conf_files(conn, module.params["remove_conf_files"],
                                                             module.check_mode)
            result["write_xid"] = write_check(conn) if is_primary else None
        finally:
            conn.close()
    except PostgresError as exc:
        module.fail_json(msg=str(exc))
    extra = ["slot %s created" % name for name in result["slots_created"]]
    extra += ["%s removed" % name for name in result["conf_files_removed"]]
    if extra:
        result["msg"] += "; " + "; ".join(extra)
    changed = result["promoted"] or bool(result["slots_created"]) or bool(result["conf_files_removed"])
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
