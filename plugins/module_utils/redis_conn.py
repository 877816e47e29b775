# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connecting to a Redis Cluster: one argument spec for every Redis module, a session that
reaches every node, and error messages that say what to check and never carry the password.

Every redis-py call goes through ``execute_command`` with the command spelled out, so the code
works with redis-py 3.5 (Debian bullseye) as well as with current releases.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.masking import scrub
from ansible_collections.muejam.dbops.plugins.module_utils.redis_cluster_plan import (
    format_slot_ranges,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_topology import (
    FIX_HINT,
    ClusterNode,
    ClusterTopology,
    RedisClusterError,
    build_topology,
    parse_cluster_nodes,
    parse_info_text,
)

REDIS_IMPORT_ERROR: str | None = None
try:
    import redis

    HAS_REDIS = True
except ImportError:
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = traceback.format_exc()

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


def reply_text(reply: Any) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


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
        reply = reply_text(self.command(node, "CLUSTER", "NODES"))
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


def refuse_unsafe_cluster(topology: ClusterTopology, allow_open_slots: bool, doing: str = "move slots",
                          done: str = "moved") -> None:
    """Raise before anything changes when the cluster is not in a state to do it safely (move slots, flush)."""
    failed = topology.failed_masters()
    if failed:
        described = "; ".join(_why_failed(topology, node) for node in failed)
        raise RedisClusterError("refusing to %s: %d master(s) are failed or unreachable: %s. "
                                "Bring them back or fail over to a replica first; nothing was %s."
                                % (doing, len(failed), described, done))
    uncovered = topology.uncovered_slots()
    if uncovered:
        raise RedisClusterError("refusing to %s: %d slots are not covered by any master (%s). "
                                "Assign them first (CLUSTER ADDSLOTS, or %s); nothing was %s."
                                % (doing, len(uncovered), ",".join(format_slot_ranges(uncovered)), FIX_HINT, done))
    if not topology.agrees():
        raise RedisClusterError("refusing to %s: the nodes do not agree about the slot configuration "
                                "(check with redis-cli --cluster check); nothing was %s." % (doing, done))
    strangers = topology.strangers()
    if strangers:
        described = "; ".join("%s does not know %s" % (topology.describe(node_id), ", ".join(m[:8] for m in missing))
                              for node_id, missing in sorted(strangers.items()))
        raise RedisClusterError("refusing to %s: not every node knows every member yet (%s). Wait for "
                                "the cluster bus to spread them (check that the nodes reach each other on the client "
                                "port + 10000); nothing was %s." % (doing, described, done))
    open_slots = sorted({mark.slot for mark in topology.open_slots()})
    if open_slots and not allow_open_slots:
        raise RedisClusterError("refusing to %s: %d slots are open (migrating/importing): %s. "
                                "Set fix_open_slots=true to settle them first; nothing was %s."
                                % (doing, len(open_slots), ",".join(format_slot_ranges(open_slots)), done))


def wait_until_serving(session: ClusterSession, topology: ClusterTopology, wait_seconds: float) -> None:
    """Wait until every master says ``cluster_state:ok``, or raise before anything moves.

    A master that has just started or joined keeps its state at fail for up to the node timeout
    (at most 5 s) before it serves; RESTORE-ASKING on it would fail with CLUSTERDOWN midway.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        down = [m for m in topology.usable_masters()
                if parse_info_text(reply_text(session.command(m, "CLUSTER", "INFO"))).get("cluster_state") != "ok"]
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
