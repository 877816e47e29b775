"""playbooks/failover.yml refuses to make things worse, and then nothing is promoted or restarted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbops_it import LAB_PASSWORD, ROOT, SUITES, run_module, start_pg_lab


@pytest.fixture(scope="module")
def pg_pair(request):
    """The refusals are decided before any version-specific step: one PostgreSQL version is enough
    (bookworm's 15 unless DBOPS_SUITES leaves it out); the failover scenario covers 13, 15 and 17."""
    suite = "bookworm" if "bookworm" in SUITES else SUITES[0]
    return start_pg_lab(request, suite, "dbops-it-failover-refusals")


def failover(pg_pair, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/failover.yml",
         "-e", "dbops_lab_prefix=" + pg_pair.prefix, "--limit", "pg1,pg2", *extra],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def server_state(pg_pair, host):
    """(in recovery, postmaster start time): a restart or a promotion changes it."""
    return tuple(pg_pair.sql(host, "SELECT pg_is_in_recovery(), pg_postmaster_start_time()")[0])


def docker(*args):
    subprocess.run(["docker", *args], check=True, capture_output=True)


def test_no_reachable_standby_is_refused(pg_pair):
    docker("exec", pg_pair.prefix + "-pg2", "systemctl", "stop", "postgresql@%d-main" % pg_pair.version)
    before = server_state(pg_pair, "pg1")
    run = failover(pg_pair)
    assert run.returncode != 0
    assert "Failover refused, nothing was changed: no standby is reachable" in run.stdout
    assert server_state(pg_pair, "pg1") == before
    docker("exec", pg_pair.prefix + "-pg2", "systemctl", "start", "postgresql@%d-main" % pg_pair.version)


def test_unreachable_primary_needs_explicit_acceptance(pg_pair):
    pg_pair.wait_for(lambda: pg_pair.sql("pg2", "SELECT pg_is_in_recovery()")[0][0], what="pg2 to be up")
    before = server_state(pg_pair, "pg2")
    docker("stop", pg_pair.prefix + "-pg1")
    try:
        run = failover(pg_pair)
        assert run.returncode != 0
        assert "the old primary pg1 is unreachable, so it cannot be fenced" in run.stdout
        assert "accept_unreachable_primary=true" in run.stdout
        assert server_state(pg_pair, "pg2") == before
    finally:
        docker("start", pg_pair.prefix + "-pg1")
    pg_pair.wait_for(lambda: run_module("pg_replication_status", pg_pair.conn_args("pg1")).result.get("role")
                     == "primary", what="pg1 to come back")


def test_split_brain_is_refused(pg_pair):
    promoted = run_module("pg_promote", pg_pair.conn_args("pg2")).result
    assert promoted["promoted"] is True
    before = {host: server_state(pg_pair, host) for host in ("pg1", "pg2")}
    run = failover(pg_pair, "-e", "failover_candidate=pg2")
    assert run.returncode != 0
    # fence on sight (the failover's first play) judges the two writable servers before the failover's own
    # decision: the application's primary is unknown here (no application host), so it refuses
    assert "2 servers accept writes: pg1 (timeline 1), pg2 (timeline 2)" in run.stdout
    assert "Nothing was changed" in run.stdout
    assert {host: server_state(pg_pair, host) for host in ("pg1", "pg2")} == before
    assert LAB_PASSWORD not in run.stdout
