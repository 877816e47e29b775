"""The files pg_standby writes (module_utils/standby) and what a change to them needs."""

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils import postgres
from ansible_collections.muejam.dbops.plugins.module_utils import standby as s


def test_passfile_line_escapes_colon_and_backslash():
    assert s.passfile_line("pg1", 5432, "replicator", r"a:b\c") == "pg1:5432:replication:replicator:a\\:b\\\\c\n"


def test_conninfo_has_no_password_and_quotes_what_needs_it():
    conninfo = s.primary_conninfo("pg1", 5432, "replicator", "/var/lib/postgresql/.pgpass x", "pg2")
    assert conninfo == ("host=pg1 port=5432 user=replicator passfile='/var/lib/postgresql/.pgpass x' "
                        "application_name=pg2")
    assert "password" not in conninfo.replace("passfile", "")
    assert postgres.conninfo_quote("it's") == "'it\\'s'"
    assert postgres.conninfo_quote("") == "''"


def test_upstream_conf_doubles_single_quotes():
    text = s.upstream_conf("host=pg1 passfile='/x y'", "pg2")
    assert "primary_conninfo = 'host=pg1 passfile=''/x y'''\n" in text
    assert "primary_slot_name = 'pg2'\n" in text
    assert text.endswith("wal_retrieve_retry_interval = '1s'\n")


def test_restart_conf_is_sorted_and_stable():
    first = s.restart_conf({"wal_keep_size": "256MB", "hot_standby": True, "listen_addresses": "*"})
    second = s.restart_conf({"listen_addresses": "*", "hot_standby": True, "wal_keep_size": "256MB"})
    assert first == second
    assert first.splitlines()[1:] == ["hot_standby = on", "listen_addresses = '*'", "wal_keep_size = '256MB'"]


@pytest.mark.parametrize(
    ("cloned", "restart_changed", "reload_changed", "running", "expected"),
    [
        (False, False, False, True, None),  # healthy standby: nothing
        (False, False, True, True, "reload"),  # new upstream after a failover: reload only
        (False, True, True, True, "restart"),  # a restart setting changed
        (True, False, False, True, "restart"),
        (False, False, False, False, "start"),  # stopped replica is repaired
        (True, True, True, False, "start"),
    ],
)
def test_service_action(cloned, restart_changed, reload_changed, running, expected):
    assert s.service_action(cloned, restart_changed, reload_changed, running) == expected


SAMPLE_HBA = """# comment
@authcomment@
@remove-line-for-nolocal@local   all             all                                     @authmethodlocal@
host    all             all             127.0.0.1/32            @authmethodhost@
"""


@pytest.mark.parametrize("major, method", [(13, "md5"), (15, "scram-sha-256"), (17, "scram-sha-256")])
def test_initial_pg_hba_conf_is_what_debian_initdb_writes(major, method):
    text = s.initial_pg_hba_conf(SAMPLE_HBA, major)
    assert "@" not in text
    assert "local   all             all                                     peer\n" in text
    assert text.endswith("127.0.0.1/32            %s\n" % method)


def test_initial_postgresql_conf_keeps_the_sample_and_adds_initdb_choices_then_the_primarys():
    text = s.initial_postgresql_conf("#port = 5432\n#shared_buffers = 128MB\n",
                                     {"TimeZone": "Europe/Zurich", "max_connections": "300", "lc_time": ""})
    assert text.startswith("#port = 5432\n#shared_buffers = 128MB\n")
    body = text.split("in place of initdb", 1)[1]
    assert "max_connections = '300'\n" in body          # the primary's, not initdb's 100
    assert "shared_buffers = '128MB'\n" in body
    assert "TimeZone = 'Europe/Zurich'\n" in body
    assert "lc_time" not in body                         # empty values are left to PostgreSQL's default
    assert body.count("max_connections") == 1
