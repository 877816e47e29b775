# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a Redis Cluster's topology and deciding about open slots: pure functions over
``CLUSTER NODES`` texts, no server and no redis-py, tested without servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cluster_plan import (
    CLUSTER_SLOTS,
)

FIX_HINT = "redis-cli --cluster fix"


class RedisClusterError(Exception):
    """A failure the user can act on. The message never contains a secret.

    ``details`` carries what was done before the failure (slots moved so far), so that a module
    can return it with the error.
    """

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = dict(details or {})


# --------------------------------------------------------------------------------------------
# The topology: pure functions over CLUSTER NODES texts
# --------------------------------------------------------------------------------------------


@dataclass
class ClusterNode:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    host: str
    port: int
    bus_port: int | None
    hostname: str
    flags: frozenset[str]
    master_id: str | None
    config_epoch: int
    link_state: str
    slots: frozenset[int] = frozenset()
    migrating: dict[int, str] = field(default_factory=dict)
    importing: dict[int, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return "%s:%d" % (self.host, self.port)

    @property
    def myself(self) -> bool:
        return "myself" in self.flags

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        return "slave" in self.flags

    @property
    def failed(self) -> bool:
        return "fail" in self.flags

    @property
    def noaddr(self) -> bool:
        return "noaddr" in self.flags

    @property
    def handshake(self) -> bool:
        return "handshake" in self.flags


def parse_node_address(text: str) -> tuple[str, int, int | None, str]:
    """Split ``ip:port@cport[,hostname]`` (Redis 7) or ``ip:port`` (Redis 3) into its parts."""
    address, has_extra, extra = text.partition(",")
    hostname = extra.split(",")[0] if has_extra and "=" not in extra.split(",")[0] else ""
    address, has_bus, bus = address.partition("@")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("malformed node address %r" % text)
    return host, int(port), int(bus) if bus.isdigit() else None, hostname


def parse_cluster_nodes(text: str) -> list[ClusterNode]:
    """Parse the reply of ``CLUSTER NODES``, keeping the order of its lines."""
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 8:
            raise ValueError("malformed CLUSTER NODES line (fewer than 8 fields): %r" % line)
        host, port, bus_port, hostname = parse_node_address(fields[1])
        node = ClusterNode(
            node_id=fields[0],
            host=host,
            port=port,
            bus_port=bus_port,
            hostname=hostname,
            flags=frozenset(fields[2].split(",")),
            master_id=None if fields[3] == "-" else fields[3],
            config_epoch=int(fields[6]),
            link_state=fields[7],
        )
        slots: set[int] = set()
        for token in fields[8:]:
            _parse_slot_token(token, slots, node)
        node.slots = frozenset(slots)
        nodes.append(node)
    return nodes


def _parse_slot_token(token: str, slots: set[int], node: ClusterNode) -> None:
    if token.startswith("["):
        body = token.strip("[]")
        if "->-" in body:
            slot, peer = body.split("->-", 1)
            node.migrating[int(slot)] = peer
        elif "-<-" in body:
            slot, peer = body.split("-<-", 1)
            node.importing[int(slot)] = peer
        else:
            raise ValueError("malformed open slot %r" % token)
        return
    first, is_range, last = token.partition("-")
    start, stop = int(first), int(last if is_range else first)
    if not 0 <= start <= stop < CLUSTER_SLOTS:
        raise ValueError("slot range out of bounds: %r" % token)
    slots.update(range(start, stop + 1))


@dataclass(frozen=True)
class OpenSlot:
    """A slot in migrating or importing state on one node."""

    slot: int
    node_id: str
    state: str
    peer_id: str


@dataclass
class ClusterTopology:
    """The cluster as the entry node sees it, plus what every reachable node says of itself.

    ``nodes`` is the entry node's ``CLUSTER NODES`` with the entry node first, the order
    redis-cli loads a cluster in (it decides ties in the rebalance plan). Nodes still in
    handshake are not members yet and are left out. ``views`` holds each reachable node's
    own ``CLUSTER NODES``; ``unreachable`` the nodes that could not be read, with the reason.
    """

    entry_id: str
    nodes: list[ClusterNode]
    views: dict[str, list[ClusterNode]]
    unreachable: dict[str, str]

    def node(self, node_id: str) -> ClusterNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    def has(self, node_id: str) -> bool:
        return any(node.node_id == node_id for node in self.nodes)

    def own(self, node_id: str) -> ClusterNode:
        """The node as it describes itself (its slots and open slots), or as the entry sees it."""
        for node in self.views.get(node_id, ()):
            if node.myself:
                return node
        return self.node(node_id)

    def masters(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.is_master and not node.is_replica]

    def usable_masters(self) -> list[ClusterNode]:
        """Masters that slots can move to and from: reachable and not flagged fail or noaddr."""
        return [node for node in self.masters() if node.node_id in self.views and not (node.failed or node.noaddr)]

    def replicas_of(self, master_id: str) -> list[ClusterNode]:
        return [node for node in self.nodes if node.is_replica and node.master_id == master_id]

    def slots_of(self, node_id: str) -> frozenset[int]:
        return self.own(node_id).slots

    def checked_nodes(self) -> list[ClusterNode]:
        """The nodes redis-cli would load: reachable, and not flagged fail or noaddr by the entry."""
        return [n for n in self.nodes if n.node_id in self.views and not (n.failed or n.noaddr)]

    def failed_masters(self) -> list[ClusterNode]:
        """Masters that hold slots but cannot serve them: flagged fail or noaddr, or unreachable."""
        usable = {node.node_id for node in self.usable_masters()}
        return [n for n in self.masters() if n.node_id not in usable and self.slots_of(n.node_id)]

    def open_slots(self) -> list[OpenSlot]:
        found = []
        for node in self.masters():
            own = self.own(node.node_id)
            found.extend(OpenSlot(slot, node.node_id, "migrating", peer) for slot, peer in own.migrating.items())
            found.extend(OpenSlot(slot, node.node_id, "importing", peer) for slot, peer in own.importing.items())
        return found

    def slot_owners(self) -> dict[int, ClusterNode]:
        """Slot -> the checked master serving it, as each master describes itself."""
        owners: dict[int, ClusterNode] = {}
        for node in self.checked_nodes():
            if node.is_master:
                owners.update(dict.fromkeys(self.own(node.node_id).slots, node))
        return owners

    def covered_slots(self) -> set[int]:
        return set(self.slot_owners())

    def uncovered_slots(self) -> list[int]:
        covered = self.covered_slots()
        return [slot for slot in range(CLUSTER_SLOTS) if slot not in covered]

    def agrees(self) -> bool:
        """Whether every reachable node has the same slot assignment (redis-cli's config check)."""
        signatures = {node_id: _slot_signature(view) for node_id, view in self.views.items()}
        return len(set(signatures.values())) <= 1

    def strangers(self) -> dict[str, list[str]]:
        """Members some reachable node does not know yet (gossip still spreading a new node), by node.

        A master asked to migrate a slot to a node it does not know answers "I don't know about node".
        """
        members = {node.node_id for node in self.nodes}
        missing = {}
        for node_id, view in self.views.items():
            known = {node.node_id for node in view if not node.handshake}
            if members - known:
                missing[node_id] = sorted(members - known)
        return missing

    def describe(self, node_id: str) -> str:
        try:
            return "%s (%s)" % (self.node(node_id).address, node_id[:8])
        except KeyError:
            return node_id


def _slot_signature(view: Iterable[ClusterNode]) -> frozenset[tuple[str, frozenset[int]]]:
    return frozenset((node.node_id, node.slots) for node in view if node.slots)


def build_topology(
    entry_view: list[ClusterNode], views: Mapping[str, list[ClusterNode]], unreachable: Mapping[str, str]
) -> ClusterTopology:
    """Assemble the topology from the entry node's view and the other nodes' own views."""
    entry = [node for node in entry_view if node.myself]
    if len(entry) != 1:
        raise ValueError("CLUSTER NODES has no 'myself' line")
    members = entry + [node for node in entry_view if not node.myself and not node.handshake]
    return ClusterTopology(entry[0].node_id, members, dict(views), dict(unreachable))


def check_findings(topology: ClusterTopology) -> list[dict[str, str]]:
    """What ``redis-cli --cluster check`` reports, in its words, plus unreachable and failed nodes.

    redis-cli leaves failed and unreachable nodes out of its check, so their slots count as
    uncovered; this does the same and also names those nodes.
    """
    findings: list[dict[str, str]] = []

    def add(level: str, code: str, message: str) -> None:
        findings.append({"level": level, "code": code, "message": "[%s] %s" % (level, message)})

    for node in topology.nodes:
        if node.node_id in topology.unreachable:
            add("ERR", "node_unreachable", "Node %s is unreachable: %s" % (
                topology.describe(node.node_id), topology.unreachable[node.node_id]))
        elif node.failed or node.noaddr:
            add("ERR", "node_failed", "Node %s is flagged %s by %s." % (
                topology.describe(node.node_id), ",".join(sorted(node.flags & {"fail", "noaddr"})),
                topology.describe(topology.entry_id)))
    if not topology.agrees():
        add("ERR", "config_disagreement", "Nodes don't agree about configuration!")
    open_slots: list[int] = []
    for node in topology.checked_nodes():
        own = topology.own(node.node_id)
        for state, marks in (("migrating", own.migrating), ("importing", own.importing)):
            if marks:
                add("WARNING", "slots_" + state, "Node %s has slots in %s state %s." % (
                    node.address, state, ",".join(str(slot) for slot in marks)))
                open_slots.extend(slot for slot in marks if slot not in open_slots)
    if open_slots:
        add("WARNING", "open_slots", "The following slots are open: %s." % ",".join(str(s) for s in sorted(open_slots)))
    if len(topology.covered_slots()) != CLUSTER_SLOTS:
        add("ERR", "slots_uncovered", "Not all %d slots are covered by nodes." % CLUSTER_SLOTS)
    return findings


def resolve_node(topology: ClusterTopology, name: str, masters_only: bool = True, what: str = "node") -> ClusterNode:
    """Find a node by id, unique id prefix (as redis-cli accepts) or ``host:port``."""
    candidates = topology.masters() if masters_only else topology.nodes
    wanted = name.strip().lower()
    matches = [n for n in candidates if n.node_id == wanted or n.address == wanted or _hostname_address(n) == wanted]
    if not matches and wanted:
        matches = [n for n in candidates if n.node_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join("%s (%s)" % (n.address, n.node_id[:8]) for n in candidates)
    if len(matches) > 1:
        raise RedisClusterError("%s '%s' is ambiguous: it matches %d nodes; use more of the node id. Known: %s" % (
            what, name, len(matches), known))
    replica = [n for n in topology.nodes if n.is_replica and (n.node_id.startswith(wanted) or n.address == wanted)]
    if masters_only and replica:
        raise RedisClusterError("%s '%s' is a replica (of %s), not a master" % (
            what, name, topology.describe(replica[0].master_id or "")))
    kind = "master" if masters_only else "node"
    raise RedisClusterError("%s '%s' is not a %s of this cluster. Known %ss: %s" % (what, name, kind, kind, known))


def _hostname_address(node: ClusterNode) -> str:
    return "%s:%d" % (node.hostname.lower(), node.port) if node.hostname else ""


def _drained(topology: ClusterTopology, name: str) -> bool:
    """True when ``name`` is a replica (it holds no slot by definition): a weight of 0 is already met."""
    try:
        node = resolve_node(topology, name, masters_only=False, what="weights: node")
    except RedisClusterError:
        return False
    return node.is_replica


def resolve_weights(topology: ClusterTopology, weights: Mapping[str, Any]) -> dict[str, float]:
    """Map the user's weights (by id, id prefix or host:port) to master ids; refuse unknown nodes."""
    resolved: dict[str, float] = {}
    for name, raw in (weights or {}).items():
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            raise RedisClusterError("weights: the weight of '%s' must be a number, got %r" % (name, raw)) from None
        if not 0 <= weight < 1e6:
            raise RedisClusterError("weights: the weight of '%s' must be between 0 and 1000000, got %s" % (name, raw))
        if weight == 0 and _drained(topology, str(name)):
            # Already drained: Redis 7 turns an emptied master into a replica
            # (cluster-allow-replica-migration), and redis-cli answers "No rebalancing needed".
            continue
        node = resolve_node(topology, str(name), what="weights: node")
        if node.node_id in resolved:
            raise RedisClusterError("weights: node %s is given twice" % topology.describe(node.node_id))
        resolved[node.node_id] = weight
    return resolved


# --------------------------------------------------------------------------------------------
# Open slots: what to do with a slot left half-migrated
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotFix:
    """How to settle one open slot.

    ``action`` is ``finish`` (move the slot's remaining keys from ``source`` to ``target`` and
    give the slot to ``target``) or ``close`` (clear the open state on ``nodes``; the slot stays
    with its owner and no key moves).
    """

    slot: int
    action: str
    source: str
    target: str
    nodes: tuple[str, ...] = ()
    reason: str = ""


def decide_open_slot_fix(
    slot: int,
    owners: Sequence[str],
    migrating: Mapping[str, str],
    importing: Mapping[str, str],
    key_counts: Mapping[str, int],
) -> SlotFix:
    """Decide how to settle an open slot, or raise when the state is not one a migration leaves.

    ``owners`` are the masters that claim the slot in their own configuration, ``migrating`` maps
    node -> target and ``importing`` node -> source for this slot, ``key_counts`` gives the keys
    each master holds in the slot.

    The mover opens a slot on the target first (IMPORTING), then on the source (MIGRATING), moves
    the keys, then assigns the slot to the target, the source and the others. An interruption
    therefore leaves one of these states, settled like redis-cli's ``--cluster fix`` does, with a
    preference for moving forward once any key has moved:

    - MIGRATING on S to T, and T importing from S or already owning the slot: keys may be on
      both sides, and clients follow ASK redirections to T. Finish the move (redis-cli's case 1);
      going back would mean moving keys back for no gain.
    - MIGRATING on S to T, T neither importing nor owning: T could not have received a key
      (RESTORE-ASKING needs one of the two), so if T has none, close the slot on S (redis-cli's
      case 4). If T does hold keys, re-open T and finish.
    - IMPORTING on T from S only (the run stopped between the two SETSLOT calls): if T has no
      key, close the slot on T. If T has keys (someone cleared S's state by hand), open S again
      and finish, so no key is left where clients cannot reach it.

    Any other state (several migrating or importing nodes, keys on a third master, no owner)
    was not left by a migration and is refused with a description, to be fixed by hand.
    """
    holders = sorted(node for node, count in key_counts.items() if count > 0)
    state = "slot %d: owners %s, migrating %s, importing %s, keys on %s" % (
        slot, sorted(owners) or "none", dict(migrating) or "none", dict(importing) or "none", holders or "none")
    if len(migrating) > 1 or len(importing) > 1:
        raise RedisClusterError("cannot settle open %s: more than one node is migrating or importing it. "
                                "Fix it by hand or with %s." % (state, FIX_HINT))
    if migrating:
        source, target = next(iter(migrating.items()))
        if importing and importing != {target: source}:
            raise RedisClusterError("cannot settle open %s: the importing node is not the migration target. "
                                    "Fix it by hand or with %s." % (state, FIX_HINT))
        _refuse_third_holder(state, holders, (source, target))
        if target in importing or target in owners:
            return SlotFix(slot, "finish", source, target, reason="resume the interrupted migration")
        if key_counts.get(target, 0) == 0:
            return SlotFix(slot, "close", source, target, (source,), "no key moved yet: the slot stays on its owner")
        return SlotFix(slot, "finish", source, target, reason="the target already holds keys of the slot")
    target, source = next(iter(importing.items()))
    if list(owners) != [source]:
        raise RedisClusterError("cannot settle open %s: the node it imports from is not the slot's only owner. "
                                "Fix it by hand or with %s." % (state, FIX_HINT))
    _refuse_third_holder(state, holders, (source, target))
    if key_counts.get(target, 0) == 0:
        return SlotFix(slot, "close", source, target, (target,), "no key moved yet: the slot stays on its owner")
    return SlotFix(slot, "finish", source, target, reason="the target already holds keys of the slot")


def _refuse_third_holder(state: str, holders: Sequence[str], pair: tuple[str, str]) -> None:
    others = [node for node in holders if node not in pair]
    if others:
        raise RedisClusterError("cannot settle open %s: a master outside the migration holds keys of the slot. "
                                "Fix it by hand or with %s." % (state, FIX_HINT))


def open_slot_parties(topology: ClusterTopology) -> dict[int, tuple[list[str], dict[str, str], dict[str, str]]]:
    """For every open slot: (owners, migrating node -> target, importing node -> source)."""
    parties: dict[int, tuple[list[str], dict[str, str], dict[str, str]]] = {}
    for mark in topology.open_slots():
        owners, migrating, importing = parties.setdefault(mark.slot, ([], {}, {}))
        (migrating if mark.state == "migrating" else importing)[mark.node_id] = mark.peer_id
    for slot, entry in parties.items():
        entry[0].extend(m.node_id for m in topology.usable_masters() if slot in topology.slots_of(m.node_id))
    return parties


def migrate_command(
    host: str, port: int, keys: Sequence[bytes], timeout_ms: int, replace: bool,
    user: str | None, password: str | None,
) -> tuple[Any, ...]:
    """``MIGRATE host port "" 0 timeout [REPLACE] [AUTH pw | AUTH2 user pw] KEYS k...``."""
    args: list[Any] = ["MIGRATE", host, port, "", 0, timeout_ms]
    if replace:
        args.append("REPLACE")
    if password:
        args.extend(["AUTH2", user, password] if user else ["AUTH", password])
    args.append("KEYS")
    args.extend(keys)
    return tuple(args)


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def parse_info_text(text: str) -> dict[str, Any]:
    """Parse ``key:value`` lines (CLUSTER INFO); integers become ints."""
    info: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            info[key] = int(value) if value.lstrip("-").isdigit() else value
    return info
