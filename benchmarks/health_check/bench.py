#!/usr/bin/env python
"""Wall time of the whole morning health check on the lab, against the runbook's own commands run one after
another in the same run.

    .venv/bin/python benchmarks/health_check/bench.py [--rounds 3] [--prefix dbops]

Needs the lab of `make demo` (it runs the monitoring and the morning check too). Each round, alternating which
goes first:

  baseline  the runbook's commands, one after another, through `docker exec` as an engineer on each host would
            type them: curl /health and /metrics/json on each application host, curl Alertmanager's active
            alerts and Prometheus' ALERTS (the resolved ones) on the monitoring host, the replication query with
            psql on each PostgreSQL host, `redis-cli cluster info` and `redis-cli --cluster check` on a Redis
            node and `redis-cli ping` on every other one. Nothing is judged or written: the engineer still has
            to read it all.
  playbook  ansible-playbook playbooks/morning_health_check.yml on the lab inventory (every check on every
            host, the judgement and the report files), with health_check_fail_on_critical=false.

Prints every round, the medians and their ratio. Goal (issue 13): under 15 s, and faster than the sequential
commands. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PG_PASSWORD = "lab-superuser-secret"  # inventories/lab/group_vars/all.yml
REDIS_PASSWORD = "lab-redis-secret"
REPLICATION_SQL = ("SELECT client_addr, state, sync_state, "
                   "EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) AS lag_seconds "
                   "FROM pg_stat_replication")


def hosts_of(group: str) -> list[str]:
    inventory = yaml.safe_load((ROOT / "inventories" / "lab" / "hosts.yml").read_text())

    def walk(node, name, inside):
        found = []
        for child, sub in (node.get("children") or {}).items():
            found += walk(sub or {}, child, inside or child == group)
        if inside or name == group:
            found += list((node.get("hosts") or {}).keys())
        return found
    return walk(inventory["all"], "all", False)


def run(cmd: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)


def baseline(prefix: str) -> float:
    commands = []
    for app in hosts_of("app_servers"):
        for path in ("/health", "/metrics/json"):
            commands.append(["docker", "exec", "%s-%s" % (prefix, app), "curl", "-s", "http://127.0.0.1:8000" + path])
    for mon in hosts_of("monitoring"):
        commands.append(["docker", "exec", "%s-%s" % (prefix, mon), "curl", "-s",
                         "http://127.0.0.1:9093/api/v2/alerts?active=true&silenced=false&inhibited=false"])
        commands.append(["docker", "exec", "%s-%s" % (prefix, mon), "curl", "-s", "-G", "http://127.0.0.1:9090/api/v1/query",
                         "--data-urlencode", 'query=max_over_time(ALERTS{alertstate="firing"}[24h])'])
    for pg in hosts_of("postgres"):
        commands.append(["docker", "exec", "-u", "postgres", "%s-%s" % (prefix, pg), "psql", "-X", "-c",
                         REPLICATION_SQL])
    redis = hosts_of("redis_cluster")
    auth = ["-e", "REDISCLI_AUTH=" + REDIS_PASSWORD]
    commands.append(["docker", "exec", *auth, "%s-%s" % (prefix, redis[0]), "redis-cli", "cluster", "info"])
    commands.append(["docker", "exec", *auth, "%s-%s" % (prefix, redis[0]), "redis-cli", "--cluster", "check",
                     "127.0.0.1:6379"])
    for node in redis[1:]:
        commands.append(["docker", "exec", *auth, "%s-%s" % (prefix, node), "redis-cli", "ping"])
    began = time.monotonic()
    for cmd in commands:
        done = run(cmd)
        if done.returncode != 0 and "--cluster" not in cmd:
            sys.exit("baseline command failed: %s\n%s%s" % (" ".join(cmd), done.stdout, done.stderr))
    return time.monotonic() - began


def playbook(prefix: str, report_dir: str) -> tuple[float, dict]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "DBOPS_REPORT_DIR": report_dir}
    began = time.monotonic()
    done = run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/morning_health_check.yml",
                "-e", "dbops_lab_prefix=" + prefix, "-e", "health_check_fail_on_critical=false",
                "-e", "health_check_report_dir=" + report_dir], env=env)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit("the playbook failed:\n%s%s" % (done.stdout[-4000:], done.stderr[-2000:]))
    report = json.loads((Path(report_dir) / "morning-health-latest.json").read_text())
    return elapsed, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefix", default="dbops")
    args = parser.parse_args()
    os.chdir(ROOT)
    if run(["docker", "inspect", "%s-mon" % args.prefix]).returncode != 0:
        sys.exit("no lab: run `make demo` first (the benchmark uses its lab, monitoring included)")
    times = {"baseline": [], "playbook": []}
    with tempfile.TemporaryDirectory() as report_dir:
        for rnd in range(args.rounds):
            order = ("baseline", "playbook") if rnd % 2 == 0 else ("playbook", "baseline")
            for side in order:
                if side == "baseline":
                    times[side].append(baseline(args.prefix))
                else:
                    elapsed, report = playbook(args.prefix, report_dir)
                    times[side].append(elapsed)
                    counts = ", ".join("%s %d" % kv for kv in report["counts"].items())
                    print("  report: %s, %d checks (%s)" % (report["status"], len(report["checks"]), counts))
            print("round %d: baseline %.2f s, playbook %.2f s"
                  % (rnd + 1, times["baseline"][-1], times["playbook"][-1]))
    base, play = statistics.median(times["baseline"]), statistics.median(times["playbook"])
    print("median: baseline (runbook commands one after another) %.2f s, playbook %.2f s, ratio playbook/baseline %.2f"
          % (base, play, play / base))
    print("goal: playbook under 15 s: %s; faster than the commands: %s" % (
        "met" if play < 15 else "NOT met", "met" if play < base else "NOT met"))


if __name__ == "__main__":
    main()
