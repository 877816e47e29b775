"""playbooks/add_replica.yml refuses bad input with a clear message and changes nothing.

A small lab of its own (prefix dbops-it-ar): pg1 a PostgreSQL 15 primary (bookworm), pg2 a bookworm
host, app the application stand-in, pg3 a bullseye host (PostgreSQL 13, for the version mismatch).
Each test compares a snapshot of every host (configuration files, roles, slots, hba rules, data
directories, services) before and after the refused run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbops_it import ROOT, lab, playbook

PREFIX = "dbops-it-ar"
REPLICATION_PASSWORD = "it-replication-secret"

SNAPSHOT = r"""
sha256sum /etc/postgresql/*/*/pg_hba.conf /etc/postgresql/*/*/postgresql.conf /etc/postgresql/*/*/conf.d/* \
  /var/lib/postgresql/*/*/postgresql.auto.conf /var/lib/postgresql/.pgpass_pg_replica /etc/muejam/* 2>/dev/null | sort
for d in /var/lib/postgresql/*/*/; do
  [ -f "$d/PG_VERSION" ] || continue
  echo "datadir $d: $(ls -A "$d" | grep -v -e '^pg_stat' -e '^postmaster' | tr '\n' ' ')"
  v=$(cat "$d/PG_VERSION")
  /usr/lib/postgresql/$v/bin/pg_controldata -D "$d" | grep 'system identifier'
done
systemctl list-units --all --plain --no-legend 'postgresql@*' | awk '{print $1, $3, $4}'
for unit in $(systemctl list-units --plain --no-legend --state=active 'postgresql@*' muejam-app.service \
    | awk '{print $1}'); do
  echo "$unit since $(systemctl show -p ActiveEnterTimestampMonotonic --value "$unit")"
done
if [ -S /var/run/postgresql/.s.PGSQL.5432 ]; then
  su postgres -c "psql -XAt -c 'SELECT slot_name FROM pg_replication_slots ORDER BY 1' \
    -c 'SELECT rolname, rolpassword FROM pg_authid ORDER BY 1' \
    -c 'SELECT line_number, type, database, user_name, address, netmask, auth_method FROM pg_hba_file_rules' \
    -c 'SELECT pg_is_in_recovery()'"
fi
true
"""


def docker_exec(host: str, *cmd: str) -> str:
    proc = subprocess.run(["docker", "exec", "%s-%s" % (PREFIX, host), *cmd],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError("docker exec %s %s failed: %s" % (host, cmd, proc.stderr))
    return proc.stdout


def docker_exec_rc(host: str, *cmd: str) -> int:
    return subprocess.run(["docker", "exec", "%s-%s" % (PREFIX, host), *cmd], capture_output=True,
                          check=False, timeout=90).returncode


def snapshot(*hosts: str) -> dict[str, str]:
    return {host: docker_exec(host, "bash", "-c", SNAPSHOT) for host in hosts}


def add_replica(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run the playbook as an operator would; the password comes from a 0600 vars file, not argv."""
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps({"pg_replica_replication_password": REPLICATION_PASSWORD}))
    varsfile.chmod(0o600)
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/add_replica.yml",
                           "-e", "dbops_lab_prefix=" + PREFIX, "-e", "@" + str(varsfile), *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=900)


@pytest.fixture(scope="module")
def ar_lab():
    lab("up", "--suite", "bookworm", "--prefix", PREFIX, "--hosts", "pg1,pg2,app")
    lab("up", "--suite", "bullseye", "--prefix", PREFIX, "--hosts", "pg3")
    try:
        playbook("lab/provision.yml", PREFIX, "--limit", "pg1,app")
        yield
    finally:
        if os.environ.get("DBOPS_KEEP_LAB") != "1":
            lab("down", "--prefix", PREFIX)


def assert_refused(run: subprocess.CompletedProcess, *phrases: str) -> None:
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    for phrase in phrases:
        assert phrase in " ".join(output.split()), output[-3000:]
    assert REPLICATION_PASSWORD not in output


def test_replica_is_the_primary(ar_lab, tmp_path):
    before = snapshot("pg1", "app")
    run = add_replica(tmp_path, "-e", "replica=pg1")
    assert_refused(run, "pg1 is the primary (pg1): a server cannot be a replica of itself. "
                        "Choose another host (-e replica=<host>). Nothing was changed.")
    assert snapshot("pg1", "app") == before


def test_host_outside_the_postgres_group(ar_lab, tmp_path):
    """redis7 is in the inventory, but not a PostgreSQL host: refused before any play."""
    before = snapshot("pg1", "pg2", "app")
    run = add_replica(tmp_path, "-e", "replica=redis7")
    assert_refused(run, "-e replica=redis7 selects redis7, not in the inventory group postgres", "Nothing was changed")
    assert snapshot("pg1", "pg2", "app") == before


def test_unreachable_host(ar_lab, tmp_path):
    """pg2's container is stopped: the host does not answer."""
    before = snapshot("pg1", "app")
    subprocess.run(["docker", "stop", PREFIX + "-pg2"], check=True, capture_output=True)
    try:
        run = add_replica(tmp_path, "-e", "replica=pg2")
    finally:
        subprocess.run(["docker", "start", PREFIX + "-pg2"], check=True, capture_output=True)
        deadline = time.monotonic() + 60  # the next tests use pg2: wait until its systemd has booted
        while docker_exec_rc("pg2", "systemctl", "is-system-running", "--wait") not in (0, 1):
            assert time.monotonic() < deadline, "pg2 did not boot again"
            time.sleep(1)
    assert_refused(run, "UNREACHABLE")
    assert "pg2" in run.stdout
    assert snapshot("pg1", "app") == before


def test_version_mismatch(ar_lab, tmp_path):
    before = snapshot("pg1", "pg3", "app")
    run = add_replica(tmp_path, "-e", "replica=pg3")
    assert_refused(run, "Version mismatch: the primary pg1 runs PostgreSQL 15 but pg3 has PostgreSQL 13 installed",
                   "Nothing was changed.")
    assert snapshot("pg1", "pg3", "app") == before
    assert "pg_replica" not in docker_exec("pg3", "ls", "-a", "/var/lib/postgresql")


@pytest.mark.parametrize("address", ["0.0.0.0/0", "10.0.0.0/8", "0.0.0.0"])
def test_an_address_that_opens_pg_hba_wider_than_the_replica_is_refused(ar_lab, tmp_path, address):
    before = snapshot("pg1", "pg2", "app")
    run = add_replica(tmp_path, "-e", "replica=pg2", "-e", "pg_replica_address=" + address)
    assert_refused(run, "pg_replica_address=%s %s: pg_hba.conf on the primary gets the replica's one address" % (
        address, "is a network, not an address" if "/" in address else "stands for every address"),
        "Nothing was changed.")
    assert snapshot("pg1", "pg2", "app") == before


def test_check_mode_on_a_fresh_host_predicts_and_changes_nothing(ar_lab, tmp_path):
    before = snapshot("pg1", "pg2", "app")
    run = add_replica(tmp_path, "-e", "replica=pg2", "--check")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert re.search(r"pg2 +: ok=\d+ +changed=[1-9]", run.stdout), run.stdout[-3000:]
    assert re.search(r"app +: ok=\d+ +changed=[1-9]", run.stdout), run.stdout[-3000:]
    assert REPLICATION_PASSWORD not in run.stdout + run.stderr
    assert snapshot("pg1", "pg2", "app") == before


def test_data_directory_of_another_cluster(ar_lab, tmp_path):
    docker_exec("pg2", "pg_createcluster", "15", "main")
    before = snapshot("pg1", "pg2", "app")
    assert "system identifier" in before["pg2"]
    run = add_replica(tmp_path, "-e", "replica=pg2")
    assert_refused(run, "/var/lib/postgresql/15/main holds a different PostgreSQL cluster",
                   "pg_replica_force_reclone=true", "Nothing was changed.")
    assert snapshot("pg1", "pg2", "app") == before


def test_force_replaces_another_cluster(ar_lab, tmp_path):
    """The same directory with the explicit force variable: moved aside (not deleted), cloned, streaming."""
    controldata = "/usr/lib/postgresql/15/bin/pg_controldata -D %s | grep 'system identifier'"
    primary_id = docker_exec("pg1", "bash", "-c", controldata % "/var/lib/postgresql/15/main")
    other_id = docker_exec("pg2", "bash", "-c", controldata % "/var/lib/postgresql/15/main")
    assert primary_id != other_id
    run = add_replica(tmp_path, "-e", "replica=pg2", "-e", "pg_replica_force_reclone=true")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert primary_id in docker_exec("pg2", "bash", "-c", SNAPSHOT)
    # The replaced cluster is kept, renamed, with its own identifier.
    assert other_id == docker_exec("pg2", "bash", "-c", controldata % "/var/lib/postgresql/15/main.replaced-*")
    streaming = docker_exec("pg1", "su", "postgres", "-c",
                            "psql -XAt -c \"SELECT application_name, state FROM pg_stat_replication\"")
    assert streaming.strip() == "pg2|streaming"
    health = docker_exec("app", "python3", "-c", "import urllib.request; "
                         "print(urllib.request.urlopen('http://127.0.0.1:8000/health').read().decode())")
    assert json.loads(health)["databases"] == ["default", "replica_pg2"]


def test_an_address_postgresql_rejects_leaves_pg_hba_as_it_was(ar_lab, tmp_path):
    """After the force test pg2 streams; an address pg_hba.conf cannot hold is put back, nothing else moves."""
    before = snapshot("pg1", "pg2", "app")
    run = add_replica(tmp_path, "-e", "replica=pg2", "-e", "pg_replica_address=300.1.2.3")
    assert_refused(run, "PostgreSQL rejects /etc/postgresql/15/main/pg_hba.conf after the edit",
                   "the previous file was put back")
    assert snapshot("pg1", "pg2", "app") == before
    assert "300.1.2.3" not in docker_exec("pg1", "cat", "/etc/postgresql/15/main/pg_hba.conf")


def test_second_run_on_a_healthy_replica_changes_nothing(ar_lab, tmp_path):
    """The replication role's SCRAM verifier matches: no password reset, no reload, no restart."""
    before = snapshot("pg1", "pg2", "app")
    run = add_replica(tmp_path, "-e", "replica=pg2")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert re.search(r"pg2 +: ok=\d+ +changed=0 ", run.stdout), run.stdout[-3000:]
    assert snapshot("pg1", "pg2", "app") == before


def test_a_replica_outside_the_limits_fails_saying_what_both_sides_show(ar_lab, tmp_path):
    """The wait on the primary runs out (a lag limit no replica can meet): the failure names the replica,
    the primary's finding, the replica's service state and the end of its log, and changes nothing."""
    before = snapshot("pg1", "pg2", "app")
    began = time.monotonic()
    run = add_replica(tmp_path, "-e", "replica=pg2", "-e", "pg_replica_max_lag_bytes=-1",
                      "-e", "pg_replica_streaming_timeout=3")
    assert_refused(run, "pg2 does not stream from pg1 within the limits: standby pg2 replay lag is",
                   "Its service is active; the end of its log:", "started streaming WAL from primary")
    assert re.search(r"pg2 +: ok=\d+ +changed=0 +unreachable=0 +failed=1", run.stdout), run.stdout[-3000:]
    assert time.monotonic() - began < 60  # waited about the 3 s asked for, not Ansible retries
    assert snapshot("pg1", "pg2", "app") == before
