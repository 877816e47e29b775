#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_cluster_node
short_description: Add a node to a Redis Cluster as a master or a replica, or remove one
version_added: 0.1.0
description:
  - With O(state=present), makes the Redis node at O(node_host):O(node_port) a member of the cluster that
    O(login_host) belongs to, as an empty master or as a replica of a given master, like
    C(redis-cli --cluster add-node) (with C(--cluster-slave) and C(--cluster-master-id)).
  - A node that is already a member is left alone when it has the wanted role, so the task can be run
    again (redis-cli's add-node fails instead). A member replica of another master is pointed at
    O(master); a member master without slots is turned into a replica. A master holding slots is not
    turned into a replica, and a replica is not turned into a master (fail over to it instead); both fail
    with a message.
  - A node that is not a member must be empty (no key, no other known node), or be joining this very
    cluster already (an earlier run stopped after C(CLUSTER MEET)).
  - With O(state=absent), removes the node like C(redis-cli --cluster del-node), but first moves its slots
    to the other masters (the plan of a rebalance with weight 0 on it), points its replicas at the master
    with the fewest replicas, sends C(CLUSTER FORGET) to every node that knows it, and resets it
    (C(CLUSTER RESET SOFT)) so that it does not rejoin. A node no member knows any more is reported
    unchanged. A node that cannot be reached (a dead replica, a failed master without slots) can be
    removed by O(node_id).
  - Before moving slots, refuses and changes nothing when a master holding slots is failed or
    unreachable, when slots are not covered, or when slots are open and O(fix_open_slots=false).
extends_documentation_fragment:
  - muejam.dbops.redis
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  state:
    description: Whether the node must be a member of the cluster.
    type: str
    choices: [present, absent]
    default: present
  node_host:
    description:
      - Host of the node to add or remove, as the host running the module reaches it.
      - Required with O(state=present). With O(state=absent), either this or O(node_id).
    type: str
  node_port:
    description: Client port of the node to add or remove.
    type: int
    default: 6379
  node_id:
    description:
      - With O(state=absent), the id (or a unique prefix of it) of the node to remove, instead of
        O(node_host). Use it for a node that cannot be reached any more.
    type: str
  role:
    description: With O(state=present), the role the node must have.
    type: str
    choices: [master, replica]
    default: master
  master:
    description:
      - With O(role=replica), the master to replicate, by node id, unique id prefix, or C(host:port) as the
        cluster announces it.
      - When unset, a new replica goes to the master with the fewest replicas, preferring one on another
        host than the new node; a node that is already a replica keeps its master.
    type: str
  join_timeout:
    description:
      - Seconds to wait for the node to join the cluster and to learn of its master.
      - With O(state=absent), seconds to wait for every master to report C(cluster_state:ok) before draining.
    type: float
    default: 60
  pipeline:
    description: With O(state=absent), keys moved per C(MIGRATE) command while draining the node.
    type: int
    default: 10
  timeout:
    description: With O(state=absent), timeout of each C(MIGRATE) command while draining, in milliseconds.
    type: int
    default: 60000
  replace:
    description:
      - With O(state=absent), overwrite keys that already exist on the receiving master while draining
        (see the same option of M(muejam.dbops.redis_cluster_rebalance)).
    type: bool
    default: false
  fix_open_slots:
    description:
      - With O(state=absent), settle slots left open by an interrupted migration before draining, as
        M(muejam.dbops.redis_cluster_rebalance) does. By default open slots fail the task and nothing moves.
    type: bool
    default: false
  reset:
    description: With O(state=absent), send C(CLUSTER RESET SOFT) to the removed node when it can be reached.
    type: bool
    default: true
notes:
  - A replica needs C(masterauth) (and C(masteruser) for an ACL user) in its configuration when the masters
    require a password; this module does not change node configuration.
  - In check mode the module reports what it would do (RV(actions), and the drain RV(plan)) and changes nothing.
seealso:
  - module: muejam.dbops.redis_cluster_rebalance
  - module: muejam.dbops.redis_cluster_info
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Add a new master (it holds no slots until a rebalance)
  muejam.dbops.redis_cluster_node:
    login_host: 10.0.0.11
    login_port: 7000
    login_password: "{{ vault_redis_password }}"
    node_host: 10.0.0.14
    node_port: 7000

- name: Add a replica of that master
  muejam.dbops.redis_cluster_node:
    login_host: 10.0.0.11
    login_port: 7000
    login_password: "{{ vault_redis_password }}"
    node_host: 10.0.0.15
    node_port: 7000
    role: replica
    master: 10.0.0.14:7000

- name: Scale in, moving the node's slots to the other masters first
  muejam.dbops.redis_cluster_node:
    login_host: 10.0.0.11
    login_port: 7000
    login_password: "{{ vault_redis_password }}"
    node_host: 10.0.0.14
    node_port: 7000
    state: absent

- name: Forget a replica whose host is gone
  muejam.dbops.redis_cluster_node:
    login_host: 10.0.0.11
    login_port: 7000
    node_id: 6c2f1b0e
    state: absent
"""

RETURN = r"""
node_id:
  description: Id of the node added or removed; null when O(state=absent) and no member knows the node.
  returned: success
  type: str
  sample: eac68a6104f930c53a0ad200607954edc98e6b91
address:
  description: C(host:port) of the node.
  returned: success
  type: str
  sample: 10.0.0.14:7000
role:
  description: The role asked for.
  returned: when O(state=present)
  type: str
  sample: replica
master_id:
  description: With O(role=replica), the id of the node's master.
  returned: when O(state=present)
  type: str
actions:
  description:
    - What was done (or would be, in check mode), in order. C(meet) (the node joined), C(replicate)
      (it was pointed at its master), C(drain) (its slots moved away), C(forget) (the other nodes forgot it),
      C(reset) (it was reset).
  returned: success
  type: list
  elements: str
  sample: [meet, replicate]
plan:
  description:
    - With O(state=absent), the moves that drain the node; same keys as in M(muejam.dbops.redis_cluster_rebalance).
  returned: when O(state=absent)
  type: list
  elements: dict
moved:
  description:
    - With O(state=absent), what moved per source/target pair; same keys as in
      M(muejam.dbops.redis_cluster_rebalance).
  returned: when O(state=absent)
  type: list
  elements: dict
open_slots_fixed:
  description: With O(state=absent), the open slots settled before draining.
  returned: when O(state=absent)
  type: list
  elements: dict
replicas_moved:
  description: The replicas of the removed node and the master each now replicates.
  returned: when O(state=absent)
  type: list
  elements: dict
  contains:
    replica:
      description: Id of the replica.
      type: str
    address:
      description: Its C(host:port).
      type: str
    master:
      description: Id of its new master.
      type: str
forgotten_by:
  description: Ids of the nodes that were told to forget the removed node.
  returned: when O(state=absent)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    redis_argument_spec,
    run_in_session,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_nodes import (
    add_node,
    remove_node,
)


def main() -> None:
    argument_spec = redis_argument_spec()
    argument_spec.update(
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        node_host={"type": "str"},
        node_port={"type": "int", "default": 6379},
        node_id={"type": "str"},
        role={"type": "str", "default": "master", "choices": ["master", "replica"]},
        master={"type": "str"},
        join_timeout={"type": "float", "default": 60},
        pipeline={"type": "int", "default": 10},
        timeout={"type": "int", "default": 60000},
        replace={"type": "bool", "default": False},
        fix_open_slots={"type": "bool", "default": False},
        reset={"type": "bool", "default": True},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["node_host"]), ("state", "absent", ["node_host", "node_id"], True)],
    )
    params = module.params
    if params["pipeline"] < 1 or params["timeout"] < 1:
        module.fail_json(msg="pipeline and timeout must be at least 1")
    operation = add_node if params["state"] == "present" else remove_node
    # A MIGRATE (draining a node) may take up to its own timeout before the node replies.
    run_in_session(module, lambda session: operation(session, params, module.check_mode),
                   socket_timeout=params["socket_timeout"] + params["timeout"] / 1000.0)


if __name__ == "__main__":
    main()
