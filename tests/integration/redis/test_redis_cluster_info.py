"""redis_cluster_info on real clusters: its check must find what redis-cli --cluster check finds."""

from __future__ import annotations

import re

PASSWORD = "it-Info-pw-3310"


def cli_findings(output: str) -> list[str]:
    """The [ERR] and [WARNING] lines of redis-cli --cluster check."""
    return [line.strip() for line in output.splitlines() if line.startswith(("[ERR]", "[WARNING]"))]


def normalized(lines: list[str]) -> list:
    """redis-cli lists the open slots in hash-table order: compare that line as a set of slots."""
    result = []
    for line in lines:
        listed = re.search(r"The following slots are open: ([\d,]+)\.", line)
        result.append(frozenset(int(s) for s in listed.group(1).split(",")) if listed else line)
    return result


def assert_same_findings(ours: list[dict], reference: list[str]) -> None:
    """Our findings in redis-cli's words, leaving out the node findings redis-cli does not make."""
    mine = [f["message"] for f in ours if f["code"] not in ("node_unreachable", "node_failed")]
    assert normalized(mine) == normalized(reference)


def test_healthy_cluster(make_cluster, run):
    cluster = make_cluster(masters=3, replicas=1)
    data = cluster.load_keys(5000)
    info = run("redis_cluster_info", cluster.args())
    assert not info.failed, info.msg
    result = info.result
    rc, out = cluster.check()
    assert rc == 0 and cli_findings(out) == []
    assert result["check"] == {"ok": True, "findings": []}
    assert result["changed"] is False
    assert result["cluster_state"] == "ok" and result["cluster_info"]["cluster_slots_assigned"] == 16384
    assert result["slots"] == {"covered": 16384, "uncovered": 0, "uncovered_ranges": [], "all_covered": True}
    assert result["open_slots"] == []
    assert (result["masters"], result["replicas"]) == (3, 3)
    assert result["keys"] == len(data)
    nodes = result["nodes"]
    assert nodes[0]["node_id"] == result["entry_node"] == cluster.node_id(cluster.ports[0])
    masters = [n for n in nodes if n["role"] == "master"]
    assert sorted(n["slots"] for n in masters) == [5461, 5461, 5462]
    assert sum(n["keys"] for n in masters) == len(data)
    by_id = {n["node_id"]: n for n in nodes}
    for master in masters:
        [replica_id] = master["replicas"]
        assert by_id[replica_id]["role"] == "replica" and by_id[replica_id]["master_id"] == master["node_id"]
        assert cluster.client(int(master["address"].rsplit(":", 1)[1])).dbsize() == master["keys"]
    for node in nodes:
        assert node["reachable"] and node["used_memory"] > 0 and node["link_state"] == "connected"
        assert "myself" not in node["flags"]


def test_open_slots_are_found_like_redis_cli(make_cluster, run):
    cluster = make_cluster(masters=3)
    cluster.load_keys(2000)
    cluster.write_in_slot(7, 5, "seven")
    target = cluster.add_empty_master()
    cluster.open_by_hand(7, target, move_keys=1)
    cluster.open_by_hand(6000, target, migrating=False)
    cluster.open_by_hand(12000, target, importing=False)
    rc, out = cluster.check()
    assert rc != 0
    info = run("redis_cluster_info", cluster.args())
    assert not info.failed, info.msg
    result = info.result
    assert_same_findings(result["check"]["findings"], cli_findings(out))
    assert result["check"]["ok"] is False
    assert {(o["slot"], o["state"], o["address"]) for o in result["open_slots"]} == {
        (7, "migrating", cluster.addr(cluster.owner_port(7))), (7, "importing", cluster.addr(target)),
        (6000, "importing", cluster.addr(target)), (12000, "migrating", cluster.addr(cluster.owner_port(12000)))}
    before = cluster.fingerprint()
    assert run("redis_cluster_info", cluster.args()).result["open_slots"] == result["open_slots"]
    assert cluster.fingerprint() == before  # reading changes nothing


def test_uncovered_slots_are_found_like_redis_cli(make_cluster, run):
    cluster = make_cluster(masters=3)
    for port in cluster.all_ports():
        cluster.client(port).execute_command("CLUSTER", "DELSLOTSRANGE", 100, 199)
    rc, out = cluster.check()
    info = run("redis_cluster_info", cluster.args())
    assert not info.failed, info.msg
    assert rc != 0
    assert_same_findings(info.result["check"]["findings"], cli_findings(out))
    assert [f["message"] for f in info.result["check"]["findings"]] == [
        "[ERR] Not all 16384 slots are covered by nodes."]
    assert info.result["slots"]["uncovered_ranges"] == ["100-199"]
    assert info.result["slots"]["all_covered"] is False


def test_failed_master_is_reported_and_its_slots_uncovered_like_redis_cli(make_cluster, run, redis_lab):
    cluster = make_cluster(masters=3)
    dead = cluster.ports[1]
    redis_lab.kill(dead)
    redis_lab.wait(lambda: "fail" in next(n for n in cluster.nodes() if n["addr"] == cluster.addr(dead))["flags"],
                   "the killed master to be flagged fail")
    rc, out = cluster.check()
    info = run("redis_cluster_info", cluster.args())
    assert not info.failed, info.msg
    result = info.result
    assert rc != 0
    assert_same_findings(result["check"]["findings"], cli_findings(out))
    codes = [f["code"] for f in result["check"]["findings"]]
    assert codes == ["node_unreachable", "slots_uncovered"]
    assert cluster.addr(dead) in result["check"]["findings"][0]["message"]
    [gone] = [n for n in result["nodes"] if n["address"] == cluster.addr(dead)]
    assert gone["reachable"] is False and "fail" in gone["flags"] and gone["keys"] is None
    assert result["cluster_state"] == "fail"
    assert result["slots"]["uncovered"] == gone["slots"] == 5462


def test_connection_errors_say_what_to_check(make_cluster, spare_node, run):
    cluster = make_cluster(masters=3, password=PASSWORD)
    wrong = run("redis_cluster_info", cluster.args(login_password="Wrong-Password-77"))
    assert wrong.failed
    assert "authentication as the default user failed on node %s (WRONGPASS)" % cluster.addr(cluster.ports[0]) \
        in wrong.msg
    assert "Wrong-Password-77" not in wrong.output and PASSWORD not in wrong.output

    missing = run("redis_cluster_info", {**cluster.args(), "login_password": None})
    assert missing.failed and "requires authentication: set login_password" in missing.msg

    plain = spare_node(cluster=False)
    not_cluster = run("redis_cluster_info", cluster.args(port=plain, login_password=None))
    assert not_cluster.failed
    assert "node %s is not a cluster node (cluster-enabled is no" % cluster.addr(plain) in not_cluster.msg

    nobody = run("redis_cluster_info", cluster.args(port=6999))
    assert nobody.failed and "node %s is unreachable" % cluster.addr(6999) in nobody.msg
