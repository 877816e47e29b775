"""redis_cache_flush, redis_cache_warm and redis_node_info on real clusters (the lab container's redis-servers)."""

from __future__ import annotations

import json

from redis.crc import key_slot

PASSWORD = "it-Cache-pw-4417"


def test_flush_empties_every_node_and_check_mode_flushes_nothing(make_cluster, run):
    cluster = make_cluster(masters=3, replicas=1, password=PASSWORD)
    data = cluster.load_keys(3000)
    checked = run("redis_cache_flush", cluster.args(), check_mode=True)
    assert not checked.failed, checked.msg
    assert checked.result["changed"] and checked.result["flushed"] == []
    assert checked.result["keys_before_total"] == len(data) == cluster.total_keys()
    assert sorted(checked.result["masters"]) == sorted(cluster.addr(p) for p in cluster.all_ports()
                                                       if "master" in cluster.myself(p)["flags"])
    flushed = run("redis_cache_flush", cluster.args())
    assert not flushed.failed, flushed.msg
    result = flushed.result
    assert result["keys_before_total"] == len(data) and result["keys_after_total"] == 0
    assert sorted(result["flushed"]) == sorted(result["masters"]) and len(result["masters"]) == 3
    # replicas too: every node of the cluster, read independently of the module
    assert all(cluster.client(p).dbsize() == 0 for p in cluster.all_ports())
    assert set(result["keys_after"].values()) == {0} and len(result["keys_after"]) == 6
    assert PASSWORD not in flushed.output


def test_flush_refuses_while_a_master_is_down(make_cluster, run, redis_lab):
    cluster = make_cluster(masters=3, password=PASSWORD)
    data = cluster.load_keys(1000)
    dead = cluster.ports[2]
    redis_lab.kill(dead)
    redis_lab.wait(lambda: "fail" in next(n for n in cluster.nodes() if n["addr"] == cluster.addr(dead))["flags"],
                   "the killed master to be flagged fail")
    alive_keys = sum(cluster.client(p).dbsize() for p in cluster.ports[:2])
    refused = run("redis_cache_flush", cluster.args())
    assert refused.failed
    assert "refusing to flush" in refused.msg and cluster.addr(dead) in refused.msg
    assert "nothing was flushed" in refused.msg
    assert sum(cluster.client(p).dbsize() for p in cluster.ports[:2]) == alive_keys > 0
    assert alive_keys < len(data)


def test_warm_sets_keys_on_their_masters_with_ttl_and_leaves_existing(make_cluster, run):
    cluster = make_cluster(masters=3, password=PASSWORD)
    items = [{"key": "story:%d" % i, "value": json.dumps({"id": i, "title": "t%d" % i})} for i in range(1, 301)]
    items[0]["ttl"] = 30
    cluster.write({b"story:2": b"fresher"})
    warmed = run("redis_cache_warm", cluster.args(items=items, ttl=600, rate=0, batch_size=50))
    assert not warmed.failed, warmed.msg
    result = warmed.result
    assert (result["keys"], result["warmed"], result["existing"], result["refused"]) == (300, 299, 1, 0)
    assert result["batches"] == 6 and result["changed"]
    values = cluster.read([item["key"].encode() for item in items])
    assert values[b"story:2"] == b"fresher"  # NX: the application's newer value stays
    assert all(values[item["key"].encode()] == item["value"].encode() for item in items[2:])
    owners = cluster.slot_owners()
    for item in items[:1] + items[2:6]:  # story:2 is the test's own key, without expiry
        client = cluster.client(owners[key_slot(item["key"].encode())])
        ttl = client.ttl(item["key"])
        assert (0 < ttl <= 30) if item.get("ttl") else (590 < ttl <= 600)
    again = run("redis_cache_warm", cluster.args(items=items, ttl=600, rate=0))
    assert (again.result["warmed"], again.result["existing"], again.result["changed"]) == (0, 300, False)


def test_warm_is_rate_limited_and_check_mode_sets_nothing(make_cluster, run):
    cluster = make_cluster(masters=3)
    items = [{"key": "k:%d" % i, "value": "v%d" % i} for i in range(200)]
    checked = run("redis_cache_warm", cluster.args(items=items), check_mode=True)
    assert checked.result["warmed"] == 200 and cluster.total_keys() == 0
    limited = run("redis_cache_warm", cluster.args(items=items, rate=100, batch_size=20))
    assert limited.result["warmed"] == 200
    # 200 keys at 100 a second: the last batch may not start before 1.8 s
    assert limited.result["seconds"] >= 1.75
    assert cluster.total_keys() == 200


def test_warm_refuses_a_key_without_expiry(make_cluster, run):
    cluster = make_cluster(masters=3)
    refused = run("redis_cache_warm", cluster.args(items=[{"key": "a", "value": "b"}], ttl=0))
    assert refused.failed and "ttl must be a positive number" in refused.msg
    assert cluster.total_keys() == 0


def test_node_info_reads_a_member_a_dead_node_and_a_standalone_server(make_cluster, spare_node, run, redis_lab):
    cluster = make_cluster(masters=3, replicas=1, password=PASSWORD)
    replica = next(p for p in cluster.all_ports() if "slave" in cluster.myself(p)["flags"])
    redis_lab.wait(lambda: cluster.client(replica).info("replication")["master_link_status"] == "up",
                   "the replica's first sync")
    info = run("redis_node_info", cluster.args(port=replica, report_target="r1"))
    assert not info.failed, info.msg
    result = info.result
    assert result["reachable"] and result["cluster_enabled"] and result["ping_ms"] > 0
    assert result["cluster"]["role"] == "replica" and result["cluster"]["node_id"] == cluster.node_id(replica)
    assert result["cluster"]["master_address"] == cluster.addr(cluster.port_of(cluster.myself(replica)["master"]))
    assert result["cluster"]["cluster_state"] == "ok" and result["cluster"]["known_nodes"] == 6
    assert set(result["info"]) >= {"memory", "clients", "stats", "persistence", "server", "replication"}
    assert result["summary"]["role"] == "slave" and result["summary"]["master_link_status"] == "up"
    assert result["checks"][0]["status"] == "ok" and result["checks"][0]["value"].startswith("replica of ")

    standalone = spare_node(cluster=False)
    alone = run("redis_node_info", cluster.args(port=standalone, login_password=None))
    assert alone.result["reachable"] and alone.result["cluster_enabled"] is False and alone.result["cluster"] is None
    assert alone.result["checks"][0]["value"].startswith("standalone")

    redis_lab.kill(replica)
    down = run("redis_node_info", cluster.args(port=replica))
    assert not down.failed, "an unreachable node is a result, not a failure"
    assert down.result["reachable"] is False and "unreachable" in down.result["error"]
    assert down.result["checks"][0]["status"] == "fail"

    wrong = run("redis_node_info", cluster.args(login_password="not-the-password"))
    assert wrong.result["reachable"] is False and "WRONGPASS" in wrong.result["error"]
    assert "not-the-password" not in wrong.output
