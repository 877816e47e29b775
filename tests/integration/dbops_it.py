"""Helpers shared by the integration tests: run a module as Ansible does, drive the lab.

Test files import these from here (`from dbops_it import ...`); pytest fixtures live in
conftest.py, which every directory may have, so nothing is imported from a conftest module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITES = os.environ.get("DBOPS_SUITES", "bullseye bookworm trixie").split()
PG_VERSION = {"bullseye": 13, "bookworm": 15, "trixie": 17}
LAB_PASSWORD = "lab-superuser-secret"  # inventories/lab/group_vars/all.yml


@dataclass
class ModuleRun:
    result: dict
    output: str  # everything the module printed (stdout and stderr), to check for leaks

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))


def run_module(name: str, args: dict, env: dict | None = None, timeout: float = 120) -> ModuleRun:
    """Run one of our modules as Ansible does: a Python process reading its arguments as JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "ansible_collections.muejam.dbops.plugins.modules." + name],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT / ".collections"), **(env or {})}, cwd="/", check=False,
    )
    output = proc.stdout + proc.stderr
    start = proc.stdout.find("{")
    if start < 0:
        raise AssertionError("module %s printed no JSON result:\n%s" % (name, output))
    return ModuleRun(json.loads(proc.stdout[start:]), output)


def lab(*args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "lab" / "lab.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError("lab/lab.py %s failed:\n%s%s" % (" ".join(args), proc.stdout, proc.stderr))
    return proc.stdout


def playbook(playbook_path: str, prefix: str, *extra: str) -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections")}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), playbook_path,
                           "-e", "dbops_lab_prefix=" + prefix, *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError("ansible-playbook %s failed:\n%s%s" % (playbook_path, proc.stdout[-6000:], proc.stderr))


@dataclass
class PgLab:
    suite: str
    version: int
    prefix: str
    addresses: dict

    def conn_args(self, host: str = "pg1", **over) -> dict:
        args = {"login_host": self.addresses[host], "login_user": "postgres", "login_password": LAB_PASSWORD,
                "login_db": "postgres", "connect_timeout": 5}
        args.update(over)
        return args

    def connect(self, host: str = "pg1", dbname: str = "postgres"):
        import psycopg2

        conn = psycopg2.connect(host=self.addresses[host], user="postgres", password=LAB_PASSWORD,
                                dbname=dbname, connect_timeout=5)
        conn.autocommit = True
        return conn

    def sql(self, host: str, statement: str, dbname: str = "postgres"):
        conn = self.connect(host, dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def wait_for(self, predicate, timeout: float = 60, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
            time.sleep(0.5)


def start_pg_lab(request, suite: str, prefix: str) -> PgLab:
    """Start a primary (pg1) with sample data and a streaming standby (pg2); removed after use."""
    addresses = json.loads(lab("up", "--suite", suite, "--prefix", prefix, "--hosts", "pg1,pg2"))
    if os.environ.get("DBOPS_KEEP_LAB") != "1":
        request.addfinalizer(lambda: lab("down", "--prefix", prefix))
    playbook("lab/replication.yml", prefix, "--limit", "pg1,pg2")
    return PgLab(suite, PG_VERSION[suite], prefix, addresses)
