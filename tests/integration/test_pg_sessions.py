"""pg_sessions against real servers (PostgreSQL 13, 15, 17): a pg_sleep(30) query and a lock chain (one
session holds a row lock, two wait) are found with the holder at the root; ending sessions ends exactly the
chosen ones and never this module's own, a walsender, autovacuum or a superuser's session unless asked; check
mode ends nothing; a filter that matches everything, or more sessions than the cap, is refused."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from dbops_it import LAB_PASSWORD, run_module

DB = "sessions_it"
USER = "sessions_it_app"


@pytest.fixture()
def sdb(pg_lab):
    pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % DB)
    pg_lab.sql("pg1", "CREATE DATABASE %s" % DB)
    pg_lab.sql("pg1", "DROP ROLE IF EXISTS %s" % USER)
    pg_lab.sql("pg1", "CREATE ROLE %s LOGIN PASSWORD 'app-secret'" % USER)
    pg_lab.sql("pg1", "CREATE TABLE accounts (id int PRIMARY KEY, balance int)", DB)
    pg_lab.sql("pg1", "INSERT INTO accounts VALUES (1, 100), (2, 200)", DB)
    pg_lab.sql("pg1", "GRANT SELECT, UPDATE ON accounts TO %s" % USER, DB)
    opened = []

    def client(application, user=USER, password="app-secret"):
        conn = psycopg2.connect(host=pg_lab.addresses["pg1"], dbname=DB, user=user, password=password,
                                application_name=application, connect_timeout=5)
        opened.append(conn)
        return conn

    pg_lab.client = client
    yield pg_lab
    for conn in opened:
        try:
            conn.close()
        except psycopg2.Error:
            pass
    pg_lab.sql("pg1", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'" % DB)
    pg_lab.sql("pg1", "DROP DATABASE IF EXISTS %s" % DB)
    pg_lab.sql("pg1", "DROP ROLE IF EXISTS %s" % USER)


def in_background(conn, statement):
    """Run a statement on conn in a thread (it may block or be cancelled); returns the thread and its outcome."""
    outcome = {}

    def work():
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
            outcome["ok"] = True
        except psycopg2.Error as exc:
            outcome["error"] = type(exc).__name__
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, outcome


def backend_pid(conn):
    return conn.get_backend_pid()


def sessions(lab, check=False, **args):
    base = {**lab.conn_args("pg1"), "report_target": "pg1"}
    if check:
        base["_ansible_check_mode"] = True
    run = run_module("pg_sessions", {**base, **args}, timeout=120)
    assert LAB_PASSWORD not in run.output
    return run


def alive(lab, pid):
    return bool(lab.sql("pg1", "SELECT 1 FROM pg_stat_activity WHERE pid = %d" % pid))


def wait_waiting(lab, pids, timeout=15):
    return lab.wait_for(lambda: all(lab.sql("pg1", "SELECT cardinality(pg_blocking_pids(%d)) > 0" % p)[0][0]
                                    for p in pids), timeout=timeout, what="the sessions to wait on the lock")


def test_a_lock_chain_and_a_slow_query_are_found_and_ended_exactly(sdb):
    lab = sdb
    holder = lab.client("holder")
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 1")
    waiters = [lab.client("waiter-%d" % i) for i in (1, 2)]
    for conn in waiters:
        conn.autocommit = True
        in_background(conn, "UPDATE accounts SET balance = balance - 1 WHERE id = 1")
    sleeper = lab.client("sleeper")
    sleeper.autocommit = True
    sleep_thread, sleep_outcome = in_background(sleeper, "SELECT pg_sleep(30)")
    superuser = psycopg2.connect(host=lab.addresses["pg1"], dbname=DB, user="postgres", password=LAB_PASSWORD,
                                 application_name="dba-psql")
    superuser.autocommit = True
    in_background(superuser, "SELECT pg_sleep(30)")
    wait_waiting(lab, [backend_pid(c) for c in waiters])
    time.sleep(1.5)

    listed = sessions(lab, databases=[DB]).result
    [tree] = [t for t in listed["trees"] if t["pid"] == backend_pid(holder)]
    assert tree["waiting"] == 2 and tree["state"] == "idle in transaction"
    in_tree = {k["pid"] for k in tree["blocks"]} | {g["pid"] for k in tree["blocks"] for g in k["blocks"]}
    assert {backend_pid(c) for c in waiters} <= in_tree
    assert any(c["check"] == "lock blocker" and c["target"] == "pg1 pid %d" % backend_pid(holder)
               for c in listed["checks"])
    types = {s["backend_type"] for s in listed["sessions"]}
    assert "walsender" in types and "autovacuum launcher" in types

    # every protected kind, selected on purpose: none is ended
    protected = sessions(lab, check=True, action="terminate", min_query_seconds=0, max_sessions=50).result
    assert "would_end" in protected, protected["msg"]
    reasons = " ".join(p["reason"] for p in protected["protected"])
    assert "walsender" in reasons and "superuser" in reasons
    assert backend_pid(superuser) not in protected["would_end"]

    # check mode ends nothing
    checked = sessions(lab, check=True, action="terminate", blocking=True, max_sessions=1).result
    assert checked["would_end"] == [backend_pid(holder)]
    assert alive(lab, backend_pid(holder))

    # EXPLAIN of the slowest matched query, which does not run it
    explained = sessions(lab, applications=["sleeper"], min_query_seconds=1, explain=True).result["explain"]
    assert explained["pid"] == backend_pid(sleeper) and explained["error"] == "", explained
    assert "Result" in " ".join(explained["plan"]) and explained["analyze"] is False

    # the slow query: cancelled (not terminated); the session stays
    slow = sessions(lab, action="cancel", applications=["sleeper"], min_query_seconds=1).result
    sleep_thread.join(10)
    assert slow["cancelled"] == [backend_pid(sleeper)] and slow["terminated"] == []
    assert sleep_outcome.get("error") == "QueryCanceled" and alive(lab, backend_pid(sleeper))

    # the blocker: idle in transaction, so terminated; the waiters go on and are not touched
    ended = sessions(lab, action="terminate", blocking=True, max_sessions=1, grace_seconds=1).result
    assert ended["terminated"] == [backend_pid(holder)] and ended["cancelled"] == []
    assert not alive(lab, backend_pid(holder))
    assert all(alive(lab, backend_pid(c)) for c in waiters)
    assert alive(lab, backend_pid(superuser))
    assert lab.wait_for(lambda: not lab.sql("pg1", "SELECT 1 FROM pg_stat_activity WHERE datname = '%s' AND "
                                                   "cardinality(pg_blocking_pids(pid)) > 0" % DB),
                        timeout=10, what="the waiters to get the lock")
    walsenders = lab.sql("pg1", "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")[0][0]
    assert walsenders >= 1

    # a superuser's session only when asked
    su = sessions(lab, action="terminate", applications=["dba-psql"], grace_seconds=1).result
    assert su["terminated"] == [] and alive(lab, backend_pid(superuser))
    su = sessions(lab, action="terminate", applications=["dba-psql"], grace_seconds=1,
                  include_superusers=True).result
    assert su["cancelled"] == [backend_pid(superuser)] or su["terminated"] == [backend_pid(superuser)]


def test_idle_sessions_older_than_n_are_ended_and_nothing_else(sdb):
    lab = sdb

    def open_idle(n):
        conns = [lab.client("pool") for dummy in range(n)]
        for conn in conns:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        return conns

    old = open_idle(5)
    time.sleep(3)
    new = open_idle(3)
    listed = sessions(lab, users=[USER]).result
    assert listed["summary"]["by_user"][USER] == 8 and listed["summary"]["max_connections"] > 0
    done = sessions(lab, action="terminate", users=[USER], states=["idle"], min_state_seconds=2.5).result
    assert sorted(done["terminated"]) == sorted(backend_pid(c) for c in old)
    assert all(alive(lab, backend_pid(c)) for c in new)


def test_refusals_end_nothing(sdb):
    lab = sdb
    conns = [lab.client("pool") for dummy in range(4)]
    everything = sessions(lab, action="terminate")
    assert everything.failed and "no filter is set" in everything.result["msg"]
    capped = sessions(lab, action="terminate", users=[USER], max_sessions=3)
    assert capped.failed and "more than max_sessions (3)" in capped.result["msg"]
    bad = sessions(lab, action="terminate", client_addrs=["not-an-address"])
    assert bad.failed and "not an address" in bad.result["msg"]
    assert all(alive(lab, backend_pid(c)) for c in conns)
    wrong = run_module("pg_sessions", {**lab.conn_args("pg1", login_password="wrong"), "action": "list"})
    assert wrong.failed and "Authentication failed" in wrong.result["msg"]
