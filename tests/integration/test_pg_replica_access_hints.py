"""pg_replica_access on a primary without data checksums: wal_log_hints, so it can be rewound later.

The lab's primaries are created with --data-checksums, so each suite gets a second cluster on pg1's
container (initdb without checksums, port 5441) for this module; it is dropped afterwards.
"""

from __future__ import annotations

import subprocess

import pytest

from dbops_it import LAB_PASSWORD, run_module

PORT = 5441


def sh(pg_lab, script: str) -> str:
    proc = subprocess.run(["docker", "exec", "%s-pg1" % pg_lab.prefix, "bash", "-ec", script],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def no_checksums(pg_lab):
    version = pg_lab.version
    sh(pg_lab, "pg_createcluster %d nochk --port %d >/dev/null && "
               "echo \"listen_addresses = '*'\" > /etc/postgresql/%d/nochk/conf.d/listen.conf && "
               "echo 'host all postgres samenet md5' >> /etc/postgresql/%d/nochk/pg_hba.conf && "
               "systemctl start postgresql@%d-nochk && "
               "runuser -u postgres -- psql -Xq -p %d -c \"ALTER USER postgres PASSWORD '%s'\""
       % (version, PORT, version, version, version, PORT, LAB_PASSWORD))
    yield version
    sh(pg_lab, "pg_dropcluster --stop %d nochk" % version)


def access(pg_lab, **args):
    return run_module("pg_replica_access", {**pg_lab.conn_args(login_port=PORT), "replication_password": "x-secret",
                                            "replicas": [], "wal_log_hints": True, **args})


def test_wal_log_hints_is_set_once_and_reported_until_the_restart(pg_lab, no_checksums):
    check = access(pg_lab, _ansible_check_mode=True)
    assert not check.failed, check.result
    assert check.result["changed"] and check.result["restart_required"]
    assert sh(pg_lab, "grep -c wal_log_hints /var/lib/postgresql/%d/nochk/postgresql.auto.conf || true"
              % no_checksums) == "0", "check mode wrote postgresql.auto.conf"

    first = access(pg_lab)
    assert not first.failed, first.result
    assert first.result["changed"] is True
    assert first.result["data_checksums"] is False
    assert first.result["rewind_ready"] is False          # not before the restart
    assert first.result["restart_required"] is True
    assert "wal_log_hints turned on" in " ".join(first.result["changes"])
    assert "wal_log_hints = 'on'" in sh(pg_lab, "cat /var/lib/postgresql/%d/nochk/postgresql.auto.conf" % no_checksums)

    again = access(pg_lab)
    assert again.result["changed"] is False, again.result  # already configured: no second ALTER SYSTEM
    assert again.result["restart_required"] is True        # still waiting for the restart

    sh(pg_lab, "systemctl restart postgresql@%d-nochk" % no_checksums)
    after = access(pg_lab)
    assert after.result["changed"] is False, after.result
    assert after.result["rewind_ready"] is True
    assert after.result["restart_required"] is False


def test_without_the_option_nothing_is_set(pg_lab, no_checksums):
    run = access(pg_lab, wal_log_hints=False)
    assert not run.failed, run.result
    assert run.result["rewind_ready"] is False
    assert run.result["restart_required"] is False
    assert "wal_log_hints" not in sh(pg_lab, "cat /var/lib/postgresql/%d/nochk/postgresql.auto.conf" % no_checksums)


@pytest.mark.parametrize("source", ["0.0.0.0/0", "::/0", "0.0.0.0/32"])
def test_an_address_that_lets_every_address_connect_is_refused(pg_lab, no_checksums, source):
    hba = "/etc/postgresql/%d/nochk/pg_hba.conf" % no_checksums
    before = sh(pg_lab, "sha256sum %s; runuser -u postgres -- psql -XAt -p %d -c "
                        "'SELECT rolname FROM pg_roles ORDER BY 1'" % (hba, PORT))
    run = access(pg_lab, wal_log_hints=False,
                 replicas=[{"name": "pg9", "slot": "pg9", "source": source, "force": False, "datadir": None}])
    assert run.failed, run.result
    assert "The address of pg9 (%s) lets every address connect" % source in run.result["msg"], run.result
    assert sh(pg_lab, "sha256sum %s; runuser -u postgres -- psql -XAt -p %d -c "
                      "'SELECT rolname FROM pg_roles ORDER BY 1'" % (hba, PORT)) == before
