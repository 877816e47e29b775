"""Connection-string parsing, secret masking and error messages of module_utils/postgres.py."""

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.masking import scrub
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    explain_connect_error,
    format_conninfo,
    mask_conninfo,
    parse_conninfo,
    postgres_argument_spec,
)

PARAMS = {
    "login_host": "db1", "login_port": 5432, "login_user": "app", "login_password": "s3cr3t!",
    "login_db": "muejam_library", "login_unix_socket": "/var/run/postgresql",
}


def test_parse_key_value_with_quotes_and_escapes():
    info = parse_conninfo("host=pg1 port=5433 user=replicator application_name='my app' "
                          "sslmode=prefer passfile=/var/lib/postgresql/.pgpass")
    assert info["host"] == "pg1"
    assert info["port"] == "5433"
    assert info["application_name"] == "my app"
    assert info["passfile"] == "/var/lib/postgresql/.pgpass"


def test_parse_backslash_escape():
    assert parse_conninfo(r"password='a\'b' host=x") == {"password": "a'b", "host": "x"}


def test_parse_uri():
    info = parse_conninfo("postgresql://rep:pw@pg1:5433/postgres?application_name=pg2&sslmode=require")
    assert info == {"host": "pg1", "port": "5433", "user": "rep", "password": "pw", "dbname": "postgres",
                    "application_name": "pg2", "sslmode": "require"}


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        parse_conninfo("host=pg1 'unterminated")


def test_format_roundtrip():
    original = {"host": "pg1", "application_name": "my app", "password": "a'b\\c"}
    assert parse_conninfo(format_conninfo(original)) == original


def test_mask_conninfo_removes_password_and_keeps_the_rest():
    masked = mask_conninfo("user=replicator password=topsecret host=pg1 port=5432 sslpassword=x")
    assert "topsecret" not in masked
    assert "sslpassword" not in masked
    assert parse_conninfo(masked) == {"user": "replicator", "host": "pg1", "port": "5432"}


def test_mask_conninfo_uri():
    assert "pw" not in mask_conninfo("postgresql://rep:pw@pg1/postgres")


def test_scrub_masks_values_and_conninfo_passwords():
    text = scrub("failed for 'hunter2' with password='x y' and postgresql://u:zz@h/db", "hunter2")
    assert "hunter2" not in text
    assert "x y" not in text
    assert "zz@" not in text


@pytest.mark.parametrize("error, expected", [
    ('FATAL:  password authentication failed for user "app"', "Authentication failed"),
    ('could not connect to server: Connection refused\n\tIs the server running on host "db1"', "unreachable"),
    ('could not translate host name "nope" to address: Name or service not known', "unreachable"),
    ('timeout expired', "unreachable"),
    ('FATAL:  database "nope" does not exist', "database does not exist"),
    ('FATAL:  role "ghost" does not exist', "role does not exist"),
    ('FATAL:  no pg_hba.conf entry for host "10.0.0.9"', "pg_hba.conf"),
    ('FATAL:  Peer authentication failed for user "postgres"', "become_user"),
])
def test_connect_errors_say_what_to_do(error, expected):
    message = explain_connect_error(error, PARAMS)
    assert expected in message
    assert "db1:5432" in message


def test_connect_error_never_echoes_the_password():
    message = explain_connect_error("weird failure mentioning s3cr3t! somewhere", PARAMS)
    assert "s3cr3t!" not in message


def test_password_option_is_no_log():
    assert postgres_argument_spec()["login_password"]["no_log"] is True
