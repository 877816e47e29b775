"""Failover wall time on the lab's three PostgreSQL nodes, per phase, and the idempotent second run.

    .venv/bin/python benchmarks/failover/run.py [--suite bookworm] [--keep]

Starts its own lab (prefix dbops-bench-fo): primary pg1 with sample data, replicas pg2 and pg3
added by playbooks/add_replica.yml, the application host. Kills pg1's container, then times
`playbooks/failover.yml` from its start to "new primary writable and every replica streaming"
(the end of the role's verify phase) and to the end of the run (application updated), with the
time of each phase from ansible.posix.profile_tasks. Then times a second run, which must change
nothing. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "dbops-bench-fo"
PASSWORD_VARS = ["-e", "pg_replica_replication_password=bench-replication-secret",
                 "-e", "pg_failover_rewind_password=lab-superuser-secret"]
# First task of each phase, in the order the role runs them.
PHASES = [
    ("gather", "Read the replication state"),
    ("plan", "Decide the failover"),
    ("fence", "Find the old primary's cluster"),
    ("promote", "Promote (nothing happens on a server that already is the primary)"),
    ("repoint", "Tell whether this replica already follows the new primary"),
    ("verify", "Wait until every reachable replica streams from the new primary"),
    ("settled (second run: nothing to do)", "Say that nothing had to change"),
    ("wrap-up", "Remember which server is the primary now, for the application"),
    ("application", "Name the primary (from the failover or the discovery play on the PostgreSQL hosts)"),
]
TASK_LINE = re.compile(r"^(?:[\w.]+ : )?(?P<name>.+?) -+ (?P<secs>[0-9.]+)s$")


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), proc.stdout[-4000:], proc.stderr[-2000:]))
    return proc


def ansible_env(profile: bool) -> dict:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    if profile:
        env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
                   PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", PROFILE_TASKS_SORT_ORDER="none")
    return env


def playbook(path: str, *args: str, profile: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(Path(sys.executable).parent / "ansible-playbook"), path, "-e", "dbops_lab_prefix=" + PREFIX,
                *PASSWORD_VARS, *args], env=ansible_env(profile), check=check)


def phase_times(output: str) -> dict[str, float]:
    """Sum profile_tasks durations per phase, tasks listed in execution order."""
    tail = output[output.rfind("=" * 20):]
    times: dict[str, float] = {}
    phase = "setup"
    starts = {first: name for name, first in PHASES}
    for line in tail.splitlines():
        match = TASK_LINE.match(line.strip())
        if not match:
            continue
        phase = starts.get(match.group("name"), phase)
        times[phase] = times.get(phase, 0.0) + float(match.group("secs"))
    return times


def timed_failover() -> tuple[float, str]:
    start = time.monotonic()
    proc = playbook("playbooks/failover.yml", "--limit", "postgres:app_servers",
                    "-e", "accept_unreachable_primary=true", profile=True)
    return time.monotonic() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--keep", action="store_true", help="keep the lab afterwards")
    parser.add_argument("--output", help="write both runs' playbook output (with the per-task times) to this file")
    args = parser.parse_args()

    run([sys.executable, "lab/lab.py", "down", "--prefix", PREFIX])
    run([sys.executable, "lab/lab.py", "up", "--prefix", PREFIX, "--suite", args.suite,
         "--hosts", "pg1,pg2,pg3,app"])
    try:
        playbook("lab/provision.yml", "--limit", "pg1,app", "-e", "lab_postgres_sample_rows=20000")
        playbook("playbooks/add_replica.yml", "--limit", "pg1,pg2,pg3,app")
        run(["docker", "kill", PREFIX + "-pg1"])

        first_secs, first_out = timed_failover()
        second_secs, second_out = timed_failover()
        if args.output:
            Path(args.output).write_text(first_out + "\n" + second_out)
        first, second = phase_times(first_out), phase_times(second_out)
        # Wall time of the whole run minus the application phase: the playbook's start-up is counted
        # (profile_tasks does not see it), so this is an upper bound of "start to writable and streaming".
        to_streaming = first_secs - first.get("application", 0.0)
        changed_again = re.findall(r"changed=(\d+)", second_out[second_out.rfind("PLAY RECAP"):])
        report = {
            "suite": args.suite,
            "first_run_total_s": round(first_secs, 1),
            "first_run_to_writable_and_streaming_s": round(to_streaming, 1),
            "first_run_phases_s": {k: round(v, 1) for k, v in first.items()},
            "second_run_total_s": round(second_secs, 1),
            "second_run_to_writable_and_streaming_s": round(second_secs - second.get("application", 0.0), 1),
            "second_run_phases_s": {k: round(v, 1) for k, v in second.items()},
            "second_run_changed_per_host": [int(c) for c in changed_again],
            "goal_first_run_s": 15,
            "goal_second_run_s": 5,
        }
        print(json.dumps(report, indent=2))
    finally:
        if not args.keep:
            run([sys.executable, "lab/lab.py", "down", "--prefix", PREFIX], check=False)


if __name__ == "__main__":
    main()
