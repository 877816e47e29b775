"""Decisions of pg_datadir_info (module_utils/pg_datadir): keep, clone or refuse a replica's data directory."""

import os
import threading

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils import files as f
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
    f.write_atomically(str(target), "new\n", 0o640)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o7777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["pg_hba.conf"]  # no temporary file left behind


def test_candidate_datadirs_cover_installed_versions_and_leftover_directories(tmp_path):
    (tmp_path / "13" / "main").mkdir(parents=True)  # a leftover of a removed PostgreSQL 13
    (tmp_path / "16" / "other").mkdir(parents=True)  # another cluster name: not a candidate
    assert d.candidate_datadirs(str(tmp_path), "main", [15]) == [
        (13, str(tmp_path / "13" / "main")), (15, str(tmp_path / "15" / "main"))]
    assert d.candidate_datadirs(str(tmp_path / "none"), "main", []) == []


def candidates_of(tmp_path, *majors, explicit=None):
    """What pg_datadir_info returns on the replica, as the primary's side receives it."""
    found = [(None, explicit)] if explicit else [(m, str(tmp_path / str(m) / "main")) for m in majors]
    return [dict(facts_of(path), path=path, major=major) for major, path in found]


def test_judge_replica_on_the_primary_side(tmp_path):
    judge = d.judge_replica
    # Nothing installed and no directory: cloned (the role installs the primary's version first).
    assert judge({"installed_majors": [], "candidates": []}, 15, PRIMARY_ID, False, "pg2", "pg1")[0] == d.CLONE
    # Only another version installed: refused, naming both hosts and both versions.
    verdict, reason = judge({"installed_majors": [13], "candidates": candidates_of(tmp_path, 13)},
                            15, PRIMARY_ID, False, "pg3", "pg1")
    assert verdict == d.REFUSE
    assert reason.startswith("Version mismatch: the primary pg1 runs PostgreSQL 15 "
                             "but pg3 has PostgreSQL 13 installed.")
    # The primary's version installed, its directory empty: cloned; a standby of this primary: kept.
    (tmp_path / "15" / "main").mkdir(parents=True)
    info = {"installed_majors": [13, 15], "candidates": candidates_of(tmp_path, 13, 15)}
    assert judge(info, 15, PRIMARY_ID, False, "pg2", "pg1")[0] == d.CLONE
    (tmp_path / "15" / "main").rmdir()
    make_cluster(tmp_path / "15" / "main", standby=True)
    info = {"installed_majors": [15], "candidates": candidates_of(tmp_path, 15)}
    assert judge(info, 15, PRIMARY_ID, False, "pg2", "pg1")[0] == d.KEEP
    # The same directory judged against another primary: refused unless forced, with the path in the reason.
    verdict, reason = judge(info, 15, "1111", False, "pg2", "pg1")
    assert verdict == d.REFUSE and str(tmp_path / "15" / "main") in reason and "different PostgreSQL cluster" in reason
    assert judge(info, 15, "1111", True, "pg2", "pg1")[0] == d.CLONE


def test_judge_replica_uses_the_directory_the_user_named(tmp_path):
    (tmp_path / "15").mkdir()
    make_cluster(tmp_path / "15" / "main", standby=False)  # the default one: a promoted copy, would be refused
    (tmp_path / "custom").mkdir()
    info = {"installed_majors": [15], "candidates": candidates_of(tmp_path, explicit=str(tmp_path / "custom"))}
    verdict, reason = d.judge_replica(info, 15, PRIMARY_ID, False, "pg2", "pg1")
    expected = "%s is empty: the replica will be cloned from the primary" % (tmp_path / "custom")
    assert (verdict, reason) == (d.CLONE, expected)


def _tree(root):
    (root / "base" / "1").mkdir(parents=True)
    (root / "base" / "1" / "1259").write_bytes(b"x" * 8192)
    (root / "PG_VERSION").write_text("17\n")
    (root / "postgresql.conf").write_text("# sample\n")
    wal = root.parent / "wal_elsewhere"
    wal.mkdir()
    (wal / "000000010000000000000001").write_bytes(b"w" * 1024)
    (root / "pg_wal").symlink_to(wal)


def test_flush_tree_fsyncs_every_file_and_directory_following_pg_wal(tmp_path, monkeypatch):
    root = tmp_path / "main"
    _tree(root)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink("/proc/self/fd/%d" % fd)), real_fsync(fd)))
    assert f.flush_tree(str(root)) == 4
    assert {str(root / "base" / "1" / "1259"), str(root / "PG_VERSION"), str(root / "postgresql.conf"),
            str(tmp_path / "wal_elsewhere" / "000000010000000000000001")} <= set(synced)
    # directories after their files, the data directory's parent last
    assert synced[-1] == str(tmp_path)
    assert str(tmp_path / "wal_elsewhere") in synced and str(root / "base" / "1") in synced


def test_flush_tree_skips_a_file_moved_away_meanwhile(tmp_path, monkeypatch):
    root = tmp_path / "main"
    _tree(root)
    real_open = os.open

    def moved(path, flags, *args):
        if str(path).endswith("postgresql.conf"):
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", moved)
    assert f.flush_tree(str(root)) == 3


def test_flush_tree_raises_what_the_disk_says(tmp_path, monkeypatch):
    root = tmp_path / "main"
    _tree(root)

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        f.flush_tree(str(root))


def test_flush_tree_passes_over_a_pipe_instead_of_waiting_on_it(tmp_path):
    root = tmp_path / "main"
    _tree(root)
    os.mkfifo(root / "a_pipe")
    result = []
    worker = threading.Thread(target=lambda: result.append(f.flush_tree(str(root))), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "flush_tree waited on a pipe"
    assert result == [4]


def test_make_dirs_owned_creates_missing_parents_with_the_owner_and_leaves_existing_ones(tmp_path):
    owner = (os.getuid(), os.getgid())
    existing = tmp_path / "lib"
    existing.mkdir(mode=0o711)
    target = existing / "15" / "main"
    assert f.make_dirs_owned(str(target), 0o700, owner) == [str(existing / "15"), str(target)]
    assert (os.stat(target).st_mode & 0o777, os.stat(existing / "15").st_mode & 0o777) == (0o700, 0o755)
    assert (os.stat(existing / "15").st_uid, os.stat(existing / "15").st_gid) == owner
    assert os.stat(existing).st_mode & 0o777 == 0o711
    assert f.make_dirs_owned(str(target), 0o700, owner) == []
