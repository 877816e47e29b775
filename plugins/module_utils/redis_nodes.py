# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adding a node to a Redis Cluster (as master or replica) and removing one (drain, repoint
its replicas, forget it everywhere).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cluster_plan import (
    PlanError,
    RebalancePlan,
    plan_rebalance,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    ClusterSession,
    refuse_unsafe_cluster,
    reply_text,
    wait_until_serving,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_mover import (
    SlotMover,
    apply_open_slot_fixes,
    describe_fix,
    describe_plan,
    execute_plan,
    masters_for_plan,
    plan_open_slot_fixes,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_topology import (
    ClusterNode,
    ClusterTopology,
    RedisClusterError,
    SlotFix,
    parse_info_text,
    resolve_node,
)

# --------------------------------------------------------------------------------------------
# Adding and removing nodes
# --------------------------------------------------------------------------------------------


def node_identity(session: ClusterSession, address: str) -> tuple[str, dict[str, Any], int]:
    """The node's id, its CLUSTER INFO and its number of keys."""
    node_id = reply_text(session.command(address, "CLUSTER", "MYID"))
    info = parse_info_text(reply_text(session.command(address, "CLUSTER", "INFO")))
    return node_id, info, int(session.command(address, "DBSIZE"))


def pick_master(topology: ClusterTopology, near_hosts: set[str], exclude: Iterable[str] = ()) -> ClusterNode:
    """A master on another host than near_hosts if there is one, among those the one with the fewest replicas.

    The host comes first: a replica on its master's host is lost with it, whatever the replica counts.
    """
    excluded = set(exclude)
    masters = [m for m in topology.usable_masters() if m.node_id not in excluded]
    if not masters:
        raise RedisClusterError("no master is available to replicate")
    return min(masters, key=lambda m: (m.host in near_hosts, len(topology.replicas_of(m.node_id))))


def _resolve_host(host: str) -> set[str]:
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return {host}


def add_node(session: ClusterSession, options: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    """Make the node at node_host:node_port a member with the wanted role; leave it alone if it is."""
    address = "%s:%d" % (options["node_host"], options["node_port"])
    topology = session.load()
    node_id, info, keys = node_identity(session, address)
    master = _wanted_master(topology, options, node_id)
    result: dict[str, Any] = {"node_id": node_id, "address": address, "role": options["role"],
                              "master_id": master.node_id if master else None}
    if topology.has(node_id):
        return _converge_member(session, topology, topology.node(node_id), master, result, check_mode)
    _refuse_foreign_node(session, topology, address, info, keys)
    result["changed"] = True
    result["actions"] = ["meet"] + (["replicate"] if master else [])
    if check_mode:
        return result
    entry = topology.node(topology.entry_id)
    meet_host = entry.host or sorted(_resolve_host(session.params["login_host"]))[0]
    session.command(address, "CLUSTER", "MEET", meet_host, entry.port)
    _wait_joined(session, address, node_id, options["join_timeout"])
    if master:
        _replicate(session, address, master.node_id, options["join_timeout"])
        _wait_joined(session, address, node_id, options["join_timeout"], master.node_id)
    return result


def _wanted_master(topology: ClusterTopology, options: Mapping[str, Any], node_id: str) -> ClusterNode | None:
    if options["role"] != "replica":
        return None
    if options.get("master"):
        master = resolve_node(topology, options["master"], what="master")
        if master.node_id == node_id:
            raise RedisClusterError("master: a node cannot replicate itself")
        return master
    if topology.has(node_id) and topology.node(node_id).is_replica:
        return topology.node(topology.node(node_id).master_id or "")
    return pick_master(topology, _resolve_host(options["node_host"]), exclude=[node_id])


def _converge_member(session: ClusterSession, topology: ClusterTopology, node: ClusterNode,
                     master: ClusterNode | None, result: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """The node is already a member: change its role only where that is safe."""
    result["changed"] = False
    result["actions"] = []
    if master is None:
        if node.is_replica:
            raise RedisClusterError("node %s is already a replica of %s; to make it a master, fail over to it "
                                    "(CLUSTER FAILOVER) or remove it and add it again" % (
                                        topology.describe(node.node_id), topology.describe(node.master_id or "")))
        return result
    if node.is_replica and node.master_id == master.node_id:
        return result
    if node.is_master and topology.slots_of(node.node_id):
        raise RedisClusterError("node %s is a master holding %d slots; drain it (weight 0) before making it a "
                                "replica" % (topology.describe(node.node_id), len(topology.slots_of(node.node_id))))
    result["changed"] = True
    result["actions"] = ["replicate"]
    if not check_mode:
        _replicate(session, node, master.node_id, 10)
        _wait_joined(session, node.address, node.node_id, 10, master.node_id)
    return result


def _refuse_foreign_node(session: ClusterSession, topology: ClusterTopology, address: str,
                         info: Mapping[str, Any], keys: int) -> None:
    """A new node must be empty, or already joining this very cluster (an earlier run stopped midway)."""
    if keys:
        raise RedisClusterError("node %s holds %d keys; only an empty node can join (FLUSHALL it if the data "
                                "is not needed)" % (address, keys))
    if int(info.get("cluster_known_nodes", 1)) > 1:
        known = {n.node_id for n in session.cluster_nodes(address) if not n.myself and not n.handshake}
        strangers = known - {n.node_id for n in topology.nodes}
        if strangers:
            raise RedisClusterError("node %s already knows %d node(s) outside this cluster; it belongs to another "
                                    "cluster (CLUSTER RESET it if it should join this one)" % (address, len(strangers)))


def _wait_joined(session: ClusterSession, address: str, node_id: str, timeout: float,
                 master_id: str | None = None) -> None:
    """Wait until the entry node knows the node (as a replica of ``master_id`` when given).

    So that the next task, which reads the cluster through the entry node, sees the change
    (the choice of a master for the next replica counts the replicas the entry node knows).
    """
    deadline = time.monotonic() + timeout
    while True:
        entry_view = session.cluster_nodes(session.entry_address)
        if any(n.node_id == node_id and not n.handshake and (master_id is None or n.master_id == master_id)
               for n in entry_view):
            return
        if time.monotonic() > deadline:
            if master_id:
                raise RedisClusterError("node %s did not show as a replica of %s within %ss" % (
                    address, master_id, timeout))
            raise RedisClusterError("node %s did not join the cluster within %ss: check that the nodes reach each "
                                    "other on the cluster bus port (the client port + 10000)" % (address, timeout))
        time.sleep(0.2)


def _replicate(session: ClusterSession, node: ClusterNode | str, master_id: str, timeout: float) -> None:
    """CLUSTER REPLICATE, retried while the node has not yet learnt of the master through gossip."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            session.command(node, "CLUSTER", "REPLICATE", master_id)
            return
        except RedisClusterError as exc:
            if "unknown node" not in str(exc).lower() or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def remove_node(session: ClusterSession, options: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    """Drain the node's slots, repoint its replicas, forget it on every node and reset it."""
    topology = session.load()
    node = _find_leaving_node(session, topology, options)
    result: dict[str, Any] = {"changed": False, "node_id": node.node_id if node else None,
                              "address": node.address if node else None, "plan": [], "moved": [],
                              "open_slots_fixed": [], "replicas_moved": [], "forgotten_by": [], "actions": []}
    if node is None:
        return result
    result["changed"] = True
    plan, fixes = _drain_plan(session, topology, node, options)
    if plan is not None:
        result["plan"] = describe_plan(topology, plan)
        result["open_slots_fixed"] = [describe_fix(topology, fix) for fix in fixes]
        result["actions"].append("drain")
    new_masters = _replica_targets(topology, node)
    holders = [nid for nid, view in topology.views.items()
               if nid != node.node_id and any(n.node_id == node.node_id for n in view)]
    result["replicas_moved"] = [{"replica": r.node_id, "address": r.address, "master": m.node_id}
                                for r, m in new_masters]
    result["forgotten_by"] = holders
    result["actions"].append("forget")
    if options["reset"] and node.node_id in topology.views:
        result["actions"].append("reset")
    if check_mode:
        return result
    if plan is not None:
        wait_until_serving(session, topology, options["join_timeout"])
        mover = SlotMover(session, topology, options["pipeline"], options["timeout"], options["replace"])
        result["open_slots_fixed"] = apply_open_slot_fixes(session, topology, fixes, mover)
        topology = session.load()
        mover = SlotMover(session, topology, options["pipeline"], options["timeout"], options["replace"])
        result["moved"] = execute_plan(session, topology, plan, mover)
    for replica, master in new_masters:
        _replicate(session, replica, master.node_id, 10)
    _forget_everywhere(session, topology, node, holders)
    if "reset" in result["actions"]:
        session.command(node, "CLUSTER", "RESET", "SOFT")
    return result


def _drain_plan(session: ClusterSession, topology: ClusterTopology, node: ClusterNode,
                options: Mapping[str, Any]) -> tuple[RebalancePlan | None, list[SlotFix]]:
    """The plan that empties ``node``: redis-cli's rebalance with weight 0 on it (None: no slots)."""
    if not topology.has(node.node_id) or not topology.slots_of(node.node_id):
        return None, []
    refuse_unsafe_cluster(topology, allow_open_slots=options["fix_open_slots"])
    if len(topology.usable_masters()) < 2:
        raise RedisClusterError("node %s is the only master; there is nowhere to move its slots" % node.address)
    fixes = plan_open_slot_fixes(session, topology)
    try:
        plan = plan_rebalance(masters_for_plan(topology, fixes), {node.node_id: 0.0})
    except PlanError as exc:
        raise RedisClusterError("cannot plan the drain of %s: %s; nothing was moved." % (node.address, exc)) from None
    return plan, fixes


def _find_leaving_node(session: ClusterSession, topology: ClusterTopology,
                       options: Mapping[str, Any]) -> ClusterNode | None:
    """The node to remove as any node still knows it, or None when no node knows it any more.

    A node is found by id (prefix), by the address the cluster knows it at, or, when the given
    host is another name for it, by asking the node itself for its id.
    """
    known: dict[str, ClusterNode] = {}
    for view in [topology.nodes] + list(topology.views.values()):
        for n in view:
            if not n.handshake:
                known.setdefault(n.node_id, n)
    wanted = (options.get("node_id") or "").lower()
    if not wanted:
        hosts = _resolve_host(options["node_host"]) | {options["node_host"]}
        for n in known.values():
            if (n.host in hosts or n.hostname in hosts) and n.port == options["node_port"]:
                return n
        try:
            address = "%s:%d" % (options["node_host"], options["node_port"])
            wanted = reply_text(session.command(address, "CLUSTER", "MYID"))
        except RedisClusterError:
            return None
    matches = [n for nid, n in known.items() if nid.startswith(wanted)]
    if len(matches) > 1:
        raise RedisClusterError("node_id '%s' is ambiguous: it matches %d nodes; give more of the id" % (
            wanted, len(matches)))
    return matches[0] if matches else None


def _replica_targets(topology: ClusterTopology, leaving: ClusterNode) -> list[tuple[ClusterNode, ClusterNode]]:
    """A new master for every replica of the leaving node: the master with the fewest replicas."""
    moves = []
    for replica in topology.replicas_of(leaving.node_id):
        master = pick_master(topology, {replica.host}, exclude=[leaving.node_id])
        moves.append((replica, master))
    return moves


def _forget_everywhere(session: ClusterSession, topology: ClusterTopology, node: ClusterNode,
                       holders: Sequence[str]) -> None:
    """CLUSTER FORGET on every node that knows it, quickly: a forgotten node is banned for 60 s only."""
    for holder_id in holders:
        try:
            session.command(topology.node(holder_id), "CLUSTER", "FORGET", node.node_id)
        except RedisClusterError as exc:
            if "unknown node" not in str(exc).lower():
                raise
