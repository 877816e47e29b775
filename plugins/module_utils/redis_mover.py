# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving slots between masters (the documented migration protocol, batched) and the
operations built on it: finishing open slots and rebalancing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cluster_plan import (
    PlanError,
    RebalancePlan,
    format_slot_ranges,
    plan_rebalance,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    ClusterSession,
    refuse_unsafe_cluster,
    wait_until_serving,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_topology import (
    FIX_HINT,
    ClusterNode,
    ClusterTopology,
    RedisClusterError,
    SlotFix,
    chunks,
    decide_open_slot_fix,
    migrate_command,
    open_slot_parties,
    resolve_weights,
)

# Slots opened, emptied and assigned together: one round trip per step for the whole batch
# instead of one per slot. An interrupted batch leaves at most this many slots open, each of
# which decide_open_slot_fix() knows how to finish.
SLOT_BATCH = 64


# --------------------------------------------------------------------------------------------
# Moving slots
# --------------------------------------------------------------------------------------------


class SlotMover:
    """Moves slots between two masters with the protocol the Redis Cluster specification gives.

    For each batch of slots: CLUSTER SETSLOT IMPORTING on the target, MIGRATING on the source,
    then GETKEYSINSLOT + MIGRATE until the source holds no key of the batch, then SETSLOT NODE
    on the target, the source and every other master. Each step is one pipelined round trip per
    node for the whole batch; the order per slot is the documented one.
    """

    def __init__(self, session: ClusterSession, topology: ClusterTopology, pipeline: int = 10,
                 timeout_ms: int = 60000, replace: bool = False) -> None:
        self.session = session
        self.masters = topology.usable_masters()
        self.topology = topology
        self.pipeline = pipeline
        self.timeout_ms = timeout_ms
        self.replace = replace

    def move(self, source: ClusterNode, target: ClusterNode, slots: Sequence[int],
             open_target: bool = True, open_source: bool = True) -> int:
        """Move ``slots`` from ``source`` to ``target``; return the number of keys moved."""
        moved = 0
        for batch in chunks(list(slots), SLOT_BATCH):
            if open_target:
                self._setslot(target, batch, "IMPORTING", source.node_id)
            if open_source:
                self._setslot(source, batch, "MIGRATING", target.node_id)
            moved += self._migrate_keys(source, target, batch)
            self.assign(batch, target, first=(target, source))
        return moved

    def assign(self, slots: Sequence[int], owner: ClusterNode, first: Sequence[ClusterNode] = ()) -> None:
        """SETSLOT NODE on ``first`` in order, then on every other master.

        A master that has just given away its last slot may already have turned into a replica
        of the new owner (Redis 7 does so with cluster-allow-replica-migration, the default) and
        refuse SETSLOT; it follows its master's slot map from then on, so that refusal is fine.
        """
        order = list(first) + [m for m in self.masters if m.node_id not in {n.node_id for n in first}]
        for node in order:
            replies = self.session.pipeline(node, [("CLUSTER", "SETSLOT", slot, "NODE", owner.node_id)
                                                   for slot in slots])
            if node.node_id != owner.node_id and self._became_replica(replies):
                continue
            self._check(node, "CLUSTER SETSLOT NODE", slots, replies)

    @staticmethod
    def _became_replica(replies: Sequence[Any]) -> bool:
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        return bool(errors) and all("SETSLOT only with masters" in str(reply) for reply in errors)

    def close(self, node: ClusterNode, slots: Sequence[int]) -> None:
        self._check(node, "CLUSTER SETSLOT STABLE", slots,
                    self.session.pipeline(node, [("CLUSTER", "SETSLOT", slot, "STABLE") for slot in slots]))

    def _setslot(self, node: ClusterNode, slots: Sequence[int], state: str, peer: str) -> None:
        replies = self.session.pipeline(node, [("CLUSTER", "SETSLOT", slot, state, peer) for slot in slots])
        self._check(node, "CLUSTER SETSLOT %s" % state, slots, replies)

    def _check(self, node: ClusterNode, what: str, slots: Sequence[int], replies: Sequence[Any]) -> None:
        for slot, reply in zip(slots, replies):
            if isinstance(reply, Exception):
                raise RedisClusterError("%s for slot %d on %s failed: %s" % (
                    what, slot, self.topology.describe(node.node_id), self.session.error_text(reply)))

    def _migrate_keys(self, source: ClusterNode, target: ClusterNode, slots: Sequence[int]) -> int:
        moved = 0
        pending = list(slots)
        last: dict[int, list[bytes]] = {}
        while pending:
            replies = self.session.pipeline(
                source, [("CLUSTER", "GETKEYSINSLOT", slot, self.pipeline) for slot in pending])
            self._check(source, "CLUSTER GETKEYSINSLOT", pending, replies)
            batches = [(slot, list(keys)) for slot, keys in zip(pending, replies) if keys]
            for slot, keys in batches:
                if last.get(slot) == keys:
                    raise RedisClusterError("slot %d: MIGRATE reported success but keys %s are still on %s" % (
                        slot, _show_keys(keys), self.topology.describe(source.node_id)))
                last[slot] = keys
            moved += self._migrate_batches(source, target, batches)
            pending = [slot for slot, keys in batches]
        return moved

    def _migrate_batches(self, source: ClusterNode, target: ClusterNode, batches: list[tuple[int, list[bytes]]]) -> int:
        params = self.session.params
        commands = [migrate_command(target.host, target.port, keys, self.timeout_ms, self.replace,
                                    params.get("login_user"), params.get("login_password")) for slot, keys in batches]
        replies = self.session.pipeline(source, commands)
        moved = 0
        for (slot, keys), reply in zip(batches, replies):
            if isinstance(reply, Exception):
                self._retry_busy_keys(source, target, slot, keys, reply)
            moved += len(keys)
        return moved

    def _retry_busy_keys(
        self, source: ClusterNode, target: ClusterNode, slot: int, keys: list[bytes], error: Exception
    ) -> None:
        """Handle MIGRATE refusing keys that already exist on the target (BUSYKEY).

        That happens when a previous run died after the target stored a key and before the
        source deleted it. Like redis-cli: with ``replace`` overwrite; otherwise overwrite only
        keys whose value is the same on both sides (DUMP payloads equal) and stop on the others.
        """
        text = self.session.error_text(error)
        if "BUSYKEY" not in text:
            raise RedisClusterError(
                "MIGRATE of %d keys of slot %d from %s to %s failed: %s. The slot stays open (migrating on the "
                "source, importing on the target); run the module again to resume." % (
                    len(keys), slot, self.topology.describe(source.node_id),
                    self.topology.describe(target.node_id), text))
        if not self.replace:
            differing = self._differing_keys(source, target, keys)
            if differing:
                raise RedisClusterError(
                    "slot %d: %d key(s) exist on both %s and %s with different values: %s. Fix them by hand, or "
                    "set replace=true to keep the source's values. The slot stays open; run again to resume." % (
                        slot, len(differing), self.topology.describe(source.node_id),
                        self.topology.describe(target.node_id), _show_keys(differing)))
        params = self.session.params
        reply = self.session.pipeline(source, [migrate_command(
            target.host, target.port, keys, self.timeout_ms, True,
            params.get("login_user"), params.get("login_password"))])[0]
        if isinstance(reply, Exception):
            raise RedisClusterError("MIGRATE REPLACE of slot %d from %s to %s failed: %s" % (
                slot, self.topology.describe(source.node_id), self.topology.describe(target.node_id),
                self.session.error_text(reply)))

    def _differing_keys(self, source: ClusterNode, target: ClusterNode, keys: list[bytes]) -> list[bytes]:
        ours = self.session.pipeline(source, [("DUMP", key) for key in keys])
        # The target serves a slot it imports only to a client that says ASKING first.
        theirs = self.session.pipeline(target, [cmd for key in keys for cmd in (("ASKING",), ("DUMP", key))])[1::2]
        return [key for key, a, b in zip(keys, ours, theirs)
                if a is not None and b is not None and not isinstance(a, Exception) and a != b]


def _show_keys(keys: Sequence[bytes], limit: int = 5) -> str:
    shown = ", ".join(repr(k.decode("utf-8", "backslashreplace")) for k in keys[:limit])
    return shown + (" and %d more" % (len(keys) - limit) if len(keys) > limit else "")


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


def plan_open_slot_fixes(session: ClusterSession, topology: ClusterTopology) -> list[SlotFix]:
    """Decide a fix for every open slot, counting keys on each master (no change made)."""
    parties = open_slot_parties(topology)
    if not parties:
        return []
    slots = sorted(parties)
    counts: dict[int, dict[str, int]] = {slot: {} for slot in slots}
    for master in topology.usable_masters():
        replies = session.pipeline(master, [("CLUSTER", "COUNTKEYSINSLOT", slot) for slot in slots])
        for slot, reply in zip(slots, replies):
            if isinstance(reply, Exception):
                raise RedisClusterError("CLUSTER COUNTKEYSINSLOT %d on %s failed: %s" % (
                    slot, topology.describe(master.node_id), session.error_text(reply)))
            counts[slot][master.node_id] = int(reply)
    fixes = [decide_open_slot_fix(slot, *parties[slot], counts[slot]) for slot in slots]
    usable = {m.node_id for m in topology.usable_masters()}
    for fix in fixes:
        strangers = [node for node in (fix.source, fix.target) if node not in usable]
        if strangers:
            raise RedisClusterError("cannot settle open slot %d: it is open towards %s, which is not a reachable "
                                    "master of this cluster. Fix it by hand or with %s." % (
                                        fix.slot, ", ".join(topology.describe(n) for n in strangers), FIX_HINT))
    return fixes


def apply_open_slot_fixes(session: ClusterSession, topology: ClusterTopology, fixes: Sequence[SlotFix],
                          mover: SlotMover) -> list[dict[str, Any]]:
    """Settle open slots as decided; return what was done, slot by slot."""
    done = []
    for fix in fixes:
        source, target = topology.node(fix.source), topology.node(fix.target)
        keys = 0
        if fix.action == "close":
            for node_id in fix.nodes:
                mover.close(topology.node(node_id), [fix.slot])
        else:
            keys = mover.move(source, target, [fix.slot],
                              open_target=fix.slot not in topology.slots_of(target.node_id),
                              open_source=fix.slot in topology.slots_of(source.node_id))
        done.append(describe_fix(topology, fix, keys))
    return done


def describe_fix(topology: ClusterTopology, fix: SlotFix, keys: int | None = None) -> dict[str, Any]:
    entry = {"slot": fix.slot, "action": fix.action, "source": fix.source, "target": fix.target,
             "source_address": topology.node(fix.source).address,
             "target_address": topology.node(fix.target).address, "reason": fix.reason}
    if keys is not None:
        entry["keys"] = keys
    return entry


def masters_for_plan(topology: ClusterTopology, fixes: Sequence[SlotFix] = ()) -> list[tuple[str, set[int]]]:
    """Masters in cluster order with their slots, as they will be once ``fixes`` are applied."""
    masters = topology.usable_masters()
    slots = {m.node_id: set(topology.slots_of(m.node_id)) for m in masters}
    for fix in fixes:
        if fix.action == "finish":
            slots[fix.source].discard(fix.slot)
            slots[fix.target].add(fix.slot)
    return [(m.node_id, slots[m.node_id]) for m in masters]


def describe_plan(topology: ClusterTopology, plan: RebalancePlan) -> list[dict[str, Any]]:
    return [{"source": move.source, "target": move.target,
             "source_address": topology.node(move.source).address,
             "target_address": topology.node(move.target).address,
             "slots": len(move.slots), "slot_ranges": format_slot_ranges(move.slots)} for move in plan.moves]


def distribution(topology: ClusterTopology) -> list[dict[str, Any]]:
    return [{"node_id": m.node_id, "address": m.address, "slots": len(topology.slots_of(m.node_id)),
             "slot_ranges": format_slot_ranges(topology.slots_of(m.node_id))} for m in topology.masters()]


def execute_plan(session: ClusterSession, topology: ClusterTopology, plan: RebalancePlan,
                 mover: SlotMover) -> list[dict[str, Any]]:
    """Run the plan's moves in order; on failure raise with what was moved so far in ``details``."""
    moved: list[dict[str, Any]] = []
    for step in plan.moves:
        started = time.monotonic()
        source, target = topology.node(step.source), topology.node(step.target)
        try:
            keys = mover.move(source, target, step.slots)
        except RedisClusterError as exc:
            raise RedisClusterError(str(exc), {"moved": moved}) from None
        moved.append({"source": step.source, "target": step.target, "source_address": source.address,
                      "target_address": target.address, "slots": len(step.slots), "keys": keys,
                      "seconds": round(time.monotonic() - started, 3)})
    return moved


def rebalance(session: ClusterSession, options: Mapping[str, Any], check_mode: bool) -> dict[str, Any]:
    """Settle open slots if allowed, plan like redis-cli, and move (unless ``check_mode``)."""
    started = time.monotonic()
    topology = session.load_agreed(options["convergence_timeout"])
    refuse_unsafe_cluster(topology, allow_open_slots=options["fix_open_slots"])
    weights = resolve_weights(topology, options["weights"])
    fixes = plan_open_slot_fixes(session, topology)
    try:
        plan = plan_rebalance(masters_for_plan(topology, fixes), weights, options["threshold"],
                              options["use_empty_masters"])
    except PlanError as exc:
        raise RedisClusterError("cannot plan the rebalance: %s; nothing was moved." % exc) from None
    result: dict[str, Any] = {
        "changed": bool(fixes or plan.moves),
        "plan": describe_plan(topology, plan),
        "rebalance_needed": plan.needed,
        "open_slots_fixed": [describe_fix(topology, fix) for fix in fixes],
        "distribution_before": distribution(topology),
        "moved": [],
        "slots_moved": 0,
        "keys_moved": 0,
    }
    if check_mode:
        result["timing"] = {"total_seconds": round(time.monotonic() - started, 3)}
        return result

    wait_until_serving(session, topology, options["convergence_timeout"])
    mover = SlotMover(session, topology, options["pipeline"], options["timeout"], options["replace"])
    fix_started = time.monotonic()
    result["open_slots_fixed"] = apply_open_slot_fixes(session, topology, fixes, mover)
    fix_seconds = time.monotonic() - fix_started
    if fixes:
        topology = session.load()
        mover = SlotMover(session, topology, options["pipeline"], options["timeout"], options["replace"])
    move_started = time.monotonic()
    try:
        result["moved"] = execute_plan(session, topology, plan, mover)
    except RedisClusterError as exc:
        exc.details.update(open_slots_fixed=result["open_slots_fixed"], plan=result["plan"])
        raise
    result["slots_moved"] = sum(step["slots"] for step in result["moved"])
    result["keys_moved"] = sum(step["keys"] for step in result["moved"])
    result["distribution_after"] = distribution(session.load())
    result["timing"] = {"total_seconds": round(time.monotonic() - started, 3),
                        "fix_seconds": round(fix_seconds, 3),
                        "move_seconds": round(time.monotonic() - move_started, 3)}
    return result
