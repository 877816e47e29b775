#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_stale_primary
short_description: Tell a former PostgreSQL primary that came back writable from the real one
version_added: 0.2.0
description:
  - Takes the role and timeline each PostgreSQL host reported (M(muejam.dbops.pg_replication_status)) and the
    primary the application's settings name, and judges the servers that accept writes.
  - One writable server (or none) is the normal case; nothing to do.
  - Two or more - typically an old primary that was down during a failover and was started again unfenced, on its
    old timeline. A writable server on an older timeline than the one the application points at is returned in
    RV(fence).
  - Anything less clear is RV(refused) with a message saying what to decide by hand - the application's primary is
    not known (a newer timeline alone proves nothing - a server recovered to a point in time promotes onto one
    too), the application points at a server that does not accept writes or at the older timeline, or two writable
    servers share the newest timeline.
  - Pure computation; it contacts no server and changes nothing (the role M(muejam.dbops.pg_failover)'s
    C(fence_on_sight) tasks act on the answer). Run it once (C(run_once)); an action plugin of the same name runs it
    inside the controller's process.
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
      address:
        description: Another name the application may use for it (for example C(ansible_host)).
        type: str
      role:
        description: C(primary), C(standby), or null when PostgreSQL does not answer there.
        type: str
      timeline:
        description: Timeline reported by the host.
        type: int
      detached:
        description:
          - Why the server is not a member of the replication cluster
            (RV(muejam.dbops.pg_replication_status#module:detached)), for example a server restored from S3.
          - Such a server is not judged (unless the application points at it).
        type: str
  app_primary:
    description: The primary named by the application's settings (a name or address of one of O(nodes)), when known.
    type: str
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Judge the writable servers
  muejam.dbops.pg_stale_primary:
    nodes:
      - {name: pg1, role: primary, timeline: 1}
      - {name: pg2, role: primary, timeline: 2}
      - {name: pg3, role: standby, timeline: 2}
    app_primary: pg2
  run_once: true
  register: sight
"""

RETURN = r"""
writable:
  description: Hosts that accept writes.
  returned: always
  type: list
  elements: str
  sample: [pg1, pg2]
keep:
  description: The primary to keep (null when none is writable or the answer was refused).
  returned: always
  type: str
  sample: pg2
fence:
  description: Former primaries to fence (stop, mask, standby.signal).
  returned: always
  type: list
  elements: str
  sample: [pg1]
detached:
  description: Writable servers left out of the judgement because they are detached from the cluster.
  returned: always
  type: list
  elements: str
refused:
  description: True when two or more servers accept writes and the states do not tell which one to keep.
  returned: always
  type: bool
message:
  description: What was seen and what to do, for a person (empty when at most one server accepts writes).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.fencing import SIGHT_ARGUMENT_SPEC, judge_from_params


def main() -> None:
    module = AnsibleModule(argument_spec=SIGHT_ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, **judge_from_params(module.params))


if __name__ == "__main__":
    main()
