#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_node_info
short_description: PING one Redis node and read its INFO, as the first step of a cache incident
version_added: 0.6.0
description:
  - Sends C(PING) to the node at O(login_host):O(login_port) and reads the C(INFO) sections in
    O(sections) (the runbook's C(redis-cli ping), C(info memory) and C(info clients)), plus its
    server, replication and cluster sections.
  - When the node runs in cluster mode, reports its place in the cluster as the node itself sees
    it (node id, role, master, slots, C(cluster_state), peers it flags as failed).
  - A node that does not answer is a result (RV(reachable=false) with the reason), not a failed
    task, so that a playbook diagnosing an outage goes on to the other nodes.
  - Changes nothing.
extends_documentation_fragment:
  - muejam.dbops.redis
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  sections:
    description: The C(INFO) sections to return besides server, replication and cluster.
    type: list
    elements: str
    default: [memory, clients, stats, persistence]
  memory_warn_percent:
    description:
      - A used memory above this share of C(maxmemory) is reported in RV(problems).
      - No limit applies to a node without C(maxmemory).
    type: float
    default: 90
  report_target:
    description: Name of the node in RV(checks) (default the address reached).
    type: str
  report_playbook:
    description: The playbook RV(checks) names for a problem.
    type: str
    default: ""
seealso:
  - module: muejam.dbops.redis_cluster_info
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: The node on this host
  muejam.dbops.redis_node_info:
    login_host: 127.0.0.1
    login_password: "{{ vault_redis_password }}"
  register: node

- name: Say when it is down
  ansible.builtin.debug:
    msg: "{{ node.error if not node.reachable else node.summary }}"
"""

RETURN = r"""
address:
  description: The address the module reached (or tried to).
  returned: always
  type: str
  sample: 127.0.0.1:6379
reachable:
  description: Whether the node answered C(PING).
  returned: always
  type: bool
error:
  description: Why the node could not be reached (what to check), null when it answered.
  returned: always
  type: str
ping_ms:
  description: Round trip of the C(PING), in milliseconds.
  returned: always
  type: float
info:
  description: The C(INFO) sections read, by section, as the server gave them.
  returned: always
  type: dict
summary:
  description:
    - The fields a person reads first - version, uptime, memory, clients, hits, misses, evictions,
      persistence, role.
  returned: always
  type: dict
  sample: {"redis_version": "7.0.15", "used_memory_human": "1.52M", "connected_clients": 7, "role": "master"}
cluster_enabled:
  description: Whether the node runs in cluster mode (null when it did not answer).
  returned: always
  type: bool
cluster:
  description: The node's place in its cluster, as it sees itself; null outside cluster mode.
  returned: always
  type: dict
  contains:
    node_id:
      description: Its node id.
      type: str
    role:
      description: C(master) or C(replica).
      type: str
    master_id:
      description: Node id of its master (replicas).
      type: str
    master_address:
      description: Address of its master (replicas).
      type: str
    slots:
      description: Number of slots it serves.
      type: int
    cluster_state:
      description: C(ok) or C(fail), from its C(CLUSTER INFO).
      type: str
    known_nodes:
      description: Nodes in its C(CLUSTER NODES), itself included.
      type: int
    failed_peers:
      description: Addresses of the peers it flags as failed.
      type: list
      elements: str
problems:
  description:
    - What to look at, in words - memory near C(maxmemory), a failed save or AOF write, a replica's link
      down, C(cluster_state) not ok, or why the node could not be reached. Empty when nothing.
  returned: always
  type: list
  elements: str
checks:
  description:
    - The node as one report check (the shape of the collection's report machinery) - down, or
      C(cluster_state) not ok, fails; another problem warns.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cache import node_check, node_health
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    redis_argument_spec,
    run_in_session,
)


def main() -> None:
    argument_spec = redis_argument_spec()
    sections = ["memory", "clients", "stats", "persistence"]
    argument_spec.update(sections={"type": "list", "elements": "str", "default": sections},
                         memory_warn_percent={"type": "float", "default": 90}, report_target={"type": "str"},
                         report_playbook={"type": "str", "default": ""})
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    def report(session):
        result = node_health(session, p["sections"], p["memory_warn_percent"])
        result["checks"] = [node_check(result, p["report_target"] or result["address"], p["report_playbook"])]
        return dict(result, changed=False)

    run_in_session(module, report)


if __name__ == "__main__":
    main()
