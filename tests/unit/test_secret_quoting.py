"""Passwords with any character (issue 18) through the strings the collection builds for libpq, checked by libpq
itself: psycopg2.extensions.parse_dsn is libpq's PQconninfoParse, so a value that libpq would read differently
from what was written fails here. The passfile is read back by the rules libpq documents for it (fields split on
unescaped colons, backslash escapes the next character), as psycopg2 has no call that reads one."""

from __future__ import annotations

import pytest
from psycopg2.extensions import parse_dsn

from ansible_collections.muejam.dbops.plugins.module_utils import postgres, standby

# The characters issue 18 names, alone and together, with spaces, a tab and non-ASCII.
PASSWORDS = [":", "\\", "'", '"', "$", "#", "@", "/", " ", "a b", "\t", "ends with \\", "'quoted'", "x=y",
             "p:\\ '\"$#@/ q", "pässwörd ü", "-- ;DROP", "\\'", "a\\\\b"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_libpq_reads_back_every_value_of_a_conninfo(password):
    params = {"host": "pg1", "port": "5432", "user": "rep user", "password": password, "application_name": password}
    assert parse_dsn(postgres.format_conninfo(params)) == params


@pytest.mark.parametrize("password", PASSWORDS)
def test_our_parser_and_libpq_agree(password):
    conninfo = postgres.format_conninfo([("host", "pg1"), ("password", password), ("sslmode", "verify-full")])
    assert postgres.parse_conninfo(conninfo) == parse_dsn(conninfo)


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_masked_conninfo_holds_no_password(password):
    conninfo = postgres.format_conninfo([("host", "pg1"), ("user", "rep"), ("password", password)])
    masked = postgres.mask_conninfo(conninfo)
    assert parse_dsn(masked) == {"host": "pg1", "user": "rep"}


def _split(line: str) -> list[str]:
    """A passfile line as libpq splits it: on colons not escaped, each backslash escape undone."""
    fields, current, escaped = [], [], False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_passfile_line_holds_the_password_as_it_is(password):
    line = standby.passfile_line("pg1", 5432, "replicator", password)
    assert line.endswith("\n") and line.count("\n") == 1
    assert _split(line.rstrip("\n")) == ["pg1", "5432", "replication", "replicator", password]


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_primary_conninfo_names_the_passfile_and_holds_no_password(password):
    conninfo = standby.primary_conninfo("pg1", 5432, "replicator", "/var/lib/postgresql/.pgpass " + password, "pg2")
    parsed = parse_dsn(conninfo)
    assert parsed["passfile"] == "/var/lib/postgresql/.pgpass " + password
    assert "password" not in parsed
