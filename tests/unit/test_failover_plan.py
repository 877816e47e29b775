"""The failover planner: choice of the new primary and every refusal."""

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.failover import (
    FailoverRefused,
    lsn_to_int,
    plan_failover,
)


def node(name, role="standby", reachable=True, received=None, replayed=None, current=None):
    return {"name": name, "role": role, "reachable": reachable, "received_lsn": received,
            "replayed_lsn": replayed, "current_lsn": current}


DOWN = node("pg1", role=None, reachable=False)


def test_lsn_parsing():
    assert lsn_to_int("0/0") == 0
    assert lsn_to_int("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert lsn_to_int(None) is None


def test_auto_picks_most_advanced_standby():
    plan = plan_failover([DOWN, node("pg2", received="0/3000000"), node("pg3", received="0/5000000")],
                         "pg1", max_data_loss_bytes=0, accept_unreachable_primary=True)
    assert plan["new_primary"] == "pg3"
    assert plan["others"] == ["pg2"]
    assert plan["lost_bytes_max"] == 0
    assert plan["old_primary_reachable"] is False
    assert any("NOT fenced" in n for n in plan["notes"])


def test_named_candidate_behind_is_refused_with_the_byte_count():
    nodes = [DOWN, node("pg2", received="0/3000000"), node("pg3", received="0/5000000")]
    with pytest.raises(FailoverRefused, match=r"promoting pg2 may lose 33554432 bytes of WAL \(limit 1024\)"):
        plan_failover(nodes, "pg1", candidate="pg2", max_data_loss_bytes=1024, accept_unreachable_primary=True)
    plan = plan_failover(nodes, "pg1", candidate="pg2", max_data_loss_bytes=1024, force=True,
                         accept_unreachable_primary=True)
    assert plan["new_primary"] == "pg2"
    assert plan["lost_bytes_max"] == 0x2000000


def test_reachable_old_primary_position_counts_for_loss():
    nodes = [node("pg1", role="primary", current="0/4000000"), node("pg2", received="0/3000000")]
    with pytest.raises(FailoverRefused, match="may lose 16777216 bytes"):
        plan_failover(nodes, "pg1")
    assert plan_failover(nodes, "pg1", max_data_loss_bytes=16777216)["new_primary"] == "pg2"


def test_unreachable_old_primary_needs_explicit_acceptance():
    with pytest.raises(FailoverRefused, match="accept_unreachable_primary=true"):
        plan_failover([DOWN, node("pg2", received="0/1")], "pg1")


def test_old_primary_host_up_with_postgres_down_can_be_fenced():
    plan = plan_failover([node("pg1", role=None), node("pg2", received="0/1")], "pg1")
    assert plan["old_primary_reachable"] is True
    assert plan["new_primary"] == "pg2"


def test_no_reachable_standby():
    with pytest.raises(FailoverRefused, match="no standby is reachable"):
        plan_failover([DOWN, node("pg2", reachable=False, role=None)], "pg1", accept_unreachable_primary=True)


def test_split_brain_is_refused():
    nodes = [node("pg1", role="primary", current="0/5"), node("pg2", role="primary", current="0/6"),
             node("pg3")]
    with pytest.raises(FailoverRefused, match="split brain: pg1, pg2 all accept writes"):
        plan_failover(nodes, "pg1")
    with pytest.raises(FailoverRefused, match="split brain"):
        plan_failover([DOWN, node("pg2", role="primary"), node("pg3", role="primary")], "pg1",
                      accept_unreachable_primary=True)


def test_rerun_after_success_reconciles_only():
    nodes = [node("pg1", role=None, reachable=True), node("pg2", role="primary", current="0/9"),
             node("pg3", received="0/9")]
    plan = plan_failover(nodes, "pg1", candidate="pg2")
    assert plan["already_promoted"] is True
    assert plan["new_primary"] == "pg2"
    assert plan_failover(nodes, "pg1")["new_primary"] == "pg2"


def test_rerun_naming_another_candidate_is_refused():
    nodes = [DOWN, node("pg2", role="primary"), node("pg3")]
    with pytest.raises(FailoverRefused, match="pg2 is already the primary; naming pg3"):
        plan_failover(nodes, "pg1", candidate="pg3")


@pytest.mark.parametrize("candidate, message", [
    ("pg9", "not a PostgreSQL host"),
    ("pg1", "is the old primary itself"),
    ("pg3", "not a reachable standby"),
])
def test_bad_candidates(candidate, message):
    nodes = [node("pg1", role="primary", current="0/1"), node("pg2", received="0/1"),
             node("pg3", reachable=False, role=None)]
    with pytest.raises(FailoverRefused, match=message) as refused:
        plan_failover(nodes, "pg1", candidate=candidate)
    assert str(refused.value).endswith("valid candidates (reachable standbys): pg2")


def test_old_primary_missing_from_inventory():
    with pytest.raises(FailoverRefused, match="not among the PostgreSQL hosts"):
        plan_failover([node("pg2")], "pg1")


def test_tie_prefers_inventory_order():
    plan = plan_failover([DOWN, node("pg3", received="0/5"), node("pg2", received="0/5")], "pg1",
                         accept_unreachable_primary=True)
    assert plan["new_primary"] == "pg3"


def follower(name, upstream="pg2", status="streaming", timeline=2, reachable=True):
    return {**node(name, received="0/5000000", reachable=reachable), "upstream_host": upstream,
            "receiver_status": status, "timeline": timeline}


PROMOTED = {**node("pg2", role="primary", current="0/5000000"), "timeline": 2}


def test_second_run_with_every_replica_following_is_settled():
    plan = plan_failover([DOWN, PROMOTED, follower("pg3")], "pg1", accept_unreachable_primary=True)
    assert plan["already_promoted"] is True
    assert plan["following"] == ["pg3"]
    assert plan["to_repoint"] == []
    assert plan["settled"] is True


@pytest.mark.parametrize("pg3", [
    follower("pg3", upstream="pg1"),             # still configured for the old primary
    follower("pg3", status="waiting"),           # not streaming
    follower("pg3", timeline=1),                 # streaming, but on the old timeline
    node("pg3", received="0/5000000"),           # no upstream reported at all
])
def test_a_replica_not_following_the_new_primary_is_repointed(pg3):
    plan = plan_failover([DOWN, PROMOTED, pg3], "pg1", accept_unreachable_primary=True)
    assert plan["following"] == []
    assert plan["to_repoint"] == ["pg3"]
    assert plan["settled"] is False


def test_unreachable_replica_does_not_keep_the_run_unsettled_and_is_not_listed_as_following():
    plan = plan_failover([DOWN, PROMOTED, follower("pg3"), follower("pg4", reachable=False, status=None)],
                         "pg1", accept_unreachable_primary=True)
    assert plan["following"] == ["pg3"]
    assert plan["to_repoint"] == []
    assert plan["settled"] is True


def test_first_run_is_never_settled_even_when_replicas_look_like_followers():
    # Before the promotion nothing follows the candidate; a standby's own upstream fields do not count.
    plan = plan_failover([DOWN, node("pg2", received="0/5000000"), follower("pg3")], "pg1",
                         accept_unreachable_primary=True)
    assert plan["already_promoted"] is False
    assert plan["following"] == []
    assert plan["settled"] is False
