"""redis_cluster_rebalance on real clusters, checked against redis-cli --cluster (the reference)."""

from __future__ import annotations

import re
import signal
import time

import pytest

PASSWORD = "it-Redis-pw-4417"
ACL_USER, ACL_PASSWORD = "dbops-ops", "it-ACL-pw-9021"
KEYS = 20000


def redis_cli_plan(cluster, *options: str) -> list[tuple[int, str, str]]:
    """The moves redis-cli --cluster rebalance --cluster-simulate plans (it moves nothing)."""
    proc = cluster.cli("--cluster", "rebalance", cluster.addr(cluster.ports[0]), "--cluster-simulate", *options)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [(int(n), src, dst) for n, src, dst in re.findall(r"Moving (\d+) slots from (\S+) to (\S+)", proc.stdout)]


def our_plan(result: dict) -> list[tuple[int, str, str]]:
    return [(m["slots"], m["source_address"], m["target_address"]) for m in result["plan"]]


def test_use_empty_masters_gives_4096_each_and_keeps_every_key(make_cluster, run):
    cluster = make_cluster(masters=3, replicas=1)
    data = cluster.load_keys(KEYS)
    # Right after add-node: the module must wait until the new master serves (CLUSTERDOWN otherwise).
    new_master = cluster.add_empty_master(wait_serving=False)
    reference = redis_cli_plan(cluster, "--cluster-use-empty-masters")

    planned = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True), check_mode=True)
    assert not planned.failed, planned.msg
    assert our_plan(planned.result) == reference
    assert sum(move[0] for move in reference) == 4096

    done = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert not done.failed, done.msg
    result = done.result
    assert result["changed"] is True
    assert our_plan(result) == reference
    assert result["slots_moved"] == 4096
    assert [(m["slots"], m["source_address"], m["target_address"]) for m in result["moved"]] == reference
    assert result["keys_moved"] == sum(m["keys"] for m in result["moved"]) > 0
    masters = cluster.own_slots()
    assert len(masters) == 4 and set(masters.values()) == {4096}
    assert cluster.addr(new_master) in masters
    assert cluster.client(new_master).dbsize() == result["keys_moved"]
    assert cluster.open_slots() == {}
    assert cluster.total_keys() == KEYS
    cluster.assert_keys(data)
    cluster.wait_agreed()
    assert {d["slots"] for d in result["distribution_after"]} == {4096}

    again = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert not again.failed, again.msg
    assert again.result["changed"] is False
    assert again.result["plan"] == [] and again.result["rebalance_needed"] is False


@pytest.mark.parametrize("weights", [
    {0: 1.8},            # single-precision arithmetic matters here (6143 slots, not 6144)
    {0: 0},              # drain
    {0: 3, 1: 2},
])
def test_plan_matches_redis_cli_for_weights(make_cluster, run, weights):
    cluster = make_cluster(masters=4)
    ids = {i: cluster.node_id(cluster.ports[i]) for i in weights}
    cli_weights = ["%s=%s" % (ids[i][:8], w) for i, w in weights.items()]
    reference = redis_cli_plan(cluster, "--cluster-weight", *cli_weights)
    assert reference, "redis-cli found nothing to move"
    planned = run("redis_cluster_rebalance", cluster.args(weights={ids[i][:8]: w for i, w in weights.items()}),
                  check_mode=True)
    assert not planned.failed, planned.msg
    assert our_plan(planned.result) == reference


def test_check_mode_moves_nothing(make_cluster, run):
    cluster = make_cluster(masters=3)
    cluster.load_keys(5000)
    cluster.add_empty_master()
    before = cluster.fingerprint()
    sizes = {p: cluster.client(p).dbsize() for p in cluster.all_ports()}
    planned = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True), check_mode=True)
    assert not planned.failed, planned.msg
    assert planned.result["changed"] is True
    assert sum(m["slots"] for m in planned.result["plan"]) == 4096
    assert planned.result["moved"] == [] and planned.result["slots_moved"] == 0
    assert cluster.fingerprint() == before
    assert {p: cluster.client(p).dbsize() for p in cluster.all_ports()} == sizes


def test_weight_zero_drains_a_master(make_cluster, run):
    cluster = make_cluster(masters=3)
    data = cluster.load_keys(KEYS)
    drained = cluster.addr(cluster.ports[1])
    done = run("redis_cluster_rebalance", cluster.args(weights={drained: 0}))
    assert not done.failed, done.msg
    assert done.result["slots_moved"] == 5462
    others = [cluster.addr(cluster.ports[0]), cluster.addr(cluster.ports[2])]
    assert {a: n for a, n in cluster.own_slots().items() if a in others} == dict.fromkeys(others, 8192)
    me = cluster.myself(cluster.ports[1])
    assert me["slots"] == set()
    # Redis 7 (cluster-allow-replica-migration yes, the default) turns a master that gave away its
    # last slot into a replica of the master that took it; otherwise it stays an empty master.
    if "slave" in me["flags"]:
        assert cluster.port_of(me["master"]) in (cluster.ports[0], cluster.ports[2])
    else:
        assert cluster.client(cluster.ports[1]).dbsize() == 0
    cluster.assert_keys(data)
    cluster.wait_agreed()
    again = run("redis_cluster_rebalance", cluster.args())
    assert not again.failed, again.msg
    assert again.result["changed"] is False
    # The same task again, weights and all (a playbook run twice): already drained, nothing to do,
    # whether the node stayed an empty master or became a replica.
    before = cluster.fingerprint()
    same = run("redis_cluster_rebalance", cluster.args(weights={drained: 0}))
    assert not same.failed, same.msg
    assert same.result["changed"] is False and same.result["slots_moved"] == 0
    assert cluster.fingerprint() == before


def test_resumes_migrations_left_half_done(make_cluster, run):
    """Every state an interrupted mover can leave, made by hand, then settled by the next run."""
    cluster = make_cluster(masters=3)
    data = cluster.load_keys(KEYS)
    target = cluster.add_empty_master()
    half = 100            # keys migrated, more left on the source: both sides open
    importing_only = 5000  # IMPORTING set on the target only
    migrating_only = 12000  # MIGRATING set on the source only
    node_on_target = 200   # all keys moved, SETSLOT NODE sent to the target only
    for slot, prefix in ((half, "h"), (importing_only, "i"), (migrating_only, "m"), (node_on_target, "n")):
        data.update(cluster.write_in_slot(slot, 40, prefix))
    cluster.open_by_hand(half, target, move_keys=15)
    cluster.open_by_hand(importing_only, target, migrating=False)
    cluster.open_by_hand(migrating_only, target, importing=False)
    cluster.open_by_hand(node_on_target, target, move_keys=1000)
    cluster.client(target).execute_command("CLUSTER", "SETSLOT", node_on_target, "NODE", cluster.node_id(target))
    assert cluster.client(target).execute_command("CLUSTER", "COUNTKEYSINSLOT", half) == 15
    left_on_source = cluster.client(cluster.owner_port(half)).execute_command("CLUSTER", "COUNTKEYSINSLOT", half)
    assert left_on_source >= 25
    cluster.assert_keys(data)  # readable while open (ASK redirections)

    refused = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True, fix_open_slots=False))
    assert refused.failed
    assert "slots are open (migrating/importing)" in refused.msg and "fix_open_slots=true" in refused.msg
    assert "nothing was moved" in refused.msg

    before = cluster.fingerprint()
    planned = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True), check_mode=True)
    assert not planned.failed, planned.msg
    assert cluster.fingerprint() == before
    actions = {f["slot"]: f["action"] for f in planned.result["open_slots_fixed"]}
    assert actions == {half: "finish", importing_only: "close", migrating_only: "close", node_on_target: "finish"}

    done = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert not done.failed, done.msg
    fixed = {f["slot"]: f for f in done.result["open_slots_fixed"]}
    assert fixed[half]["keys"] == left_on_source
    assert cluster.open_slots() == {}
    assert sorted(cluster.own_slots().values()) == [4096] * 4
    assert cluster.total_keys() == len(data)
    cluster.assert_keys(data)
    cluster.wait_agreed()


def test_killed_run_resumes_and_loses_no_key(make_cluster, run, start):
    cluster = make_cluster(masters=3)
    data = cluster.load_keys(KEYS)
    cluster.add_empty_master()
    first_move = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True), check_mode=True).result["plan"][0]
    first_slot = int(first_move["slot_ranges"][0].split("-")[0])
    heavy = first_slot + 3  # in the first batch of the first move
    data.update(cluster.write_in_slot(heavy, 3000, "heavy"))

    proc = start("redis_cluster_rebalance", cluster.args(use_empty_masters=True, pipeline=1))
    deadline = time.monotonic() + 60
    while not cluster.open_slots():
        assert proc.poll() is None, "the module ended before a slot was open"
        assert time.monotonic() < deadline, "no slot was opened"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left_open = cluster.open_slots()
    assert left_open, "the kill left no slot open"
    cluster.assert_keys(data)

    done = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert not done.failed, done.msg
    assert done.result["open_slots_fixed"], "the second run settled no open slot"
    assert {f["action"] for f in done.result["open_slots_fixed"]} == {"finish"}
    assert cluster.open_slots() == {}
    assert sorted(cluster.own_slots().values()) == [4096] * 4
    assert cluster.total_keys() == len(data)
    cluster.assert_keys(data)
    cluster.wait_agreed()


def test_failed_migrate_leaves_the_slot_open_and_a_rerun_completes(make_cluster, run):
    """MIGRATE fails midway: a key of the slot already exists on the target with another value."""
    cluster = make_cluster(masters=3)
    data = cluster.load_keys(KEYS)
    target = cluster.add_empty_master()
    plan = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True), check_mode=True).result["plan"]
    slot = int(plan[0]["slot_ranges"][0].split("-")[0]) + 70  # in the second batch of the first move
    data.update(cluster.write_in_slot(slot, 30, "clash"))
    clash_key = next(k for k in data if k.startswith(b"{clash"))
    # A stale copy of one key on the target, as a crashed operator's manual migration could leave.
    target_client = cluster.client(target)
    source_id = cluster.node_id(cluster.owner_port(slot))
    target_client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    target_client.pipeline(transaction=False).execute_command("ASKING").set(clash_key, b"stale").execute()
    target_client.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")

    failed = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert failed.failed
    assert "slot %d: 1 key(s) exist on both" % slot in failed.msg
    assert repr(clash_key.decode()) in failed.msg and "replace=true" in failed.msg
    assert failed.result["moved"] == []  # it failed within the first pair
    assert slot in {s for opened in cluster.open_slots().values() for s in opened}
    cluster.assert_keys(data)

    again = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert again.failed and "exist on both" in again.msg
    cluster.assert_keys(data)

    done = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True, replace=True))
    assert not done.failed, done.msg
    assert cluster.open_slots() == {}
    assert sorted(cluster.own_slots().values()) == [4096] * 4
    assert cluster.total_keys() == len(data)
    cluster.assert_keys(data)  # the source's value won
    cluster.wait_agreed()


def test_unknown_node_in_weights_is_refused_and_nothing_moves(make_cluster, run):
    cluster = make_cluster(masters=3, replicas=1)
    cluster.add_empty_master()
    before = cluster.fingerprint()
    replica = next(p for p in cluster.ports if "slave" in cluster.myself(p)["flags"])
    for weights, message in (({"ffffffff": 1}, "weights: node 'ffffffff' is not a master of this cluster"),
                             ({"10.255.0.1:7000": 0}, "weights: node '10.255.0.1:7000' is not a master"),
                             ({cluster.addr(replica): 2}, "is a replica")):
        refused = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True, weights=weights))
        assert refused.failed, weights
        assert message in refused.msg
    assert cluster.fingerprint() == before


def test_failed_master_is_refused_and_nothing_moves(make_cluster, run, redis_lab):
    cluster = make_cluster(masters=3)
    cluster.add_empty_master()
    dead = cluster.ports[2]
    redis_lab.kill(dead)
    alive = [p for p in cluster.all_ports() if p != dead]
    redis_lab.wait(lambda: all("fail" in next(n for n in cluster.nodes(p) if n["addr"] == cluster.addr(dead))["flags"]
                               for p in alive), "the others to flag the killed master as failed")
    before = [(p, sorted(cluster.myself(p)["slots"])) for p in alive]
    refused = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True, convergence_timeout=2))
    assert refused.failed
    assert "refusing to move slots: 1 master(s) are failed or unreachable: %s" % cluster.addr(dead) in refused.msg
    assert "nothing was moved" in refused.msg
    assert [(p, sorted(cluster.myself(p)["slots"])) for p in alive] == before


def test_uncovered_slots_are_refused_and_nothing_moves(make_cluster, run):
    cluster = make_cluster(masters=3)
    cluster.add_empty_master()
    for port in cluster.all_ports():
        cluster.client(port).execute_command("CLUSTER", "DELSLOTSRANGE", 100, 199)
    rc, out = cluster.check()
    assert rc != 0 and "[ERR] Not all 16384 slots are covered by nodes." in out
    before = cluster.fingerprint()
    refused = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True, convergence_timeout=2))
    assert refused.failed
    assert "100 slots are not covered by any master (100-199)" in refused.msg
    assert cluster.fingerprint() == before


def test_threshold_zero_is_refused(make_cluster, run):
    cluster = make_cluster(masters=3)
    cluster.add_empty_master()
    before = cluster.fingerprint()
    refused = run("redis_cluster_rebalance", cluster.args(threshold=0, use_empty_masters=True))
    assert refused.failed and "threshold must be above 0" in refused.msg
    assert cluster.fingerprint() == before


def test_password_cluster(make_cluster, run):
    cluster = make_cluster(masters=3, replicas=1, password=PASSWORD)
    data = cluster.load_keys(KEYS)
    cluster.add_empty_master()
    done = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert not done.failed, done.msg
    assert sorted(cluster.own_slots().values()) == [4096] * 4
    cluster.assert_keys(data)
    assert PASSWORD not in done.output

    cluster.add_empty_master()
    before = cluster.fingerprint()
    wrong = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True, login_password="not-the-password"))
    assert wrong.failed
    assert ("authentication as the default user failed on node %s (WRONGPASS): check login_user and "
            "login_password" % cluster.addr(cluster.ports[0])) in wrong.msg
    assert "not-the-password" not in wrong.output and PASSWORD not in wrong.output
    missing = run("redis_cluster_rebalance", {**cluster.args(use_empty_masters=True), "login_password": None})
    assert missing.failed and "requires authentication: set login_password" in missing.msg
    assert cluster.fingerprint() == before


def test_acl_user_cluster(make_cluster, run):
    cluster = make_cluster(masters=3, replicas=1, password=ACL_PASSWORD, user=ACL_USER)
    data = cluster.load_keys(KEYS)
    cluster.add_empty_master()
    done = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True))
    assert not done.failed, done.msg
    assert sorted(cluster.own_slots().values()) == [4096] * 4
    cluster.assert_keys(data)
    assert ACL_PASSWORD not in done.output

    cluster.add_empty_master()
    before = cluster.fingerprint()
    wrong = run("redis_cluster_rebalance", cluster.args(use_empty_masters=True, login_password="wrong-acl-pw"))
    assert wrong.failed
    assert "authentication as user '%s' failed" % ACL_USER in wrong.msg and "(WRONGPASS)" in wrong.msg
    assert "wrong-acl-pw" not in wrong.output and ACL_PASSWORD not in wrong.output
    assert cluster.fingerprint() == before
