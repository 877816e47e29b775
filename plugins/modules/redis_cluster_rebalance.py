#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_cluster_rebalance
short_description: Rebalance the slots of a Redis Cluster like redis-cli, resuming an interrupted run
version_added: 0.1.0
description:
  - Plans the rebalance exactly as C(redis-cli --cluster rebalance) does (same weights, threshold and
    C(--cluster-use-empty-masters) semantics, lowest-numbered slots moved first), so the final slot
    distribution is the one redis-cli would reach from the same cluster.
  - Moves slots with the protocol of the Redis Cluster specification, in batches of slots with one
    pipelined round trip per step and node; C(MIGRATE) authenticates with C(AUTH) or, for an ACL user,
    C(AUTH2).
  - Before anything moves, refuses with a message and changes nothing when a weight names an unknown
    node or a replica, when a master holding slots is failed or unreachable, when slots are not covered,
    or when the nodes do not agree about the slot configuration.
  - Open slots (migrating or importing), as an interrupted run of this module or of redis-cli leaves
    them, are settled first when O(fix_open_slots=true). A migration that had started is finished, one
    that had not moved any key is closed; see RV(open_slots_fixed). Unusual open states (several
    importing nodes, keys on a third master) are refused, to be fixed by hand. So after a crash or a
    failed C(MIGRATE), running the module again resumes and completes.
  - A balanced cluster (every master within O(threshold) percent of its share) is left alone, so the task is
    idempotent.
extends_documentation_fragment:
  - muejam.dbops.redis
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  weights:
    description:
      - Weight of masters, by node id, unique node id prefix, or C(host:port) as the cluster announces it.
        Masters not listed weigh 1. A master gets a share of the slots proportional to its weight;
        weight V(0) moves all its slots away (drains it).
      - A key that is not a master of the cluster fails the task before anything moves.
    type: dict
    default: {}
  threshold:
    description:
      - Rebalance only when some master is further than this percentage from its share (redis-cli's
        C(--cluster-threshold)). Must be above 0.
    type: float
    default: 2.0
  use_empty_masters:
    description:
      - Give slots to masters that have none (redis-cli's C(--cluster-use-empty-masters)). Without it,
        masters without slots are left out, as redis-cli does.
    type: bool
    default: false
  pipeline:
    description: Keys moved per C(MIGRATE) command (redis-cli's C(--cluster-pipeline)).
    type: int
    default: 10
  timeout:
    description: Timeout of each C(MIGRATE) command, in milliseconds (redis-cli's C(--cluster-timeout)).
    type: int
    default: 60000
  replace:
    description:
      - Overwrite keys that already exist on the target node (C(MIGRATE REPLACE), redis-cli's
        C(--cluster-replace)).
      - Without it, a key found on both nodes is overwritten only when its value is the same on both
        (as happens when a run was interrupted in the middle of a C(MIGRATE)); a key with different values
        fails the task and leaves its slot open, so the next run resumes there.
    type: bool
    default: false
  fix_open_slots:
    description:
      - Settle slots left open by an interrupted migration before planning. With V(false), open slots
        fail the task and nothing moves.
    type: bool
    default: true
  convergence_timeout:
    description:
      - Seconds to wait for all nodes to agree about the slot configuration, and for every master to report
        C(cluster_state:ok) (a master that has just started or joined needs up to 5 seconds), before refusing
        to run.
    type: float
    default: 30
notes:
  - The plan is computed from the masters in the order redis-cli loads them (the entry node first, then
    the entry node's C(CLUSTER NODES) order), which decides ties. Use the same entry node as redis-cli to
    compare plans.
  - Unlike redis-cli, a failed or interrupted run can be resumed by running the module again; RV(moved)
    in the failure result tells what had moved until then.
  - In check mode the module returns the plan and the open slots it would settle, and changes nothing.
seealso:
  - module: muejam.dbops.redis_cluster_info
  - module: muejam.dbops.redis_cluster_node
  - name: Redis Cluster specification, live resharding
    description: The migration protocol this module follows.
    link: https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#live-resharding
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Give the new empty masters their share (redis-cli --cluster rebalance --cluster-use-empty-masters)
  muejam.dbops.redis_cluster_rebalance:
    login_host: 10.0.0.11
    login_port: 7000
    login_password: "{{ vault_redis_password }}"
    use_empty_masters: true
  register: rebalance

- name: Drain a master before removing it
  muejam.dbops.redis_cluster_rebalance:
    login_host: 10.0.0.11
    login_port: 7000
    weights:
      10.0.0.14:7000: 0

- name: Show what would move, without moving anything
  muejam.dbops.redis_cluster_rebalance:
    login_host: 10.0.0.11
    login_port: 7000
    use_empty_masters: true
  check_mode: true
  register: plan

- name: Bigger masters take twice the share, as an ACL user
  muejam.dbops.redis_cluster_rebalance:
    login_host: 10.0.0.11
    login_port: 7000
    login_user: ops
    login_password: "{{ vault_redis_ops_password }}"
    weights:
      3f2a9c1e: 2
      b71d04aa: 2
    pipeline: 100
"""

RETURN = r"""
rebalance_needed:
  description: Whether some master was further than O(threshold) from its share.
  returned: success
  type: bool
  sample: true
plan:
  description: The moves, in order, as redis-cli plans them (computed after settling open slots).
  returned: success, and on a failure while moving
  type: list
  elements: dict
  contains:
    source:
      description: Node id of the master giving slots.
      type: str
    target:
      description: Node id of the master taking them.
      type: str
    source_address:
      description: C(host:port) of the source.
      type: str
      sample: 10.0.0.12:7000
    target_address:
      description: C(host:port) of the target.
      type: str
      sample: 10.0.0.14:7000
    slots:
      description: Number of slots.
      type: int
      sample: 1366
    slot_ranges:
      description: The slots as ranges.
      type: list
      elements: str
      sample: ["5461-6826"]
open_slots_fixed:
  description: The open slots settled before planning (in check mode, those that would be).
  returned: success, and on a failure while moving
  type: list
  elements: dict
  contains:
    slot:
      description: The slot number.
      type: int
    action:
      description: C(finish) (its keys moved on and the slot given to the target) or C(close) (left with its owner).
      type: str
    source:
      description: Node id the slot was migrating from.
      type: str
    target:
      description: Node id the slot was migrating to.
      type: str
    source_address:
      description: C(host:port) of the source.
      type: str
    target_address:
      description: C(host:port) of the target.
      type: str
    reason:
      description: Why this action.
      type: str
    keys:
      description: Keys moved to settle the slot.
      type: int
      returned: when not in check mode
distribution_before:
  description: Slots per master before the run.
  returned: success
  type: list
  elements: dict
  contains:
    node_id:
      description: The master's id.
      type: str
    address:
      description: Its C(host:port).
      type: str
    slots:
      description: Number of slots it serves.
      type: int
    slot_ranges:
      description: The slots as ranges.
      type: list
      elements: str
distribution_after:
  description: Slots per master after the run, same keys as RV(distribution_before).
  returned: success, when not in check mode
  type: list
  elements: dict
moved:
  description: What moved, per source/target pair of the plan, in order. On failure, what moved until then.
  returned: success, and on a failure while moving
  type: list
  elements: dict
  contains:
    source:
      description: Node id of the source.
      type: str
    target:
      description: Node id of the target.
      type: str
    source_address:
      description: C(host:port) of the source.
      type: str
    target_address:
      description: C(host:port) of the target.
      type: str
    slots:
      description: Slots moved.
      type: int
    keys:
      description: Keys moved.
      type: int
    seconds:
      description: Time this pair took.
      type: float
slots_moved:
  description: Total slots moved (open slots settled not included).
  returned: success
  type: int
  sample: 4096
keys_moved:
  description: Total keys moved (open slots settled not included).
  returned: success
  type: int
  sample: 25000
timing:
  description: Durations in seconds.
  returned: success
  type: dict
  contains:
    total_seconds:
      description: The whole run, reading the cluster included.
      type: float
    fix_seconds:
      description: Settling open slots.
      type: float
      returned: when not in check mode
    move_seconds:
      description: Executing the plan.
      type: float
      returned: when not in check mode
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    redis_argument_spec,
    run_in_session,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_mover import (
    rebalance,
)


def main() -> None:
    argument_spec = redis_argument_spec()
    argument_spec.update(
        weights={"type": "dict", "default": {}},
        threshold={"type": "float", "default": 2.0},
        use_empty_masters={"type": "bool", "default": False},
        pipeline={"type": "int", "default": 10},
        timeout={"type": "int", "default": 60000},
        replace={"type": "bool", "default": False},
        fix_open_slots={"type": "bool", "default": True},
        convergence_timeout={"type": "float", "default": 30},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["threshold"] <= 0:
        module.fail_json(msg="threshold must be above 0 (redis-cli never rebalances with 0)")
    if params["pipeline"] < 1 or params["timeout"] < 1:
        module.fail_json(msg="pipeline and timeout must be at least 1")
    # A MIGRATE may take up to its own timeout before the node replies.
    run_in_session(module, lambda session: rebalance(session, params, module.check_mode),
                   socket_timeout=params["socket_timeout"] + params["timeout"] / 1000.0)


if __name__ == "__main__":
    main()
