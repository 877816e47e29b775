#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_cluster_info
short_description: Report the state, slot layout and health of a Redis Cluster
version_added: 0.1.0
description:
  - Connects to one node of a Redis Cluster, reads C(CLUSTER NODES) from it and from every node it
    knows, and reports the cluster state, slot coverage, open (migrating or importing) slots, and
    for each node its role, slots, replicas, number of keys and memory use.
  - Runs the checks of C(redis-cli --cluster check) and returns its findings in RV(check), in
    redis-cli's words, so that a playbook can assert on them without parsing redis-cli's output.
    Like redis-cli, nodes flagged C(fail) and nodes that cannot be reached are left out of the
    checks (so their slots count as uncovered); they are also reported as findings of their own.
  - Changes nothing.
extends_documentation_fragment:
  - muejam.dbops.redis
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  convergence_timeout:
    description:
      - Seconds to keep re-reading the topology while the nodes disagree about slot owners.
      - Right after slots move, replicas learn the new owners through gossip within a second or two;
        a report taken in between shows a disagreement that resolves by itself. V(0) reads once.
    type: float
    default: 0
  report_target:
    description: Name of the cluster in RV(checks); default C(redis cluster).
    type: str
  report_playbook:
    description: The playbook RV(checks) name for a problem.
    type: str
    default: ""
seealso:
  - module: muejam.dbops.redis_cluster_rebalance
  - module: muejam.dbops.redis_cluster_node
  - name: Redis Cluster specification
    description: The meaning of node flags, slots and the migrating and importing states.
    link: https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Read the cluster
  muejam.dbops.redis_cluster_info:
    login_host: 10.0.0.11
    login_port: 7000
    login_password: "{{ vault_redis_password }}"
  register: cluster

- name: Verify like redis-cli --cluster check
  ansible.builtin.assert:
    that:
      - cluster.check.ok
      - cluster.slots.all_covered
      - cluster.open_slots | length == 0
    fail_msg: "{{ cluster.check.findings | map(attribute='message') | list }}"

- name: Show the slot distribution
  ansible.builtin.debug:
    msg: "{{ item.address }}: {{ item.slots }} slots, {{ item.keys }} keys"
  loop: "{{ cluster.nodes | selectattr('role', 'equalto', 'master') }}"
  loop_control:
    label: "{{ item.node_id }}"
"""

RETURN = r"""
cluster_state:
  description: C(ok) or C(fail), as the entry node's C(CLUSTER INFO) says.
  returned: success
  type: str
  sample: ok
cluster_info:
  description: The entry node's C(CLUSTER INFO), numbers as integers.
  returned: success
  type: dict
  sample: {"cluster_state": "ok", "cluster_slots_assigned": 16384, "cluster_known_nodes": 6, "cluster_size": 3}
entry_node:
  description: Node id of the node the module connected to.
  returned: success
  type: str
  sample: 29d8a9ccba5f6a5afb83746c1570c038fa5dc628
slots:
  description: Slot coverage, counted like redis-cli does (slots of failed or unreachable masters are uncovered).
  returned: success
  type: dict
  contains:
    covered:
      description: Number of slots served by a checked master.
      type: int
      sample: 16384
    uncovered:
      description: Number of slots no checked master serves.
      type: int
      sample: 0
    uncovered_ranges:
      description: The uncovered slots as ranges.
      type: list
      elements: str
      sample: ["0-5460"]
    all_covered:
      description: Whether all 16384 slots are covered.
      type: bool
      sample: true
open_slots:
  description: Every slot that a master has in migrating or importing state.
  returned: success
  type: list
  elements: dict
  contains:
    slot:
      description: The slot number.
      type: int
      sample: 7
    node_id:
      description: The master that has the slot open.
      type: str
    address:
      description: C(host:port) of that master.
      type: str
      sample: 10.0.0.11:7000
    state:
      description: C(migrating) (keys leave this node) or C(importing) (keys come to it).
      type: str
      sample: migrating
    peer_id:
      description: The node the keys go to (migrating) or come from (importing).
      type: str
masters:
  description: Number of masters, failed ones included.
  returned: success
  type: int
  sample: 3
replicas:
  description: Number of replicas.
  returned: success
  type: int
  sample: 3
keys:
  description: Sum of the keys of all reachable masters.
  returned: success
  type: int
  sample: 100000
nodes:
  description: Every member node, the entry node first, then in the entry node's C(CLUSTER NODES) order.
  returned: success
  type: list
  elements: dict
  contains:
    node_id:
      description: The node id.
      type: str
    address:
      description: C(host:port) the cluster announces for the node.
      type: str
      sample: 10.0.0.12:7000
    host:
      description: Announced IP address.
      type: str
    port:
      description: Client port.
      type: int
    hostname:
      description: Announced host name (C(cluster-announce-hostname)), if any.
      type: str
    role:
      description: C(master) or C(replica).
      type: str
    master_id:
      description: For a replica, the id of its master.
      type: str
    flags:
      description: Flags as the entry node sees them (C(master), C(slave), C(fail?), C(fail), ...), without C(myself).
      type: list
      elements: str
    link_state:
      description: C(connected) or C(disconnected), as the entry node sees the cluster bus link.
      type: str
    config_epoch:
      description: The node's configuration epoch.
      type: int
    slots:
      description: Number of slots the node serves, from its own configuration.
      type: int
    slot_ranges:
      description: Those slots as ranges.
      type: list
      elements: str
      sample: ["0-5460"]
    replicas:
      description: Ids of the node's replicas.
      type: list
      elements: str
    reachable:
      description: Whether the module could read the node.
      type: bool
    keys:
      description: Keys in the node (C(DBSIZE)); null when unreachable.
      type: int
    used_memory:
      description: Bytes of memory the node uses (C(INFO memory)); null when unreachable.
      type: int
    used_memory_human:
      description: The same, human readable.
      type: str
      sample: 1.93M
    error:
      description: Why the node's keys and memory could not be read, when it went away during the report.
      type: str
      returned: when the node stopped answering
checks:
  description:
    - The state as report checks (the shape of the collection's report machinery, used by role
      muejam.dbops.health_check). They are the cluster state, slot coverage and the nodes. A failed or unreachable
      master fails; a replica down or another finding is a warning while every slot is served.
  returned: success
  type: list
  elements: dict
  sample: [{check: redis nodes up, target: redis cluster, status: warn, value: 5/6,
            reason: replica 10.0.0.6:6379 is unreachable}]
check:
  description: The findings of C(redis-cli --cluster check), plus unreachable and failed nodes.
  returned: success
  type: dict
  contains:
    ok:
      description: True when there is no finding.
      type: bool
    findings:
      description: Each problem found.
      type: list
      elements: dict
      contains:
        level:
          description: C(ERR) or C(WARNING), as redis-cli labels it.
          type: str
        code:
          description:
            - C(config_disagreement), C(slots_migrating), C(slots_importing), C(open_slots),
              C(slots_uncovered), C(node_unreachable) or C(node_failed).
          type: str
        message:
          description: The finding in redis-cli's words.
          type: str
          sample: "[WARNING] Node 10.0.0.11:7000 has slots in migrating state 7."
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    redis_argument_spec,
    run_in_session,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_report import (
    cluster_report,
    report_checks,
)


def main() -> None:
    argument_spec = redis_argument_spec()
    argument_spec.update(convergence_timeout={"type": "float", "default": 0}, report_target={"type": "str"},
                         report_playbook={"type": "str", "default": ""})
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    def report(session):
        result = cluster_report(session, p["convergence_timeout"])
        result["checks"] = report_checks(result, p["report_target"] or "redis cluster", p["report_playbook"])
        return result

    run_in_session(module, report)


if __name__ == "__main__":
    main()
