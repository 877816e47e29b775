# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis Cluster operations on redis-py: connecting, reading the topology, moving slots.

The layers, from the bottom:

- connecting (:func:`redis_argument_spec`, :class:`ClusterSession`): one argument spec for every
  Redis module, error messages that say what to check and never carry the password;
- the topology (:func:`parse_cluster_nodes`, :func:`build_topology`, :func:`check_findings`): pure
  functions over ``CLUSTER NODES`` texts, tested without servers;
- open slots (:func:`decide_open_slot_fix`): what to do with a slot left half-migrated;
- the slot mover (:class:`SlotMover`): the documented migration protocol, batched;
- the operations the modules call (:func:`rebalance`, :func:`add_node`, :func:`remove_node`,
  :func:`cluster_report`).

Every redis-py call goes through ``execute_command`` with the command spelled out, so the code
works with redis-py 3.5 (Debian bullseye) as well as with current releases.
"""

from __future__ import annotations

import inspect
import socket
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.masking import MASK, scrub
from ansible_collections.muejam.dbops.plugins.module_utils.redis_cluster_plan import (
    CLUSTER_SLOTS,
    PlanError,
    RebalancePlan,
    format_slot_ranges,
    plan_rebalance,
)

REDIS_IMPORT_ERROR: str | None = None
try:
    import redis

    HAS_REDIS = True
except ImportError:
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = traceback.format_exc()

# Slots opened, emptied and assigned together: one round trip per step for the whole batch
# instead of one per slot. An interrupted batch leaves at most this many slots open, each of
# which decide_open_slot_fix() knows how to finish.
SLOT_BATCH = 64
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
# Connecting
# --------------------------------------------------------------------------------------------


def redis_argument_spec() -> dict[str, dict[str, Any]]:
    """Return the connection options every Redis module accepts (doc fragment muejam.dbops.redis)."""
    return {
        "login_host": {"type": "str", "default": "localhost", "aliases": ["host"]},
        "login_port": {"type": "int", "default": 6379, "aliases": ["port"]},
        "login_user": {"type": "str", "aliases": ["user"]},
        "login_password": {"type": "str", "no_log": True, "aliases": ["password"]},
        "tls": {"type": "bool", "default": False},
        "validate_certs": {"type": "bool", "default": True},
        "ca_certs": {"type": "path"},
        "client_cert": {"type": "path"},
        "client_key": {"type": "path"},
        "socket_timeout": {"type": "float", "default": 10.0},
    }


def _supported_client_options() -> frozenset[str]:
    if not HAS_REDIS:
        return frozenset()
    return frozenset(inspect.signature(redis.Redis.__init__).parameters)


def client_kwargs(
    params: Mapping[str, Any], host: str, port: int, socket_timeout: float | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``redis.Redis`` for one node, for the redis-py that is installed."""
    timeout = socket_timeout if socket_timeout is not None else params["socket_timeout"]
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "socket_timeout": timeout,
        "socket_connect_timeout": params["socket_timeout"],
        "decode_responses": False,
    }
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if params.get("login_user"):
        kwargs["username"] = params["login_user"]
    if params.get("tls"):
        kwargs.update(ssl=True, ssl_cert_reqs="required" if params["validate_certs"] else "none")
        files = {"ca_certs": "ssl_ca_certs", "client_cert": "ssl_certfile", "client_key": "ssl_keyfile"}
        kwargs.update((key, params[option]) for option, key in files.items() if params.get(option))
    supported = _supported_client_options()
    # Newer redis-py speaks RESP3 and retries failed commands on its own; pin the behaviour of
    # the oldest supported release so that replies parse the same and nothing is sent twice.
    if "protocol" in supported:
        kwargs["protocol"] = 2
    if "retry" in supported:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        kwargs["retry"] = Retry(NoBackoff(), 0)
    if params.get("tls") and not params["validate_certs"] and "ssl_check_hostname" in supported:
        kwargs["ssl_check_hostname"] = False
    return kwargs


def explain_error(exc: Exception, where: str, params: Mapping[str, Any]) -> str:
    """Turn a redis-py exception into a sentence that says what to check (no password in it)."""
    detail = scrub(str(exc).strip() or type(exc).__name__, params.get("login_password"))
    upper = detail.upper()
    who = "user '%s'" % params["login_user"] if params.get("login_user") else "the default user"
    if "NOAUTH" in upper or "AUTHENTICATION REQUIRED" in upper:
        hint = "%s requires authentication: set login_password (and login_user for an ACL user)" % where
    elif "WRONGPASS" in upper or "INVALID USERNAME-PASSWORD" in upper or "INVALID PASSWORD" in upper:
        hint = "authentication as %s failed on %s (WRONGPASS): check login_user and login_password" % (who, where)
    elif "WITHOUT ANY PASSWORD CONFIGURED" in upper:
        hint = "%s has no password for the default user: leave login_password unset" % where
    elif "NOPERM" in upper:
        hint = "%s lacks a permission on %s: the module needs the cluster, keyspace and migrate commands" % (who, where)
    elif "CLUSTER SUPPORT DISABLED" in upper:
        hint = "%s is not a cluster node (cluster-enabled is no in its configuration)" % where
    elif "PROTECTED MODE" in upper:
        hint = "%s refuses remote clients (protected mode): set a password or protected-mode no" % where
    elif HAS_REDIS and isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        hint = ("%s is unreachable: check the host and port, that redis-server runs and listens there "
                "(bind), and any firewall in between" % where)
    else:
        hint = "%s replied with an error" % where
    return "%s: %s" % (hint, detail)


def _text(reply: Any) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


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

    def covered_slots(self) -> set[int]:
        covered: set[int] = set()
        for node in self.checked_nodes():
            if node.is_master:
                covered |= self.own(node.node_id).slots
        return covered

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


def resolve_weights(topology: ClusterTopology, weights: Mapping[str, Any]) -> dict[str, float]:
    """Map the user's weights (by id, id prefix or host:port) to master ids; refuse unknown nodes."""
    resolved: dict[str, float] = {}
    for name, raw in (weights or {}).items():
        node = resolve_node(topology, str(name), what="weights: node")
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            raise RedisClusterError("weights: the weight of '%s' must be a number, got %r" % (name, raw)) from None
        if not 0 <= weight < 1e6:
            raise RedisClusterError("weights: the weight of '%s' must be between 0 and 1000000, got %s" % (name, raw))
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


# --------------------------------------------------------------------------------------------
# Talking to the cluster
# --------------------------------------------------------------------------------------------


class ClusterSession:
    """Connections to the nodes of one cluster, opened on demand with the same credentials.

    The entry node is reached at ``login_host:login_port``; every other node at the address the
    cluster announces for it, which is also the address the nodes use among themselves.
    """

    def __init__(self, params: Mapping[str, Any], socket_timeout: float | None = None) -> None:
        if not HAS_REDIS:
            raise RedisClusterError("redis-py (the redis Python library) is not installed where the module runs")
        self.params = params
        self.socket_timeout = socket_timeout
        self.entry_address = "%s:%d" % (params["login_host"], params["login_port"])
        self.entry_id: str | None = None
        self._clients: dict[str, Any] = {}

    def close(self) -> None:
        for client in self._clients.values():
            try:
                client.connection_pool.disconnect()
            except Exception:  # closing is best effort; the process ends right after
                pass
        self._clients.clear()

    def _address_of(self, node: ClusterNode | str) -> tuple[str, int]:
        if isinstance(node, str):
            host, port = node.rsplit(":", 1)
            return host, int(port)
        if node.node_id == self.entry_id or not node.host:
            return self.params["login_host"], self.params["login_port"]
        return node.host, node.port

    def client(self, node: ClusterNode | str) -> Any:
        host, port = self._address_of(node)
        key = "%s:%d" % (host, port)
        if key not in self._clients:
            self._clients[key] = redis.Redis(**client_kwargs(self.params, host, port, self.socket_timeout))
        return self._clients[key]

    def where(self, node: ClusterNode | str) -> str:
        return "%s:%d" % self._address_of(node)

    def command(self, node: ClusterNode | str, *args: Any) -> Any:
        try:
            return self.client(node).execute_command(*args)
        except redis.exceptions.RedisError as exc:
            raise RedisClusterError(explain_error(exc, "node " + self.where(node), self.params)) from None

    def pipeline(self, node: ClusterNode | str, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send commands in one round trip; a reply that is an error comes back as the exception."""
        if not commands:
            return []
        pipe = self.client(node).pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        try:
            return pipe.execute(raise_on_error=False)
        except redis.exceptions.RedisError as exc:
            raise RedisClusterError(explain_error(exc, "node " + self.where(node), self.params)) from None

    def error_text(self, exc: Exception) -> str:
        return scrub(str(exc), self.params.get("login_password"))

    def cluster_nodes(self, node: ClusterNode | str) -> list[ClusterNode]:
        reply = _text(self.command(node, "CLUSTER", "NODES"))
        try:
            return parse_cluster_nodes(reply)
        except ValueError as exc:
            raise RedisClusterError("node %s sent a CLUSTER NODES reply this module cannot read: %s" % (
                self.where(node), exc)) from None

    def load(self) -> ClusterTopology:
        """Read CLUSTER NODES from the entry node, then from every node it knows."""
        entry_view = self.cluster_nodes(self.entry_address)
        if sum(1 for node in entry_view if node.myself) != 1:
            raise RedisClusterError("node %s sent a CLUSTER NODES reply without its own line" % self.entry_address)
        topology = build_topology(entry_view, {}, {})
        self.entry_id = topology.entry_id
        views = {topology.entry_id: entry_view}
        unreachable: dict[str, str] = {}
        for node in topology.nodes[1:]:
            if node.noaddr or not node.host:
                unreachable[node.node_id] = "the cluster has no address for it (noaddr)"
                continue
            try:
                views[node.node_id] = self.cluster_nodes(node)
            except RedisClusterError as exc:
                unreachable[node.node_id] = str(exc)
        return build_topology(entry_view, views, unreachable)

    def load_agreed(self, wait_seconds: float) -> ClusterTopology:
        """Load the topology, re-reading for up to ``wait_seconds`` until every node agrees on slots.

        Right after a change, replicas learn the new slot owners through gossip within a second
        or so; a check in between would report a disagreement that resolves by itself.
        """
        deadline = time.monotonic() + wait_seconds
        topology = self.load()
        while not (topology.agrees() and not topology.strangers()) and time.monotonic() < deadline:
            time.sleep(0.25)
            topology = self.load()
        return topology


def run_in_session(module: Any, operation: Any, socket_timeout: float | None = None) -> None:
    """Exit the module with operation(session)'s result, or fail with the error's message and details.

    The one way every redis_cluster_* module talks to a cluster: redis-py must be importable, the
    session's connections are always closed, and a RedisClusterError becomes a clear failure.
    """
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)
    session = ClusterSession(module.params, socket_timeout=socket_timeout)
    try:
        result = operation(session)
    except RedisClusterError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    finally:
        session.close()
    module.exit_json(**result)


def refuse_unsafe_cluster(topology: ClusterTopology, allow_open_slots: bool) -> None:
    """Raise before anything moves when the cluster is not in a state to move slots safely."""
    failed = topology.failed_masters()
    if failed:
        described = "; ".join(_why_failed(topology, node) for node in failed)
        raise RedisClusterError("refusing to move slots: %d master(s) are failed or unreachable: %s. "
                                "Bring them back or fail over to a replica first; nothing was moved."
                                % (len(failed), described))
    uncovered = topology.uncovered_slots()
    if uncovered:
        raise RedisClusterError("refusing to move slots: %d slots are not covered by any master (%s). "
                                "Assign them first (CLUSTER ADDSLOTS, or %s); nothing was moved."
                                % (len(uncovered), ",".join(format_slot_ranges(uncovered)), FIX_HINT))
    if not topology.agrees():
        raise RedisClusterError("refusing to move slots: the nodes do not agree about the slot configuration "
                                "(check with redis-cli --cluster check); nothing was moved.")
    strangers = topology.strangers()
    if strangers:
        described = "; ".join("%s does not know %s" % (topology.describe(node_id), ", ".join(m[:8] for m in missing))
                              for node_id, missing in sorted(strangers.items()))
        raise RedisClusterError("refusing to move slots: not every node knows every member yet (%s). Wait for "
                                "the cluster bus to spread them (check that the nodes reach each other on the client "
                                "port + 10000); nothing was moved." % described)
    open_slots = sorted({mark.slot for mark in topology.open_slots()})
    if open_slots and not allow_open_slots:
        raise RedisClusterError("refusing to move slots: %d slots are open (migrating/importing): %s. "
                                "Set fix_open_slots=true to settle them first; nothing was moved."
                                % (len(open_slots), ",".join(format_slot_ranges(open_slots))))


def wait_until_serving(session: ClusterSession, topology: ClusterTopology, wait_seconds: float) -> None:
    """Wait until every master says ``cluster_state:ok``, or raise before anything moves.

    A master that has just started or joined keeps its state at fail for up to the node timeout
    (at most 5 s) before it serves; RESTORE-ASKING on it would fail with CLUSTERDOWN midway.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        down = [m for m in topology.usable_masters()
                if parse_info_text(_text(session.command(m, "CLUSTER", "INFO"))).get("cluster_state") != "ok"]
        if not down:
            return
        if time.monotonic() > deadline:
            raise RedisClusterError("refusing to move slots: %s still report cluster_state:fail after %ss "
                                    "(check CLUSTER INFO on them); nothing was moved." % (
                                        ", ".join(topology.describe(m.node_id) for m in down), wait_seconds))
        time.sleep(0.25)


def _why_failed(topology: ClusterTopology, node: ClusterNode) -> str:
    if node.node_id in topology.unreachable:
        return "%s is unreachable (%s)" % (topology.describe(node.node_id), topology.unreachable[node.node_id])
    return "%s is flagged %s" % (topology.describe(node.node_id), ",".join(sorted(node.flags & {"fail", "noaddr"})))


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


def _masters_for_plan(topology: ClusterTopology, fixes: Sequence[SlotFix] = ()) -> list[tuple[str, set[int]]]:
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
        plan = plan_rebalance(_masters_for_plan(topology, fixes), weights, options["threshold"],
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


# --------------------------------------------------------------------------------------------
# Adding and removing nodes
# --------------------------------------------------------------------------------------------


def node_identity(session: ClusterSession, address: str) -> tuple[str, dict[str, Any], int]:
    """The node's id, its CLUSTER INFO and its number of keys."""
    node_id = _text(session.command(address, "CLUSTER", "MYID"))
    info = parse_info_text(_text(session.command(address, "CLUSTER", "INFO")))
    return node_id, info, int(session.command(address, "DBSIZE"))


def parse_info_text(text: str) -> dict[str, Any]:
    """Parse ``key:value`` lines (CLUSTER INFO); integers become ints."""
    info: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            info[key] = int(value) if value.lstrip("-").isdigit() else value
    return info


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
        plan = plan_rebalance(_masters_for_plan(topology, fixes), {node.node_id: 0.0})
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
            wanted = _text(session.command("%s:%d" % (options["node_host"], options["node_port"]), "CLUSTER", "MYID"))
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


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def cluster_report(session: ClusterSession, wait_seconds: float = 0) -> dict[str, Any]:
    """Everything redis_cluster_info returns: state, coverage, open slots, nodes, check findings."""
    topology = session.load_agreed(wait_seconds)
    cluster_info = parse_info_text(_text(session.command(session.entry_address, "CLUSTER", "INFO")))
    nodes = [_node_report(session, topology, node) for node in topology.nodes]
    findings = check_findings(topology)
    uncovered = topology.uncovered_slots()
    return {
        "changed": False,
        "cluster_state": cluster_info.get("cluster_state"),
        "cluster_info": cluster_info,
        "entry_node": topology.entry_id,
        "slots": {"covered": CLUSTER_SLOTS - len(uncovered), "uncovered": len(uncovered),
                  "uncovered_ranges": format_slot_ranges(uncovered), "all_covered": not uncovered},
        "open_slots": [{"slot": m.slot, "node_id": m.node_id, "address": topology.node(m.node_id).address,
                        "state": m.state, "peer_id": m.peer_id} for m in topology.open_slots()],
        "masters": len(topology.masters()),
        "replicas": len(topology.nodes) - len(topology.masters()),
        "keys": sum(n["keys"] or 0 for n in nodes if n["role"] == "master"),
        "nodes": nodes,
        "check": {"ok": not findings, "findings": findings},
    }


def _node_report(session: ClusterSession, topology: ClusterTopology, node: ClusterNode) -> dict[str, Any]:
    slots = topology.slots_of(node.node_id)
    report: dict[str, Any] = {
        "node_id": node.node_id, "address": node.address, "host": node.host, "port": node.port,
        "hostname": node.hostname or None, "role": "replica" if node.is_replica else "master",
        "master_id": node.master_id, "flags": sorted(node.flags - {"myself"}), "link_state": node.link_state,
        "config_epoch": node.config_epoch, "slots": len(slots), "slot_ranges": format_slot_ranges(slots),
        "replicas": [r.node_id for r in topology.replicas_of(node.node_id)],
        "reachable": node.node_id in topology.views, "keys": None, "used_memory": None, "used_memory_human": None,
    }
    if report["reachable"]:
        try:
            report["keys"] = int(session.command(node, "DBSIZE"))
            memory = session.command(node, "INFO", "memory")
            report["used_memory"] = int(memory.get("used_memory", 0))
            report["used_memory_human"] = memory.get("used_memory_human")
        except RedisClusterError as exc:
            report["reachable"] = False
            report["error"] = str(exc)
    return report
