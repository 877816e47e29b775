"""module_utils/redis_cache: key slots as the cluster specification computes them, and how a node's state is judged."""

from __future__ import annotations

import random
import string

import pytest
from redis.crc import key_slot as reference_slot

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cache import (
    crc16,
    key_slot,
    node_check,
    node_problems,
)


def test_crc16_check_value():
    # the CRC16-XMODEM check value of the cluster specification's reference implementation
    assert crc16(b"123456789") == 0x31C3


@pytest.mark.parametrize("key", ["foo", "story:42", "{user1000}.following", "{user1000}.followers", "a{}b",
                                 "{}x", "x{y", "x}y{z}", "{a}{b}", "é{ü}"])
def test_hash_tags_like_redis_py(key):
    assert key_slot(key) == reference_slot(key.encode("utf-8"))


def test_random_keys_like_redis_py():
    rng = random.Random(7)
    keys = ["".join(rng.choice(string.printable) for dummy_char in range(rng.randint(0, 30))) for dummy in range(2000)]
    assert [key_slot(key) for key in keys] == [reference_slot(key.encode("utf-8")) for key in keys]


def node(**over):
    result = {"address": "127.0.0.1:6379", "reachable": True, "error": None, "ping_ms": 0.4,
              "info": {"memory": {"used_memory": 1000, "maxmemory": 0, "used_memory_human": "1000B"},
                       "persistence": {"rdb_last_bgsave_status": "ok", "aof_last_write_status": "ok"},
                       "replication": {"role": "master"}},
              "summary": {"used_memory_human": "1000B", "connected_clients": 3, "role": "master"},
              "cluster_enabled": True,
              "cluster": {"node_id": "a" * 40, "role": "master", "master_id": None, "master_address": None,
                          "slots": 5461, "cluster_state": "ok", "known_nodes": 6, "failed_peers": []}}
    result.update(over)
    return result


def test_healthy_master_is_ok():
    check = node_check(dict(node(), problems=node_problems(node(), 90)), "redis1")
    assert (check["status"], check["reason"]) == ("ok", "")
    assert check["value"].startswith("master, 5461 slots; 1000B used; 3 clients")


def test_memory_near_maxmemory_warns():
    info = node()["info"]
    info["memory"] = {"used_memory": 95, "maxmemory": 100, "used_memory_human": "95B", "maxmemory_human": "100B",
                      "maxmemory_policy": "noeviction"}
    problems = node_problems(node(info=info), 90)
    assert problems == ["memory 95B of maxmemory 100B (over 90 %; policy noeviction)"]
    assert node_check(dict(node(info=info), problems=problems), "redis1")["status"] == "warn"


def test_failed_save_and_replica_link_down():
    info = node()["info"]
    info["persistence"] = {"rdb_last_bgsave_status": "err", "aof_last_write_status": "ok"}
    info["replication"] = {"role": "slave", "master_link_status": "down"}
    problems = node_problems(node(info=info), 90)
    assert problems == ["rdb_last_bgsave_status is err (check the disk and the server log)",
                        "its link to the master is down"]


def test_cluster_state_fail_fails():
    cluster = dict(node()["cluster"], cluster_state="fail")
    result = node(cluster=cluster)
    check = node_check(dict(result, problems=node_problems(result, 90)), "redis1")
    assert check["status"] == "fail" and "cluster_state:fail" in check["reason"]


def test_unreachable_node_fails_with_the_reason():
    result = {"address": "127.0.0.1:6379", "reachable": False, "error": "node 127.0.0.1:6379 is unreachable: ...",
              "problems": []}
    check = node_check(result, "redis3")
    assert (check["status"], check["value"], check["target"]) == ("fail", "not answering", "redis3")
    assert check["reason"].startswith("node 127.0.0.1:6379 is unreachable")
    assert check["runbook"] == "Incident Response / Cache Failure"


def test_standalone_node_says_so():
    result = node(cluster_enabled=False, cluster=None)
    check = node_check(dict(result, problems=[]), "app")
    assert check["value"].startswith("standalone (master)")
