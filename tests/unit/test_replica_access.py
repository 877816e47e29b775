"""The primary-side rules of pg_replica_access (module_utils/replica_access): pg_hba.conf edits, SCRAM checks."""

from ansible_collections.muejam.dbops.plugins.module_utils import replica_access as ra

# Verifiers PostgreSQL 15 stored for these passwords (SET password_encryption = 'scram-sha-256').
VERIFIER_ASCII = ("SCRAM-SHA-256$4096:2xJY22+QXWiPgo3SPEY8bQ==$QurdjyTROmPlREDXXFnB+jf/Q3yA2smg38YxfRuu+4c="
                  ":F7HFn3/lryrtdIed9zA21YhIw/aMrqv+q4M6mPiqJso=")
VERIFIER_UNICODE = ("SCRAM-SHA-256$4096:l9UyufgkwMX7HVEhFnSh3g==$WxS+r9aXUndIIEdiODKkmmgg8u/ahUyZXtSqvGUuL1w="
                    ":/WDrOz5NJlE7V2aEVRHy5n4F9/S+u2jhNfgTc7yR6Q8=")

HBA = """# Database administrative login by Unix domain socket
local   all             postgres                                peer
host    all             all             127.0.0.1/32            scram-sha-256
"""
PG2 = {"name": "pg2", "source": "172.18.0.3/32", "slot": "pg2"}


def test_scram_matches_what_postgresql_stored():
    assert ra.scram_matches(VERIFIER_ASCII, "it-replication-secret")
    assert not ra.scram_matches(VERIFIER_ASCII, "it-replication-secreT")
    assert ra.scram_matches(VERIFIER_UNICODE, "pä:ss wörd")
    assert not ra.scram_matches("md5" + "0" * 32, "it-replication-secret")
    assert not ra.scram_matches(None, "x")


def test_role_changes():
    good = {"rolcanlogin": True, "rolreplication": True, "rolpassword": VERIFIER_ASCII}
    assert ra.role_changes(good, "it-replication-secret") == []
    assert ra.role_changes(None, "x") == ["create"]
    assert ra.role_changes(dict(good, rolreplication=False), "it-replication-secret") == ["attributes"]
    assert ra.role_changes(good, "another") == ["password"]


def test_plan_hba_appends_one_line_per_replica_and_keeps_the_rest():
    new, changes = ra.plan_hba(HBA, [PG2, {"name": "pg3", "source": "172.18.0.4/32", "slot": "pg3"}],
                               "replicator", "scram-sha-256")
    assert new.startswith(HBA)
    added = new[len(HBA):].splitlines()
    assert [line.split("#")[0].split() for line in added] == [
        ["host", "replication", "replicator", "172.18.0.3/32", "scram-sha-256"],
        ["host", "replication", "replicator", "172.18.0.4/32", "scram-sha-256"]]
    assert len(changes) == 2
    again, none = ra.plan_hba(new, [PG2], "replicator", "scram-sha-256")
    assert (again, none) == (new, [])


def test_plan_hba_replaces_the_line_of_a_replica_whose_address_changed():
    old = HBA + "host\treplication\treplicator\t172.18.0.9/32\tscram-sha-256\t#muejam.dbops.pg_replica pg2\n"
    new, changes = ra.plan_hba(old, [PG2], "replicator", "scram-sha-256")
    assert "172.18.0.9/32" not in new
    assert new.count("172.18.0.3/32") == 1
    assert changes == ["pg_hba.conf: pg2 now allowed from 172.18.0.3/32 "
                       "(was: host replication replicator 172.18.0.9/32 scram-sha-256)"]


def test_plan_hba_leaves_an_equal_rule_written_by_someone_else():
    mine = HBA + "host replication replicator 172.18.0.3/32 scram-sha-256  # added by hand\n"
    assert ra.plan_hba(mine, [PG2], "replicator", "scram-sha-256") == (mine, [])
    # A commented-out rule does not count.
    commented = HBA + "# host replication replicator 172.18.0.3/32 scram-sha-256\n"
    assert ra.plan_hba(commented, [PG2], "replicator", "scram-sha-256")[1]


def test_plan_hba_writes_a_pg_rewind_line_for_database_postgres_beside_the_replication_one():
    rewind = {"name": "pg2-rewind", "source": "172.18.0.3/32", "database": "postgres"}
    new, changes = ra.plan_hba(HBA, [PG2], "replicator", "scram-sha-256")
    new, changes = ra.plan_hba(new, [rewind], "postgres", "scram-sha-256")
    assert new.splitlines()[-1].split("#")[0].split() == ["host", "postgres", "postgres", "172.18.0.3/32",
                                                          "scram-sha-256"]
    assert changes == ["pg_hba.conf: pg2-rewind allowed to connect to postgres from 172.18.0.3/32"]
    assert new.count("172.18.0.3/32") == 2
    assert ra.plan_hba(new, [rewind], "postgres", "scram-sha-256") == (new, [])


def test_too_wide_refuses_every_address_and_keeps_single_addresses_and_networks():
    for source in ("0.0.0.0/0", "::/0", "0.0.0.0/32", "::/128", "10.0.0.1/0"):
        assert ra.too_wide(source), source
    for source in ("172.18.0.3/32", "10.0.0.0/8", "2001:db8::5/128", "300.1.2.3/32"):
        assert not ra.too_wide(source), source
