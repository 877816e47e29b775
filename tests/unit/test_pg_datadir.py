"""Decisions of pg_datadir_info (module_utils/pg_datadir): keep, clone or refuse a replica's data directory."""

import os

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils import pg_datadir as d

CONTROLDATA = """pg_control version number:            1300
Catalog version number:               202307071
Database system identifier:           7441211716372488212
Database cluster state:               in archive recovery
pg_control last modified:             Sat 28 Nov 2026 11:00:00 AM UTC
"""
PRIMARY_ID = "7441211716372488212"


def make_cluster(path, version="15", standby=False):
    path.mkdir()
    (path / "PG_VERSION").write_text(version + "\n")
    (path / "global").mkdir()
    if standby:
        (path / "standby.signal").write_text("")


def facts_of(path, text=CONTROLDATA):
    return d.read_datadir_facts(str(path), lambda datadir, major: text)


def test_parse_controldata():
    parsed = d.parse_controldata(CONTROLDATA)
    assert parsed["Database system identifier"] == PRIMARY_ID
    assert parsed["Database cluster state"] == "in archive recovery"


def test_absent_and_empty_directories_are_cloned(tmp_path):
    assert d.classify(facts_of(tmp_path / "missing"), PRIMARY_ID, 15) == d.ABSENT
    (tmp_path / "empty").mkdir()
    state = d.classify(facts_of(tmp_path / "empty"), PRIMARY_ID, 15)
    assert state == d.EMPTY
    assert d.decide(state, False, "/x")[0] == d.CLONE


def test_standby_of_this_primary_is_kept(tmp_path):
    make_cluster(tmp_path / "main", standby=True)
    facts = facts_of(tmp_path / "main")
    assert facts["standby_signal"] is True and facts["system_identifier"] == PRIMARY_ID
    state = d.classify(facts, PRIMARY_ID, 15)
    assert state == d.REPLICA
    assert d.decide(state, False, "/x")[0] == d.KEEP


@pytest.mark.parametrize("setup, expected", [
    (lambda p: make_cluster(p, standby=True), d.OTHER_CLUSTER),
    (lambda p: make_cluster(p, version="13", standby=True), d.OTHER_VERSION),
    (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), d.NOT_A_CLUSTER),
])
def test_anything_else_is_refused_unless_forced(tmp_path, setup, expected):
    path = tmp_path / "main"
    setup(path)
    state = d.classify(facts_of(path), "1111", 15)
    assert state == expected
    verdict, reason = d.decide(state, False, str(path))
    assert verdict == d.REFUSE
    assert "pg_replica_force_reclone" in reason and str(path) in reason
    assert d.decide(state, True, str(path))[0] == d.CLONE


def test_promoted_copy_of_the_primary_is_refused(tmp_path):
    make_cluster(tmp_path / "main", standby=False)
    state = d.classify(facts_of(tmp_path / "main"), PRIMARY_ID, 15)
    assert state == d.SAME_CLUSTER_NOT_STANDBY
    assert d.decide(state, False, "/x")[0] == d.REFUSE


def test_running_postmaster_is_detected(tmp_path):
    make_cluster(tmp_path / "main", standby=True)
    (tmp_path / "main" / "postmaster.pid").write_text("%d\n/x\n" % os.getpid())
    assert facts_of(tmp_path / "main")["running"] is True
    (tmp_path / "main" / "postmaster.pid").write_text("999999999\n")
    assert facts_of(tmp_path / "main")["running"] is False


def test_installed_majors(tmp_path):
    for major in ("13", "15"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "postgres").write_text("")
    (tmp_path / "17").mkdir()
    assert d.installed_majors(str(tmp_path)) == [13, 15]
    assert d.installed_majors(str(tmp_path / "none")) == []


def test_write_atomically_replaces_content_with_the_given_mode(tmp_path):
    target = tmp_path / "pg_hba.conf"
    target.write_text("old\n")
    d.write_atomically(str(target), "new\n", 0o640)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o7777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["pg_hba.conf"]  # no temporary file left behind
