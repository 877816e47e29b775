"""redis_cluster_node on real clusters: add masters and replicas, remove nodes."""

from __future__ import annotations

import redis


def known_nodes(cluster, port: int) -> int:
    info = cluster.client(port).execute_command("CLUSTER", "INFO").decode()
    return int(info.split("cluster_known_nodes:")[1].split()[0])


def seen_as(cluster, port: int, by: int) -> dict | None:
    """How node ``port`` appears in the CLUSTER NODES of node ``by`` (None: unknown there)."""
    return next((n for n in cluster.nodes(by) if n["addr"] == cluster.addr(port) and "handshake" not in n["flags"]),
                None)


def replication(cluster, port: int) -> str:
    return cluster.client(port).execute_command("INFO", "replication").get("master_link_status", "")


def test_add_master_is_idempotent(make_cluster, spare_node, run, redis_lab):
    cluster = make_cluster(masters=3)
    new = spare_node()
    args = cluster.args(node_host=cluster.ip, node_port=new)

    planned = run("redis_cluster_node", args, check_mode=True)
    assert not planned.failed, planned.msg
    assert planned.result["changed"] is True and planned.result["actions"] == ["meet"]
    assert known_nodes(cluster, new) == 1 and seen_as(cluster, new, cluster.ports[0]) is None

    added = run("redis_cluster_node", args)
    assert not added.failed, added.msg
    assert added.result["changed"] is True and added.result["actions"] == ["meet"]
    assert added.result["node_id"] == cluster.node_id(new)
    redis_lab.wait(lambda: all(seen_as(cluster, new, p) for p in cluster.ports), "every node to know the new one")
    for port in cluster.ports:
        node = seen_as(cluster, new, port)
        assert "master" in node["flags"] and node["slots"] == set()
    cluster.extra.append(new)
    cluster.wait_agreed()

    again = run("redis_cluster_node", args)
    assert not again.failed, again.msg
    assert again.result["changed"] is False and again.result["actions"] == []


def test_add_replica_of_a_given_master_and_move_it(make_cluster, spare_node, run, redis_lab):
    cluster = make_cluster(masters=3)
    data = cluster.load_keys(3000)
    new = spare_node()
    master = cluster.ports[1]
    args = cluster.args(node_host=cluster.ip, node_port=new, role="replica", master=cluster.addr(master))

    added = run("redis_cluster_node", args)
    assert not added.failed, added.msg
    assert added.result["changed"] is True and added.result["actions"] == ["meet", "replicate"]
    assert added.result["master_id"] == cluster.node_id(master)
    redis_lab.wait(lambda: (seen_as(cluster, new, cluster.ports[0]) or {}).get("master") == cluster.node_id(master),
                   "the entry node to see the replica")
    redis_lab.wait(lambda: replication(cluster, new) == "up", "the replication link")
    replica = cluster.client(new)
    redis_lab.wait(lambda: replica.dbsize() == cluster.client(master).dbsize(), "the replica to sync")
    key = next(k for k in data if cluster.owner_port(redis.crc.key_slot(k)) == master)
    assert replica.pipeline(transaction=False).execute_command("READONLY").get(key).execute()[1] == data[key]
    cluster.extra.append(new)

    again = run("redis_cluster_node", args)
    assert not again.failed, again.msg
    assert again.result["changed"] is False

    other = cluster.ports[2]
    moved = run("redis_cluster_node", {**args, "master": cluster.node_id(other)[:10]})
    assert not moved.failed, moved.msg
    assert moved.result["changed"] is True and moved.result["actions"] == ["replicate"]
    redis_lab.wait(lambda: cluster.myself(new)["master"] == cluster.node_id(other), "the replica to follow")
    kept = run("redis_cluster_node", {**args, "master": None})
    assert not kept.failed and kept.result["changed"] is False  # a replica keeps its master when none is given
    cluster.wait_agreed()


def test_new_replica_goes_to_the_master_with_fewest_replicas(make_cluster, spare_node, run, redis_lab):
    cluster = make_cluster(masters=3)
    for master in cluster.ports[:2]:
        port = spare_node()
        done = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=port, role="replica",
                                                      master=cluster.addr(master)))
        assert not done.failed, done.msg
        cluster.extra.append(port)
    last = spare_node()
    done = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=last, role="replica"))
    assert not done.failed, done.msg
    assert done.result["master_id"] == cluster.node_id(cluster.ports[2])
    redis_lab.wait(lambda: cluster.myself(last)["master"] == cluster.node_id(cluster.ports[2]), "the replica")


def test_nodes_that_cannot_join_are_refused(make_cluster, spare_node, run):
    cluster = make_cluster(masters=3)
    other = make_cluster(masters=3)
    busy = spare_node()
    cluster.client(busy).execute_command("DEBUG", "POPULATE", 1)  # a key, without serving a slot
    refused = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=busy))
    assert refused.failed and "node %s holds 1 keys; only an empty node can join" % cluster.addr(busy) in refused.msg

    before = cluster.fingerprint()
    foreign = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=other.ports[0]))
    assert foreign.failed and "already knows" in foreign.msg and "belongs to another cluster" in foreign.msg
    assert cluster.fingerprint() == before

    holder = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=cluster.ports[1],
                                                    role="replica", master=cluster.addr(cluster.ports[0])))
    assert holder.failed and "is a master holding 5462 slots" in holder.msg
    assert cluster.fingerprint() == before

    wrong_master = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=busy, role="replica",
                                                          master="10.255.255.1:7000"))
    assert wrong_master.failed and "master '10.255.255.1:7000' is not a master of this cluster" in wrong_master.msg


def test_remove_master_drains_repoints_and_forgets(make_cluster, run, redis_lab):
    cluster = make_cluster(masters=4, replicas=1)
    data = cluster.load_keys(20000)
    leaving = next(p for p in cluster.ports[1:] if "master" in cluster.myself(p)["flags"])
    leaving_id = cluster.node_id(leaving)
    slots = len(cluster.myself(leaving)["slots"])
    [replica] = [p for p in cluster.ports if cluster.myself(p)["master"] == leaving_id]
    args = cluster.args(node_host=cluster.ip, node_port=leaving, state="absent")

    before = cluster.fingerprint()
    planned = run("redis_cluster_node", args, check_mode=True)
    assert not planned.failed, planned.msg
    assert planned.result["changed"] is True and planned.result["actions"] == ["drain", "forget", "reset"]
    assert sum(m["slots"] for m in planned.result["plan"]) == slots
    assert {m["source"] for m in planned.result["plan"]} == {leaving_id}
    assert [r["replica"] for r in planned.result["replicas_moved"]] == [cluster.node_id(replica)]
    assert cluster.fingerprint() == before

    removed = run("redis_cluster_node", args)
    assert not removed.failed, removed.msg
    assert sum(m["slots"] for m in removed.result["moved"]) == slots
    cluster.retire(leaving)
    for port in cluster.all_ports():
        assert all(n["id"] != leaving_id for n in cluster.nodes(port)), "node %d still knows it" % port
    assert known_nodes(cluster, leaving) == 1  # reset: it knows only itself
    new_master = cluster.myself(replica)["master"]
    assert new_master not in (None, leaving_id)
    redis_lab.wait(lambda: replication(cluster, replica) == "up", "the moved replica's link")
    assert sorted(cluster.own_slots().values()) == [5461, 5461, 5462]
    assert cluster.total_keys() == len(data)
    cluster.assert_keys(data)
    cluster.wait_agreed()

    again = run("redis_cluster_node", args)
    assert not again.failed, again.msg
    assert again.result["changed"] is False and again.result["node_id"] is None


def test_remove_dead_replica_by_id(make_cluster, run, redis_lab):
    cluster = make_cluster(masters=3, replicas=1)
    dead = next(p for p in cluster.ports if "slave" in cluster.myself(p)["flags"])
    dead_id = cluster.node_id(dead)
    redis_lab.kill(dead)
    cluster.retire(dead)
    args = cluster.args(node_id=dead_id[:12], state="absent")
    planned = run("redis_cluster_node", args, check_mode=True)
    assert not planned.failed, planned.msg
    assert planned.result["actions"] == ["forget"] and planned.result["plan"] == []
    assert all(any(n["id"] == dead_id for n in cluster.nodes(p)) for p in cluster.ports)

    removed = run("redis_cluster_node", args)
    assert not removed.failed, removed.msg
    assert removed.result["node_id"] == dead_id
    assert sorted(removed.result["forgotten_by"]) == sorted(cluster.node_id(p) for p in cluster.ports)
    for port in cluster.ports:
        assert all(n["id"] != dead_id for n in cluster.nodes(port))
    cluster.wait_agreed()
    assert run("redis_cluster_node", args).result["changed"] is False


def test_remove_refuses_a_failed_master_with_slots(make_cluster, run, redis_lab):
    cluster = make_cluster(masters=3)
    dead = cluster.ports[2]
    redis_lab.kill(dead)
    redis_lab.wait(lambda: "fail" in next(n for n in cluster.nodes() if n["addr"] == cluster.addr(dead))["flags"],
                   "the killed master to be flagged fail")
    alive = cluster.ports[:2]
    before = [(p, sorted(cluster.myself(p)["slots"]), len(cluster.nodes(p))) for p in alive]
    refused = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=dead, state="absent"))
    assert refused.failed
    assert "1 master(s) are failed or unreachable: %s" % cluster.addr(dead) in refused.msg
    assert "nothing was moved" in refused.msg
    assert [(p, sorted(cluster.myself(p)["slots"]), len(cluster.nodes(p))) for p in alive] == before


def test_removing_an_unknown_node_changes_nothing(make_cluster, spare_node, run):
    cluster = make_cluster(masters=3)
    stranger = spare_node()
    result = run("redis_cluster_node", cluster.args(node_host=cluster.ip, node_port=stranger, state="absent"))
    assert not result.failed, result.msg
    assert result.result["changed"] is False and result.result["node_id"] is None
