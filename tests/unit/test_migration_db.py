"""The database half of a migration's preflight, and the in-place swap's plan: pure judgements (no server).

The servers' side (what is read, the renames) is tested against real PostgreSQL in
tests/integration/test_schema_migration.py."""

from __future__ import annotations

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.migration_db import judge, swap_plan
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import PostgresError

LIMITS = {"database": "app", "max_replica_lag_seconds": 30, "min_replicas": 0, "free_disk_factor": 1.0,
          "reserve_mb": 512}
SERVER = {"in_recovery": False, "data_directory": "/var/lib/postgresql/15/main", "database_bytes": 100 * 1048576,
          "server_version_num": 150004}
GB = 1024 ** 3


def test_a_ready_primary_has_no_problems():
    assert judge(SERVER, 10 * GB, [], [{"application_name": "r1", "client_addr": "10.0.0.2", "state": "streaming",
                                        "replay_lag_seconds": 0.2}], LIMITS) == []


def test_every_reason_is_listed():
    server = dict(SERVER, in_recovery=True)
    tx = [{"pid": 42, "user": "report", "application_name": "", "seconds": 600, "state": "idle in transaction",
           "query": "SELECT * FROM stories"}]
    replicas = [{"application_name": "r1", "client_addr": "10.0.0.2", "state": "catchup", "replay_lag_seconds": 0},
                {"application_name": "r2", "client_addr": "10.0.0.3", "state": "streaming",
                 "replay_lag_seconds": 95.0}]
    problems = judge(server, 600 * 1048576, tx, replicas, dict(LIMITS, min_replicas=3))
    text = "\n".join(problems)
    assert len(problems) == 6, problems
    assert "standby" in text
    assert "pid 42" in text and "600 s" in text and "idle in transaction" in text
    assert "r1 (10.0.0.2) is catchup" in text
    assert "r2 replays 95 s behind" in text
    assert "2 replica(s) stream from this primary, 3 expected" in text
    assert "600 MB free" in text and "612 MB needed" in text


def test_missing_database_and_remote_data_directory():
    problems = judge(dict(SERVER, database_bytes=None), None, [], [], LIMITS)
    assert any("does not exist" in p for p in problems)
    assert any("not on this host" in p for p in problems)


@pytest.mark.parametrize("existing,expected", [
    ({"app", "app_rb", "postgres"}, "swap"),
    ({"app", "app_old", "postgres"}, "done"),
])
def test_swap_plan(existing, expected):
    assert swap_plan(existing, "app", "app_rb", "app_old") == expected


@pytest.mark.parametrize("existing,args,message", [
    ({"app"}, ("app", "app_rb", "app_old"), "app_rb does not exist"),
    ({"app", "app_rb", "app_old"}, ("app", "app_rb", "app_old"), "app_old already exists"),
    ({"app", "app_rb"}, ("app", "app_rb", "app"), "three different"),
])
def test_swap_plan_refuses(existing, args, message):
    with pytest.raises(PostgresError, match=message):
        swap_plan(existing, *args)
