#!/usr/bin/env python
"""The morning check and weekly maintenance on one cluster and on a fleet of four, on one fleet lab, in one run.

    .venv/bin/python benchmarks/fleet/bench.py [--rounds 3] [--prefix fleet] [--setup]

Needs a fleet lab: `lab/lab.py fleet --clusters 4 --redis-clusters 2` and its provisioning (--setup does both:
lab/fleet.yml, then playbooks/create_redis_cluster.yml for each Redis Cluster). The fleet: 4 PostgreSQL clusters
(primary and streaming replica) and 2 Redis Clusters of 3 masters + 3 replicas, 20 hosts.

Each round, alternating the order, each playbook is run through ansible-runner's Python API (as AWX runs a job)
three ways:

  1 cluster        --limit to cluster c1 and Redis Cluster r1 (8 hosts), forks 8: the baseline
  4 clusters       the whole fleet (20 hosts), forks 20: only forks changed
  4 in 2 slices    two concurrent jobs, each limited to its slice of the fleet's hosts as AWX slices (sorted by
                   name, round robin), forks 10 each

The morning check runs with health_check_hosts=postgres:redis_cluster (the fleet lab has no application or
monitoring host: one per site, they do not grow with clusters) and health_check_fail_on_critical=false; the
weekly maintenance with pg_maintenance_verify_backup=false (the fleet lab has no S3 endpoint). Every job must
succeed with no failed or unreachable host. Prints every run, the medians and the ratios to the baseline.
Goal (issue 17): 4 clusters in at most 1.5x the time of 1. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))
import runner_job  # noqa: E402

ROOT = runner_job.ROOT
BIN = runner_job.BIN
PLAYBOOKS = {
    "morning check": ("playbooks/morning_health_check.yml",
                      {"health_check_hosts": "postgres:redis_cluster", "health_check_fail_on_critical": False}),
    "weekly maintenance": ("playbooks/weekly_maintenance.yml", {"pg_maintenance_verify_backup": False}),
}


DOCKER_CPU = (Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage"), Path("/sys/fs/cgroup/cpu.stat"))


def cpu_seconds() -> tuple[float, float | None]:
    """CPU used so far by this process's finished children (ansible-playbook and its forks: the controller) and by
    the lab's containers (Docker's cgroup, v1; None where it cannot be read). The lab hosts share this machine's
    cores, so a fleet's module runs compete with the controller here, as they would not on real servers."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        lab = int(DOCKER_CPU[0].read_text()) / 1e9
    except OSError:
        lab = None
    return children.ru_utime + children.ru_stime, lab


def measured(run, *args):
    """run(*args), with the controller's and the lab's CPU seconds added to its result."""
    controller0, lab0 = cpu_seconds()
    result = run(*args)
    controller1, lab1 = cpu_seconds()
    result["controller_cpu"] = controller1 - controller0
    result["lab_cpu"] = None if lab0 is None or lab1 is None else lab1 - lab0
    return result


def job(inventory: Path, playbook: str, extravars: dict, forks: int, limit: str | None, reports: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="dbops-fleet-") as workdir:
        start = time.monotonic()
        runner = runner_job.run(workdir, ROOT / playbook, inventory=str(inventory),
                                extravars={**extravars, "health_check_report_dir": str(reports),
                                           "pg_maintenance_report_dir": str(reports)},
                                forks=forks, limit=limit)
        seconds = time.monotonic() - start
        stats = runner_job.stats(runner)
        hosts = set(stats.get("ok", {})) | set(stats.get("failures", {})) | set(stats.get("dark", {}))
        return {"seconds": seconds, "ok": runner_job.clean(runner), "status": runner.status, "hosts": len(hosts),
                "failures": stats.get("failures"), "dark": stats.get("dark")}


def sliced(inventory, playbook, extravars, hosts, slices, forks, reports) -> dict:
    results: list[dict] = [{} for dummy in range(slices)]

    def one(index: int) -> None:
        results[index] = job(inventory, playbook, extravars, forks, ",".join(hosts[index::slices]), reports)

    start = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(slices)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.monotonic() - start, "ok": all(r["ok"] for r in results),
            "hosts": sum(r["hosts"] for r in results), "status": [r["status"] for r in results],
            "failures": [r["failures"] for r in results], "dark": [r["dark"] for r in results]}


def setup(prefix: str) -> Path:
    subprocess.run([sys.executable, str(ROOT / "lab" / "lab.py"), "fleet", "--clusters", "4", "--redis-clusters", "2",
                    "--prefix", prefix], check=True, stdout=subprocess.DEVNULL)
    inventory = ROOT / "build" / ("fleet-" + prefix)
    playbook = [str(BIN / "ansible-playbook"), "-i", str(inventory)]
    subprocess.run(playbook + [str(ROOT / "lab" / "fleet.yml")], check=True, stdout=subprocess.DEVNULL)
    for group in ("redis_r1", "redis_r2"):
        subprocess.run(playbook + [str(ROOT / "playbooks" / "create_redis_cluster.yml"), "-e",
                                   "redis_cluster_group=" + group], check=True, stdout=subprocess.DEVNULL)
    return inventory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prefix", default="fleet")
    parser.add_argument("--setup", action="store_true", help="start and provision the fleet lab first")
    args = parser.parse_args()
    inventory = setup(args.prefix) if args.setup else ROOT / "build" / ("fleet-" + args.prefix)
    fleet = runner_job.inventory_hosts(inventory)
    one_cluster = runner_job.inventory_hosts(inventory, "cluster_c1:redis_r1")
    print("fleet: %d hosts; 1 cluster: %d hosts (%s)" % (len(fleet), len(one_cluster), ", ".join(one_cluster)))
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[tuple[float, float]]] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="dbops-fleet-reports-") as reports:
        for rnd in range(args.rounds):
            ways = [("1 cluster", lambda pb, ev: job(inventory, pb, ev, 8, ",".join(one_cluster), Path(reports))),
                    ("4 clusters", lambda pb, ev: job(inventory, pb, ev, 20, None, Path(reports))),
                    ("4 in 2 slices", lambda pb, ev: sliced(inventory, pb, ev, fleet, 2, 10, Path(reports)))]
            if rnd % 2:
                ways.reverse()
            for name, (playbook, extravars) in PLAYBOOKS.items():
                for way, run in ways:
                    result = measured(run, playbook, extravars)
                    times.setdefault((name, way), []).append(result["seconds"])
                    cpu.setdefault((name, way), []).append((result["controller_cpu"], result["lab_cpu"] or 0.0))
                    failed |= not result["ok"]
                    verdict = "ok" if result["ok"] else "FAILED %s" % json.dumps(result)
                    print("round %d  %-18s %-14s %6.2f s  %2d hosts  CPU: controller %5.1f s, lab %5.1f s  %s" % (
                        rnd + 1, name, way, result["seconds"], result["hosts"], result["controller_cpu"],
                        result["lab_cpu"] or float("nan"), verdict), flush=True)
    print("\nmedians of %d rounds" % args.rounds)
    print("| Playbook | 1 cluster (8 hosts) | 4 clusters (20 hosts) | ratio | 4 in 2 slices | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in PLAYBOOKS:
        base = statistics.median(times[(name, "1 cluster")])
        four = statistics.median(times[(name, "4 clusters")])
        two = statistics.median(times[(name, "4 in 2 slices")])
        print("| %s | %.2f s | %.2f s | %.2f | %.2f s | %.2f |" % (name, base, four, four / base, two, two / base))
    print("\nwhere the time goes (median CPU seconds: controller + lab containers, on %d cores)" % os.cpu_count())
    for (name, way), samples in cpu.items():
        print("  %-18s %-14s controller %5.1f s  lab %5.1f s" % (
            name, way, statistics.median(c for c, dummy in samples), statistics.median(lab for dummy, lab in samples)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
