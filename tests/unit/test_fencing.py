"""Fence on sight: which writable server is a former primary that came back (module_utils/fencing.py)."""

from __future__ import annotations

from ansible_collections.muejam.dbops.plugins.module_utils.fencing import judge_writable


def node(name, role, timeline, address=None):
    return {"name": name, "role": role, "timeline": timeline, "address": address}


AFTER_FAILOVER = [node("pg1", "primary", 1), node("pg2", "primary", 2), node("pg3", "standby", 2)]


def test_one_writable_server_is_normal():
    result = judge_writable([node("pg1", None, None), node("pg2", "primary", 2), node("pg3", "standby", 2)], "pg2")
    assert result == {"writable": ["pg2"], "keep": "pg2", "fence": [], "detached": [], "refused": False, "message": ""}


def test_no_writable_server_is_no_business_of_the_fence():
    result = judge_writable([node("pg1", None, None), node("pg2", "standby", 1)], "pg1")
    assert (result["keep"], result["fence"], result["refused"]) == (None, [], False)


def test_returned_old_primary_on_older_timeline_is_fenced():
    result = judge_writable(AFTER_FAILOVER, "pg2")
    assert (result["keep"], result["fence"], result["refused"]) == ("pg2", ["pg1"], False)
    assert "pg1 (timeline 1), pg2 (timeline 2)" in result["message"]
    assert "the application uses" in result["message"]
    assert "playbooks/rejoin.yml -e rejoin=pg1" in result["message"]


def test_application_named_by_address():
    nodes = [node("pg1", "primary", 1, "10.0.0.1"), node("pg2", "primary", 3, "10.0.0.2")]
    assert judge_writable(nodes, "10.0.0.2")["fence"] == ["pg1"]


def test_without_the_application_nothing_is_fenced():
    # A newer timeline alone proves nothing: a server recovered to a point in time promotes onto one too.
    result = judge_writable(AFTER_FAILOVER, None)
    assert (result["keep"], result["fence"], result["refused"]) == (None, [], True)
    assert "The application's primary is not known" in result["message"]


def test_two_stale_primaries_are_both_fenced():
    nodes = [node("pg1", "primary", 1), node("pg2", "primary", 2), node("pg3", "primary", 3)]
    assert judge_writable(nodes, "pg3")["fence"] == ["pg1", "pg2"]


def test_application_on_the_older_timeline_is_refused():
    result = judge_writable(AFTER_FAILOVER, "pg1")
    assert result["refused"] is True and result["fence"] == [] and result["keep"] is None
    assert "points at pg1 (timeline 1), on an older timeline than pg2 (timeline 2)" in result["message"]
    assert "Nothing was changed" in result["message"]


def test_application_on_a_standby_is_refused():
    result = judge_writable(AFTER_FAILOVER, "pg3")
    assert result["refused"] and "pg3, which does not accept writes" in result["message"]


def test_application_on_an_unknown_host_is_refused():
    result = judge_writable(AFTER_FAILOVER, "db.example.com")
    assert result["refused"] and "db.example.com, which is not one of them" in result["message"]


def test_same_timeline_cannot_be_told_apart():
    nodes = [node("pg2", "primary", 2), node("pg3", "primary", 2)]
    for app in ("pg2", "pg3"):
        result = judge_writable(nodes, app)
        assert result["refused"] and result["fence"] == []
        assert "pg2 and pg3 are on the same timeline" in result["message"]


def test_a_restored_server_is_detached_not_a_former_primary():
    restored = dict(node("pg3", "primary", 3), detached="restored from s3://b/postgresql/pg2 to 2026-12-02T10:00:00Z")
    result = judge_writable([node("pg1", "primary", 1), node("pg2", "primary", 2), restored], "pg2")
    assert (result["keep"], result["fence"], result["detached"], result["refused"]) == ("pg2", ["pg1"], ["pg3"], False)
    assert result["writable"] == ["pg1", "pg2"]


def test_the_application_on_a_detached_server_counts_it():
    restored = dict(node("pg3", "primary", 3), detached="restored")
    result = judge_writable([node("pg2", "primary", 2), restored], "pg3")
    assert (result["keep"], result["fence"]) == ("pg3", ["pg2"])
