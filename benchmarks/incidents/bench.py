#!/usr/bin/env python
"""Time from start to the report of each incident playbook on the lab, against the runbook's commands for the
same section run one after another in the same run.

    .venv/bin/python benchmarks/incidents/bench.py [--rounds 3] [--prefix dbops] [--only cache_failure ...]

Needs the lab of `make demo`. Each round, for each incident, alternating which side goes first:

  baseline  the runbook section's "Assess Impact" and diagnosis commands through `docker exec`, as an engineer
            types them: curl /metrics/json, the section's psql queries, top -bn1, free -h and the I/O sample
            (high latency: the runbook's iostat -x 1 5 needs sysstat, which the lab hosts lack; vmstat 1 5
            samples the same five seconds), redis-cli ping, info memory and info clients (cache failure).
            Nothing is judged, written or acted on: the engineer still has to read it all.
  playbook  ansible-playbook playbooks/incident_<kind>.yml on the lab inventory, diagnosis only (no action
            variable set; the cache failure with incident_redis_restart=false), up to its written report.

Prints every round, the medians and their ratio per incident. Goal (issue 15): every playbook under 10 s.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "health_check"))
from bench import REDIS_PASSWORD, hosts_of, run  # noqa: E402  (the health check benchmark's helpers)

KINDS = ("high_latency", "connection_exhaustion", "replication_lag", "cache_failure")
SLOW_SQL = ("SELECT pid, now() - query_start AS duration, query, state FROM pg_stat_activity "
            "WHERE state = 'active' AND now() - query_start > interval '5 seconds' ORDER BY duration DESC")
ACTIVE_SQL = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
LAG_SQL = ("SELECT client_addr, EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) AS lag_seconds "
           "FROM pg_stat_replication")


def commands(kind: str, prefix: str) -> list[list[str]]:
    app = "%s-%s" % (prefix, hosts_of("app_servers")[0])
    primary = "%s-%s" % (prefix, hosts_of("postgres_primary")[0])
    metrics = ["docker", "exec", app, "curl", "-s", "http://127.0.0.1:8000/metrics/json"]
    psql = ["docker", "exec", "-u", "postgres", primary, "psql", "-X", "-d", "muejam_library", "-c"]
    if kind == "high_latency":
        return [metrics, psql + [SLOW_SQL], ["docker", "exec", primary, "sh", "-c", "top -bn1 | grep 'Cpu(s)'"],
                ["docker", "exec", primary, "free", "-h"], ["docker", "exec", primary, "vmstat", "1", "5"]]
    if kind == "connection_exhaustion":
        return [metrics, psql + [ACTIVE_SQL]]
    if kind == "replication_lag":
        return [psql + [LAG_SQL]]
    node = "%s-%s" % (prefix, hosts_of("redis_cluster")[0])
    redis = ["docker", "exec", "-e", "REDISCLI_AUTH=" + REDIS_PASSWORD, node, "redis-cli"]
    return [metrics, redis + ["ping"], redis + ["info", "memory"], redis + ["info", "clients"]]


def baseline(kind: str, prefix: str) -> float:
    began = time.monotonic()
    for cmd in commands(kind, prefix):
        done = run(cmd)
        if done.returncode != 0:
            sys.exit("baseline command failed: %s\n%s%s" % (" ".join(cmd), done.stdout, done.stderr))
    return time.monotonic() - began


def playbook(kind: str, prefix: str, report_dir: str) -> tuple[float, dict]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections")}
    extra = ["-e", "incident_redis_restart=false"] if kind == "cache_failure" else []
    began = time.monotonic()
    done = run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/incident_%s.yml" % kind,
                "-e", "dbops_lab_prefix=" + prefix, "-e", "incident_report_dir=" + report_dir] + extra, env=env)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit("the playbook failed:\n%s%s" % (done.stdout[-4000:], done.stderr[-2000:]))
    report = json.loads((Path(report_dir) / ("incident-%s-latest.json" % kind.replace("_", "-"))).read_text())
    return elapsed, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefix", default="dbops")
    parser.add_argument("--only", nargs="*", choices=KINDS, default=list(KINDS))
    args = parser.parse_args()
    os.chdir(ROOT)
    if run(["docker", "inspect", "%s-app" % args.prefix]).returncode != 0:
        sys.exit("no lab: run `make demo` first")
    medians = {}
    with tempfile.TemporaryDirectory() as report_dir:
        for kind in args.only:
            times = {"baseline": [], "playbook": []}
            for rnd in range(args.rounds):
                order = ("baseline", "playbook") if rnd % 2 == 0 else ("playbook", "baseline")
                for side in order:
                    if side == "baseline":
                        times[side].append(baseline(kind, args.prefix))
                    else:
                        elapsed, report = playbook(kind, args.prefix, report_dir)
                        times[side].append(elapsed)
                        counts = ", ".join("%s %d" % kv for kv in report["counts"].items())
                        print("  %s report: %s, %d checks (%s)" % (
                            kind, report["status"], len(report["checks"]), counts))
                print("%s round %d: baseline %.2f s, playbook %.2f s"
                      % (kind, rnd + 1, times["baseline"][-1], times["playbook"][-1]), flush=True)
            medians[kind] = (statistics.median(times["baseline"]), statistics.median(times["playbook"]))
    print("\n| incident | runbook's commands | playbook (to the report) | ratio | under 10 s |")
    print("| --- | --- | --- | --- | --- |")
    for kind, (base, play) in medians.items():
        print("| %s | %.2f s | %.2f s | %.2f | %s |" % (kind, base, play, play / base, "yes" if play < 10 else "NO"))


if __name__ == "__main__":
    main()
