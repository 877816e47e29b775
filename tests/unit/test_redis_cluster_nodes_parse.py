"""Reading CLUSTER NODES, the topology and redis-cli's check findings, connection messages. No server."""

from __future__ import annotations

import pytest
import redis

from ansible_collections.muejam.dbops.plugins.module_utils.masking import (
    MASK,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    client_kwargs,
    explain_error,
    redis_argument_spec,
    refuse_unsafe_cluster,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_nodes import (
    pick_master,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_topology import (
    RedisClusterError,
    build_topology,
    check_findings,
    open_slot_parties,
    parse_cluster_nodes,
    parse_info_text,
    parse_node_address,
    resolve_node,
    resolve_weights,
)

M1 = "29d8a9ccba5f6a5afb83746c1570c038fa5dc628"
M2 = "a59b9bc529ae593385d7cea4b3cf9301209172cb"
M3 = "edb4105fe1531517fc36848247f5ae36f9e44289"
M4 = "eac68a6104f930c53a0ad200607954edc98e6b91"
R1 = "5b1c9e0a1b2c3d4e5f60718293a4b5c6d7e8f901"
R2 = "5b2d8f7e6d5c4b3a29180706f5e4d3c2b1a09f8e"

# As Redis 7.0 prints it from M1 (the entry node): M1 is migrating slot 7 to M4.
ENTRY_VIEW = f"""\
{M1} 172.20.0.2:7001@17001 myself,master - 0 1795864868000 1 connected 0-5460 [7->-{M4}]
{M2} 172.20.0.2:7002@17002 master - 0 1795864868966 2 connected 5461-10922
{R1} 172.20.0.2:7005@17005 slave {M1} 0 1795864868500 1 connected
{M3} 172.20.0.2:7003@17003 master - 0 1795864869468 3 connected 10923-16383
{M4} 172.20.0.2:7004@17004 master - 0 1795864868967 0 connected
{R2} 172.20.0.2:7006@17006 slave {M2} 0 1795864868600 2 connected
"""


def view_of(myself: str, importing: str = "") -> str:
    """The same cluster as another node prints it (the myself flag and open slots move with it)."""
    lines = []
    for line in ENTRY_VIEW.splitlines():
        fields = line.split()
        fields[2] = fields[2].replace("myself,", "")
        fields = [f for f in fields if not f.startswith("[")]
        if fields[0] == myself:
            fields[2] = "myself," + fields[2]
            if importing:
                fields.append(importing)
        lines.append(" ".join(fields))
    return "\n".join(lines) + "\n"


def topology(entry=ENTRY_VIEW, others=None, unreachable=None):
    others = {node: view_of(node) for node in (M2, M3, M4, R1, R2)} if others is None else others
    views = {M1: parse_cluster_nodes(entry)}
    views.update({node: parse_cluster_nodes(text) for node, text in others.items()})
    return build_topology(views[M1], views, unreachable or {})


def test_parse_lines_in_order_with_roles_slots_and_open_slots():
    nodes = parse_cluster_nodes(ENTRY_VIEW)
    assert [n.node_id for n in nodes] == [M1, M2, R1, M3, M4, R2]
    m1 = nodes[0]
    assert m1.myself and m1.is_master and not m1.is_replica
    assert (m1.host, m1.port, m1.bus_port, m1.hostname) == ("172.20.0.2", 7001, 17001, "")
    assert m1.address == "172.20.0.2:7001"
    assert m1.slots == frozenset(range(5461))
    assert m1.migrating == {7: M4} and m1.importing == {}
    assert m1.config_epoch == 1 and m1.link_state == "connected"
    replica = nodes[2]
    assert replica.is_replica and replica.master_id == M1 and replica.slots == frozenset()
    assert nodes[4].slots == frozenset() and nodes[4].master_id is None


def test_parse_importing_single_slots_and_several_ranges():
    [node] = parse_cluster_nodes(f"{M4} 10.0.0.4:7000@17000 myself,master - 0 0 7 connected 0 3-5 16383 [9-<-{M1}]\n")
    assert node.slots == frozenset({0, 3, 4, 5, 16383})
    assert node.importing == {9: M1}


def test_parse_failure_flags():
    text = (f"{M1} 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16383\n"
            f"{M2} 10.0.0.2:7000@17000 master,fail - 1795864868000 1795864860000 2 disconnected\n"
            f"{M3} 10.0.0.3:7000@17000 master,fail? - 1795864868000 0 3 connected\n"
            f"{M4} :0@0 master,noaddr - 0 0 0 disconnected\n"
            f"{R1} 10.0.0.9:7000@17000 handshake - 0 0 0 connected\n")
    nodes = {n.node_id: n for n in parse_cluster_nodes(text)}
    assert nodes[M2].failed and nodes[M2].link_state == "disconnected"
    assert "fail?" in nodes[M3].flags and not nodes[M3].failed
    assert nodes[M4].noaddr and nodes[M4].host == "" and nodes[M4].port == 0
    assert nodes[R1].handshake and not nodes[R1].is_master


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.1:7000@17000", ("10.0.0.1", 7000, 17000, "")),
    ("10.0.0.1:7000@17000,redis-1.example.com", ("10.0.0.1", 7000, 17000, "redis-1.example.com")),
    ("10.0.0.1:7000", ("10.0.0.1", 7000, None, "")),
    ("::1:7000@17000", ("::1", 7000, 17000, "")),
    (":7000@17000", ("", 7000, 17000, "")),
])
def test_parse_node_address_formats(text, expected):
    assert parse_node_address(text) == expected


@pytest.mark.parametrize("bad", [
    f"{M1} 10.0.0.1:7000@17000 myself,master -\n",
    f"{M1} 10.0.0.1@17000 myself,master - 0 0 1 connected\n",
    f"{M1} 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-16384\n",
    f"{M1} 10.0.0.1:7000@17000 myself,master - 0 0 1 connected [7-?-{M2}]\n",
])
def test_malformed_lines_raise(bad):
    with pytest.raises(ValueError):
        parse_cluster_nodes(bad)


def test_topology_puts_the_entry_node_first_and_leaves_handshakes_out():
    text = (f"{M2} 10.0.0.2:7000@17000 master - 0 0 2 connected 8192-16383\n"
            f"{R1} 10.0.0.9:7000@17000 handshake - 0 0 0 connected\n"
            f"{M1} 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n")
    nodes = parse_cluster_nodes(text)
    topo = build_topology(nodes, {M1: nodes}, {})
    assert [n.node_id for n in topo.nodes] == [M1, M2]
    assert topo.entry_id == M1


def test_topology_roles_slots_and_open_slots_from_each_nodes_own_view():
    topo = topology(others={M2: view_of(M2), M3: view_of(M3), M4: view_of(M4, f"[7-<-{M1}]"),
                            R1: view_of(R1), R2: view_of(R2)})
    assert [m.node_id for m in topo.masters()] == [M1, M2, M3, M4]
    assert [r.node_id for r in topo.replicas_of(M1)] == [R1]
    assert {m.node_id: len(topo.slots_of(m.node_id)) for m in topo.masters()} == {M1: 5461, M2: 5462, M3: 5461, M4: 0}
    assert {(o.slot, o.node_id, o.state, o.peer_id) for o in topo.open_slots()} == {
        (7, M1, "migrating", M4), (7, M4, "importing", M1)}
    assert open_slot_parties(topo) == {7: ([M1], {M1: M4}, {M4: M1})}
    assert topo.agrees()
    assert topo.uncovered_slots() == []


def test_check_findings_use_redis_cli_words():
    topo = topology(others={M2: view_of(M2), M3: view_of(M3), M4: view_of(M4, f"[6-<-{M1}]"),
                            R1: view_of(R1), R2: view_of(R2)})
    messages = [f["message"] for f in check_findings(topo)]
    assert messages == [
        "[WARNING] Node 172.20.0.2:7001 has slots in migrating state 7.",
        "[WARNING] Node 172.20.0.2:7004 has slots in importing state 6.",
        "[WARNING] The following slots are open: 6,7.",
    ]


def test_healthy_cluster_has_no_findings():
    healthy = ENTRY_VIEW.replace(f" [7->-{M4}]", "")
    assert check_findings(topology(entry=healthy)) == []


def test_unreachable_master_counts_as_uncovered_like_redis_cli():
    healthy = ENTRY_VIEW.replace(f" [7->-{M4}]", "")
    others = {node: view_of(node) for node in (M2, M4, R1, R2)}
    topo = topology(entry=healthy, others=others, unreachable={M3: "connection refused"})
    codes = [f["code"] for f in check_findings(topo)]
    assert codes == ["node_unreachable", "slots_uncovered"]
    assert len(topo.uncovered_slots()) == 5461
    assert [m.node_id for m in topo.failed_masters()] == [M3]
    assert M3 not in [m.node_id for m in topo.usable_masters()]


def test_failed_master_without_slots_is_not_a_failed_master_to_refuse():
    text = ENTRY_VIEW.replace(f" [7->-{M4}]", "").replace(
        f"{M4} 172.20.0.2:7004@17004 master -", f"{M4} 172.20.0.2:7004@17004 master,fail -")
    topo = topology(entry=text, others={node: view_of(node) for node in (M2, M3, R1, R2)})
    assert topo.failed_masters() == []
    assert M4 not in [m.node_id for m in topo.usable_masters()]
    assert [f["code"] for f in check_findings(topo)] == ["node_failed"]


def test_disagreeing_nodes_are_found():
    healthy = ENTRY_VIEW.replace(f" [7->-{M4}]", "")
    stale = view_of(M2).replace("10923-16383", "10923-16382").replace(
        f"{M4} 172.20.0.2:7004@17004 master - 0 1795864868967 0 connected",
        f"{M4} 172.20.0.2:7004@17004 master - 0 1795864868967 0 connected 16383")
    others = {node: view_of(node) for node in (M3, M4, R1, R2)}
    others[M2] = stale
    topo = topology(entry=healthy, others=others)
    assert not topo.agrees()
    assert [f["message"] for f in check_findings(topo)] == ["[ERR] Nodes don't agree about configuration!"]


def test_a_node_that_does_not_know_a_new_member_yet_is_found():
    """M2 has not heard of the empty new master M4: slots agree, but migrating to M4 would fail on M2."""
    healthy = ENTRY_VIEW.replace(f" [7->-{M4}]", "")
    unaware = "".join(line + "\n" for line in view_of(M2).splitlines() if not line.startswith(M4))
    others = {node: view_of(node) for node in (M3, M4, R1, R2)}
    others[M2] = unaware
    topo = topology(entry=healthy, others=others)
    assert topo.agrees()
    assert topo.strangers() == {M2: [M4]}
    with pytest.raises(RedisClusterError, match="not every node knows every member yet"):
        refuse_unsafe_cluster(topo, allow_open_slots=False)
    others[M2] = view_of(M2)
    assert topology(entry=healthy, others=others).strangers() == {}


def test_weights_by_id_prefix_and_address():
    topo = topology()
    assert resolve_weights(topo, {M1: 0, "a59b": 2.5, "172.20.0.2:7003": "1"}) == {M1: 0.0, M2: 2.5, M3: 1.0}


@pytest.mark.parametrize("weights, message", [
    ({"ffff": 1}, "weights: node 'ffff' is not a master of this cluster. Known masters: 172.20.0.2:7001"),
    ({"10.9.9.9:7000": 1}, "is not a master of this cluster"),
    ({"172.20.0.2:7005": 1}, "is a replica"),
    ({"e": 1}, "is ambiguous"),
    ({M1: -1}, "must be between 0 and 1000000"),
    ({M1: "heavy"}, "must be a number"),
    ({M1: 1, "29d8": 2}, "is given twice"),
])
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(RedisClusterError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolve_weights(topology(), weights)


def test_a_drained_master_that_became_a_replica_is_already_at_weight_zero():
    # Redis 7 makes an emptied master a replica; a re-run of the same drain has nothing to do.
    assert resolve_weights(topology(), {"172.20.0.2:7005": 0, M4: 0, M2: 1}) == {M4: 0.0, M2: 1.0}
    with pytest.raises(RedisClusterError, match="is a replica"):
        resolve_weights(topology(), {"172.20.0.2:7005": 0.5})


def test_resolve_node_any_role():
    assert resolve_node(topology(), "172.20.0.2:7005", masters_only=False).node_id == R1


def test_parse_info_text():
    info = parse_info_text("cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_my_epoch:-1\r\n")
    assert info == {"cluster_state": "ok", "cluster_slots_assigned": 16384, "cluster_my_epoch": -1}


PARAMS = {"login_host": "10.0.0.1", "login_port": 7000, "login_user": None, "login_password": "s3cret-pw",
          "tls": False, "validate_certs": True, "ca_certs": None, "client_cert": None, "client_key": None,
          "socket_timeout": 5.0}


@pytest.mark.parametrize("exc, expected", [
    (redis.exceptions.AuthenticationError("WRONGPASS invalid username-password pair or user is disabled."),
     "authentication as the default user failed on node 10.0.0.1:7000 (WRONGPASS)"),
    (redis.exceptions.AuthenticationError("invalid password"), "(WRONGPASS): check login_user and login_password"),
    (redis.exceptions.ResponseError("NOAUTH Authentication required."), "requires authentication"),
    (redis.exceptions.ConnectionError("Error 111 connecting to 10.0.0.1:7000. Connection refused."),
     "node 10.0.0.1:7000 is unreachable"),
    (redis.exceptions.TimeoutError("Timeout connecting to server"), "is unreachable"),
    (redis.exceptions.ResponseError("ERR This instance has cluster support disabled"), "is not a cluster node"),
    (redis.exceptions.ResponseError("ERR AUTH <password> called without any password configured for the "
                                    "default user. Are you sure your configuration is correct?"),
     "has no password for the default user"),
])
def test_error_messages_say_what_to_check(exc, expected):
    assert expected in explain_error(exc, "node 10.0.0.1:7000", PARAMS)


def test_error_messages_never_carry_the_password():
    exc = redis.exceptions.ResponseError("ERR something echoed s3cret-pw back")
    message = explain_error(exc, "node 10.0.0.1:7000", {**PARAMS, "login_user": "ops"})
    assert "s3cret-pw" not in message and MASK in message


def test_client_kwargs_pin_resp2_and_no_retries():
    kwargs = client_kwargs({**PARAMS, "login_user": "ops"}, "10.0.0.2", 7001, socket_timeout=65)
    assert (kwargs["host"], kwargs["port"], kwargs["username"], kwargs["password"]) == (
        "10.0.0.2", 7001, "ops", "s3cret-pw")
    assert kwargs["socket_timeout"] == 65 and kwargs["socket_connect_timeout"] == 5.0
    assert kwargs["decode_responses"] is False
    assert kwargs.get("protocol", 2) == 2
    if "retry" in kwargs:
        assert kwargs["retry"].get_retries() == 0
    redis.Redis(**kwargs)  # accepted by the installed redis-py


def test_argument_spec_hides_the_password():
    spec = redis_argument_spec()
    assert spec["login_password"]["no_log"] is True
    assert spec["login_port"]["default"] == 6379


def test_pick_master_prefers_another_host_over_fewer_replicas():
    text = (f"{M1} 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n"
            f"{M2} 10.0.0.2:7000@17000 master - 0 0 2 connected 8192-16383\n"
            f"{R1} 10.0.0.3:7000@17000 slave {M2} 0 0 2 connected\n")
    nodes = parse_cluster_nodes(text)
    topo = build_topology(nodes, {M1: nodes, M2: nodes, R1: nodes}, {})
    assert pick_master(topo, {"10.0.0.9"}).node_id == M1
    assert pick_master(topo, {"10.0.0.1"}).node_id == M2
