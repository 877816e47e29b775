#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_failover_plan
short_description: Decide a PostgreSQL failover from the state of every host, or refuse
version_added: 0.1.0
description:
  - Takes the replication state each PostgreSQL host reported (for example with
    M(muejam.dbops.pg_replication_status)) and decides which server becomes the primary.
  - Picks the named O(candidate), or else the reachable standby holding the most WAL.
  - Refuses, changing nothing, when the failover would make things worse - two servers accepting
    writes (split brain), no reachable standby, an old primary that cannot be fenced (unless
    O(accept_unreachable_primary)), or a candidate that may lose more WAL than O(max_data_loss_bytes)
    (unless O(force)).
  - When a previous run already promoted a server, plans only the reconfiguration around it, so a
    failover can be run again safely.
  - Pure computation; it contacts no server. Run it once (C(run_once)). An action plugin of the same name runs it
    inside the controller's process, without a connection or a module payload.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  nodes:
    description: One entry per PostgreSQL host.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Inventory name of the host.
        type: str
        required: true
      reachable:
        description: Whether the host answered (so it can be fenced), whether or not PostgreSQL runs there.
        type: bool
        required: true
      role:
        description: C(primary), C(standby), or null when PostgreSQL does not answer there.
        type: str
      timeline:
        description: Timeline reported by the host.
        type: int
      current_lsn:
        description: Current WAL position (primaries).
        type: str
      received_lsn:
        description: Last WAL position received (standbys).
        type: str
      replayed_lsn:
        description: Last WAL position replayed (standbys).
        type: str
      upstream_host:
        description: Host in the standby's C(primary_conninfo), as its WAL receiver reports it (standbys).
        type: str
      receiver_status:
        description: Status of the standby's WAL receiver (C(streaming) when healthy).
        type: str
  old_primary:
    description: Inventory name of the primary being replaced.
    type: str
    required: true
  candidate:
    description: Host to promote. When unset, the reachable standby with the most WAL.
    type: str
  max_data_loss_bytes:
    description: Most WAL the promoted server may be behind the most advanced known position.
    type: int
    default: 0
  force:
    description: Promote even when the candidate may lose more than O(max_data_loss_bytes).
    type: bool
    default: false
  accept_unreachable_primary:
    description:
      - Proceed although the old primary is unreachable and therefore cannot be fenced. Only set this when
        you know it is down (powered off, cut from the network).
    type: bool
    default: false
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Decide the failover
  muejam.dbops.pg_failover_plan:
    nodes: "{{ groups['postgres'] | map('extract', hostvars, 'pg_failover_state') | list }}"
    old_primary: pg1
    max_data_loss_bytes: 16777216
  run_once: true
  delegate_to: localhost
  register: failover_plan
"""

RETURN = r"""
new_primary:
  description: Host that is or becomes the primary.
  returned: success
  type: str
  sample: pg3
already_promoted:
  description: True when a previous run already promoted O(candidate); only reconfiguration is left.
  returned: success
  type: bool
old_primary:
  description: The old primary, as given.
  returned: success
  type: str
old_primary_reachable:
  description: Whether the old primary's host answered (and so can be fenced).
  returned: success
  type: bool
others:
  description: Hosts other than the new and the old primary, to repoint at the new primary.
  returned: success
  type: list
  elements: str
following:
  description: Standbys among O(nodes) that already stream from the new primary on its timeline (only once promoted).
  returned: success
  type: list
  elements: str
to_repoint:
  description: Reachable hosts other than both primaries that do not follow the new primary yet.
  returned: success
  type: list
  elements: str
settled:
  description:
    - The new primary was already promoted and every reachable replica follows it, so there is nothing to promote,
      repoint or verify (a second run). Fencing a reachable old primary is still checked.
  returned: success
  type: bool
lost_bytes_max:
  description: Upper bound of WAL the choice may lose, in bytes (null when reconciling only).
  returned: success
  type: int
notes:
  description: Facts about the decision a person should read.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.failover import (
    PLAN_ARGUMENT_SPEC,
    FailoverRefused,
    plan_from_params,
)


def main() -> None:
    module = AnsibleModule(argument_spec=PLAN_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        plan = plan_from_params(module.params)
    except FailoverRefused as exc:
        module.fail_json(msg="Failover refused, nothing was changed: %s" % exc)
    module.exit_json(changed=False, **plan)


if __name__ == "__main__":
    main()
