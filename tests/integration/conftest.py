"""Integration fixtures: real PostgreSQL servers in lab containers (helpers are in dbops_it.py).

Each suite (bullseye: PostgreSQL 13, bookworm: 15, trixie: 17) gets its own small lab
(`lab/lab.py up --prefix dbops-it-<suite>`), provisioned by the lab playbooks; tests reach the
servers at their container addresses (our own containers, nothing else).
Set DBOPS_SUITES="bookworm" to test fewer versions, DBOPS_KEEP_LAB=1 to keep the containers, and
DBOPS_IT_PREFIX to name the labs otherwise (two runs on one machine at once).
"""

from __future__ import annotations

import os

import pytest

from dbops_it import SUITES, PgLab, start_pg_lab

PREFIX = os.environ.get("DBOPS_IT_PREFIX", "dbops-it")


@pytest.fixture(scope="session", params=SUITES)
def pg_lab(request) -> PgLab:
    """A primary and streaming standby shared by all tests; tests must leave it as they found it."""
    return start_pg_lab(request, request.param, PREFIX + "-" + request.param)


@pytest.fixture(scope="module", params=SUITES)
def pg_pair(request) -> PgLab:
    """A primary and streaming standby owned by one test module, which may promote or stop them."""
    module = request.module.__name__.rsplit(".", 1)[-1].replace("test_", "").replace("_", "-")
    return start_pg_lab(request, request.param, "%s-%s-%s" % (PREFIX, module, request.param))
