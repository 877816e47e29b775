"""Bad input to the playbooks is refused before anything changes, and PITR's preconditions (issue 20).

One lab on bookworm: pg1 (primary with sample data, WAL archiving and a base backup in the lab's S3),
pg2 (a streaming replica that playbooks/add_replica.yml cloned, so through pg_standby), pg3 (PostgreSQL
installed, no cluster) and s3. Every refusal compares the hosts' state before and after the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbops_it import PG_VERSION, ROOT, SUITES, PgLab, lab, playbook

PREFIX = "dbops-it-playbooks"
SUITE = "bookworm"
pytestmark = pytest.mark.skipif(SUITE not in SUITES, reason="the playbook refusals run on bookworm")


@pytest.fixture(scope="module")
def plab(request) -> PgLab:
    addresses = json.loads(lab("up", "--suite", SUITE, "--prefix", PREFIX, "--hosts", "pg1,pg2,pg3,s3"))
    if os.environ.get("DBOPS_KEEP_LAB") != "1":
        request.addfinalizer(lambda: lab("down", "--prefix", PREFIX))
    playbook("lab/provision.yml", PREFIX, "--limit", "pg1,s3")
    playbook("playbooks/add_replica.yml", PREFIX, "--limit", "pg1,pg2", "-e", "replica=pg2")
    playbook("playbooks/backup.yml", PREFIX, "--limit", "pg1", "-e", "backup_now=true")
    return PgLab(SUITE, PG_VERSION[SUITE], PREFIX, addresses)


def run(path: str, *extra: str, limit: str = "pg1,pg2,pg3,s3") -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), path,
                           "-e", "dbops_lab_prefix=" + PREFIX, "--limit", limit, *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def sh(host: str, script: str) -> str:
    return subprocess.run(["docker", "exec", "%s-%s" % (PREFIX, host), "sh", "-c", script],
                          capture_output=True, text=True, check=True).stdout


# What a run could change on a host: the collection's files and PostgreSQL's configuration (names, owners,
# modes, sizes, times, contents), the data directories (names, owners, modes: the server itself writes
# inside them), the installed packages, the services and, when it runs, the server (role, start time, slots).
SNAPSHOT = r"""
find /etc/muejam-dbops /usr/local/lib/muejam-dbops /etc/postgresql /etc/redis \
     -maxdepth 3 -printf '%p %u:%g %m %s %T@\n' 2>/dev/null | sort
find /var/lib/postgresql -maxdepth 2 -printf '%p %u:%g %m\n' | sort
find /etc/muejam-dbops /etc/postgresql -type f -exec md5sum {} + 2>/dev/null | sort
dpkg-query -W -f '${Package} ${Version} ${Status}\n' | md5sum
systemctl list-units --all --no-legend --plain 'postgresql*' 'redis*' 'dbops*' | awk '{print $1, $3, $4}'
su postgres -c "psql -XAtc 'SELECT pg_is_in_recovery(), pg_postmaster_start_time(),
  (SELECT array_agg(slot_name ORDER BY slot_name) FROM pg_replication_slots)'" 2>&1 | sed 's/^psql: .*/not running/'
"""


def snapshot(plab: PgLab, host: str) -> str:
    return sh(host, SNAPSHOT)


def snapshots(plab: PgLab) -> dict:
    return {host: snapshot(plab, host) for host in ("pg1", "pg2", "pg3")}


@pytest.mark.parametrize("path, extra, message", [
    ("playbooks/add_replica.yml", ["-e", "replica=nosuchhost"], "-e replica=nosuchhost matches no host of the"),
    ("playbooks/rejoin.yml", ["-e", "rejoin=nosuchhost"], "-e rejoin=nosuchhost matches no host"),
    ("playbooks/rejoin.yml", [], "Name the hosts: -e rejoin=<host>"),
    ("playbooks/restore.yml", ["-e", "restore_host=nosuchhost", "-e", "source_prefix=postgresql/pg1"],
     "-e restore_host=nosuchhost matches no host"),
    ("playbooks/backup.yml", ["-e", "backup_hosts=pg9"], "-e backup_hosts=pg9 matches no host"),
    ("playbooks/scale_redis_cluster.yml", ["-e", "add_masters=nosuchhost"], "-e add_masters=nosuchhost matches no"),
    ("playbooks/add_replica.yml", ["-e", "replica=s3"], "-e replica=s3 selects s3, not in the inventory group"),
])
def test_a_host_name_that_matches_nothing_fails_and_changes_nothing(plab, path, extra, message):
    before = snapshots(plab)
    done = run(path, *extra)
    assert done.returncode != 0, done.stdout[-3000:]
    assert message in " ".join(done.stdout.split()), done.stdout[-3000:]
    assert "changed=0" in done.stdout and "changed=1" not in done.stdout
    # Only the check ran: no later play started.
    assert done.stdout.count("PLAY [") == 1, done.stdout[-3000:]
    assert snapshots(plab) == before


def test_a_postgres_host_is_not_made_a_redis_master(plab):
    before = snapshots(plab)
    done = run("playbooks/scale_redis_cluster.yml", "-e", "add_masters=pg2")
    assert done.returncode != 0
    out = " ".join(done.stdout.split())
    assert "-e add_masters=pg2 selects pg2, not in the inventory group redis" in out, out[-2000:]
    assert "Nothing was changed" in out
    assert snapshots(plab) == before


def test_failover_lists_the_valid_candidates(plab):
    before = snapshots(plab)
    done = run("playbooks/failover.yml", "-e", "failover_candidate=redis1", limit="pg1,pg2")
    assert done.returncode != 0
    out = " ".join(done.stdout.split())
    assert ("candidate redis1 is not a PostgreSQL host of the inventory; "
            "valid candidates (reachable standbys): pg2") in out, out[-3000:]
    assert snapshots(plab) == before


def test_an_old_extra_var_name_still_works_with_a_deprecation_warning(plab):
    # target (now backup_hosts): the same refusal, and Ansible's deprecation warning naming the new variable.
    done = run("playbooks/backup.yml", "-e", "target=pg9")
    assert done.returncode != 0
    assert "-e backup_hosts=pg9 matches no host" in " ".join(done.stdout.split())
    warnings = " ".join((done.stdout + done.stderr).split())
    assert "[DEPRECATION WARNING]: target is deprecated: set backup_hosts instead" in warnings, warnings[-2000:]


def archiver(plab: PgLab) -> tuple[int, int]:
    return tuple(plab.sql("pg1", "SELECT archived_count, failed_count FROM pg_stat_archiver")[0])


def test_a_missing_bucket_is_refused_before_the_archive_settings_change(plab):
    before = snapshots(plab)
    done = run("playbooks/backup.yml", "-e", "pg_backup_s3_bucket=no-such-bucket", "-e", "backup_now=true",
               limit="pg1")
    assert done.returncode != 0
    assert "no-such-bucket" in done.stdout and "changed=0" in done.stdout, done.stdout[-3000:]
    assert snapshots(plab) == before
    # WAL archiving still works: a switched segment is archived, none fails.
    archived, failed = archiver(plab)
    plab.sql("pg1", "CREATE TABLE IF NOT EXISTS it_archive_probe (n int); INSERT INTO it_archive_probe VALUES (1)")
    plab.sql("pg1", "SELECT pg_switch_wal()")
    plab.wait_for(lambda: archiver(plab)[0] > archived, what="the switched segment to be archived")
    assert archiver(plab)[1] == failed


def restore(*extra: str, host: str) -> subprocess.CompletedProcess:
    return run("playbooks/restore.yml", "-e", "restore_host=" + host, "-e", "source_prefix=postgresql/pg1", *extra)


def test_a_restore_refused_for_its_target_time_changes_nothing(plab):
    before = snapshots(plab)
    done = restore("-e", "target_time=2001-01-01T00:00:00Z", host="pg3")
    assert done.returncode != 0
    assert "before the end of the oldest base backup" in done.stdout, done.stdout[-3000:]
    assert "changed=0" in done.stdout and "changed=1" not in done.stdout, done.stdout[-3000:]
    assert snapshots(plab) == before


def test_a_restore_onto_a_streaming_replica_is_refused(plab):
    before = snapshots(plab)
    done = restore(host="pg2")
    assert done.returncode != 0
    out = " ".join(done.stdout.split())
    assert "Not restoring onto pg2: it runs as a replica" in out, out[-3000:]
    assert "restore_replica_leaves_cluster=true" in out
    assert snapshots(plab) == before
    assert sh("pg2", "su postgres -c \"psql -XAtc 'SELECT pg_is_in_recovery()'\"").strip() == "t"


def test_add_replica_leaves_the_version_directory_to_postgres(plab):
    # pg_standby created /var/lib/postgresql/<major> for the clone: owned by postgres, as pg_createcluster makes it.
    assert sh("pg2", "stat -c '%U:%G %a' /var/lib/postgresql/15").split() == ["postgres:postgres", "755"]


def test_pitr_onto_a_host_whose_version_directory_is_root_owned(plab):
    # As an earlier pg_standby left cloned hosts: the restore repairs the owner instead of failing after the stop.
    plab.sql("pg1", "CREATE TABLE IF NOT EXISTS it_pitr (n int); INSERT INTO it_pitr SELECT generate_series(1, 100)")
    archived = archiver(plab)[0]
    plab.sql("pg1", "SELECT pg_switch_wal()")
    plab.wait_for(lambda: archiver(plab)[0] > archived, what="the segment with the rows to be archived")
    sh("pg3", "mkdir -p /var/lib/postgresql/15 && chown root:root /var/lib/postgresql/15")
    done = restore(host="pg3")
    assert done.returncode == 0, done.stdout[-4000:]
    assert sh("pg3", "stat -c '%U:%G' /var/lib/postgresql/15").strip() == "postgres:postgres"
    assert sh("pg3", "su postgres -c \"psql -XAtc 'SELECT pg_is_in_recovery(), count(*) FROM it_pitr'\"").strip() \
        == "f|100"


def test_a_replica_named_as_leaving_the_cluster_is_taken_out_then_restored(plab):
    assert plab.sql("pg1", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pg2' AND active")[0][0] == 1
    done = restore("-e", "restore_replica_leaves_cluster=true", host="pg2")
    assert done.returncode == 0, done.stdout[-4000:]
    assert plab.sql("pg1", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pg2'")[0][0] == 0
    assert sh("pg2", "su postgres -c \"psql -XAtc 'SELECT pg_is_in_recovery()'\"").strip() == "f"
    assert sh("pg2", "ls /etc/postgresql/15/main/conf.d/").split().count("51-pg_replica-upstream.conf") == 0


def test_a_second_writable_server_without_the_detached_mark_stops_the_runs(plab):
    # pg3 was recovered to a point in time above: writable on a timeline of its own, marked dbops.detached by
    # pg_restore. Without the mark it is a second writable server that nothing tells apart from a former primary
    # (this lab has no application host): the runs stop before anything changes, the report calls it critical.
    assert "70-dbops-detached.conf" in sh("pg3", "ls /etc/postgresql/15/main/conf.d/").split()
    mark = "/etc/postgresql/15/main/conf.d/70-dbops-detached.conf"
    sh("pg3", "mv %s /root/ && systemctl reload postgresql@15-main" % mark)
    try:
        before = snapshots(plab)
        for path, extra in (("playbooks/backup.yml", ["-e", "backup_now=true"]),
                            ("playbooks/replication_status.yml", ["-e", "replication_status_fail=true"])):
            result = run(path, *extra)
            out = " ".join(result.stdout.split())
            assert result.returncode != 0, out[-3000:]
            assert "CRITICAL: 2 servers accept writes: pg1 (timeline 1), pg3 (timeline " in out, out[-3000:]
            assert "The application's primary is not known" in out
            assert "Fencing" not in out
        assert snapshots(plab) == before
    finally:
        sh("pg3", "mv /root/70-dbops-detached.conf %s && systemctl reload postgresql@15-main" % mark)
    again = run("playbooks/replication_status.yml", "-e", "replication_status_fail=false")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "CRITICAL" not in again.stdout
