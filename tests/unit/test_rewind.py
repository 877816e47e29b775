"""pg_rewind's rules without a server: the states it accepts, what its output means, passfile and conninfo."""

from __future__ import annotations

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.rewind import (
    needs_crash_recovery,
    rewind_verdict,
    source_conninfo,
)
from ansible_collections.muejam.dbops.plugins.module_utils.standby import passfile_line


@pytest.mark.parametrize("state, needed", [
    ("shut down", False),
    ("shut down in recovery", False),
    ("in production", True),      # killed primary
    ("in archive recovery", True),  # killed standby
    ("shutting down", True),
    (None, True),
])
def test_only_a_clean_shutdown_skips_crash_recovery(state, needed):
    assert needs_crash_recovery(state) is needed


def test_verdicts_from_pg_rewind():
    assert rewind_verdict(0, "pg_rewind: servers diverged at WAL location 0/3000060 on timeline 1\n"
                             "pg_rewind: Done!\n") == "rewound"
    assert rewind_verdict(0, "pg_rewind: source and target cluster are on the same timeline\n"
                             "pg_rewind: no rewind required\n") == "not_needed"
    assert rewind_verdict(1, "pg_rewind: fatal: could not find common ancestor") == "failed"


def test_a_password_with_colon_and_backslash_is_escaped_in_the_passfile():
    assert passfile_line("pg2", 5432, "postgres", "p:a\\ss", "*") == "pg2:5432:*:postgres:p\\:a\\\\ss\n"


def test_the_source_conninfo_quotes_what_needs_it_and_holds_no_password():
    assert source_conninfo("pg2", 5432, "postgres", "/var/lib/postgresql/.pgpass_pg_rewind") == (
        "host=pg2 port=5432 user=postgres dbname=postgres passfile=/var/lib/postgresql/.pgpass_pg_rewind")
    assert source_conninfo("pg 2", 5432, "o'brien", "/p") == (
        "host='pg 2' port=5432 user='o\\'brien' dbname=postgres passfile=/p")
