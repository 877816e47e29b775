#!/usr/bin/env python
"""Launch every job template of awx/vars/main.yml as AWX launches it, through ansible-runner's Python API, against a
running lab (inventories/lab, containers <prefix>-<host>), and check each job's events.

As AWX does: the project's playbook, the inventory from the project, extra variables from the survey (the answers
in each template's `launch`, then the survey's defaults), the credentials' injectors rendered with the lab's secrets,
the template's forks, and for a sliced template (job_slice_count > 1) one job per slice, started together, each
limited to its slice of the inventory's hosts (sorted by name, round robin, as AWX slices). The failover workflow
runs its nodes in order, a node only after its predecessor succeeded, with the node's extra data.

A job passes when ansible-runner says successful, its stats have no failed and no unreachable host, and its changed
count is what the template's `launch.expect` says (changed: some; unchanged: none; any).

    python tests/awx/launch.py --prefix mol-awx --prepare       provision the lab, then every template and the
                                                                workflow, in launch order
    python tests/awx/launch.py --prefix dbops --only "Cache warm" --only "Morning health check"
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab"))
import awx_config  # noqa: E402
import runner_job  # noqa: E402

ROOT = awx_config.ROOT
INVENTORY = ROOT / "inventories" / "lab"


# What an AWX inventory does not hold: the secrets (and the bucket) come from the credentials' injectors. The jobs
# run on a copy of the lab inventory without them, so a wrong injector fails its job.
FROM_CREDENTIALS = ("pg_replica_replication_password", "pg_failover_rewind_password", "redis_cluster_password",
                    "pg_backup_s3_access_key", "pg_backup_s3_secret_key", "pg_restore_s3_access_key",
                    "pg_restore_s3_secret_key", "dbops_s3_bucket", "dbops_s3_endpoint_url")


def lab_credential_inputs() -> dict:
    """The lab's secrets as a person would type them into AWX's credentials (from the lab inventory)."""
    lab = yaml.safe_load((INVENTORY / "group_vars" / "all.yml").read_text())
    return {
        "postgres": {"replication_password": lab["pg_replica_replication_password"],
                     "superuser_password": lab["dbops_lab_pg_superuser_password"]},
        "redis": {"password": lab["dbops_lab_redis_password"]},
        "s3": {"access_key": lab["pg_backup_s3_access_key"], "secret_key": lab["pg_backup_s3_secret_key"],
               "bucket": lab["dbops_s3_bucket"], "endpoint_url": lab["dbops_s3_endpoint_url"]},
    }


def awx_inventory(workdir: Path) -> Path:
    """The lab inventory as an AWX inventory would hold it: hosts and settings, no secrets."""
    target = workdir / "inventory"
    shutil.copytree(INVENTORY, target)
    group_vars = target / "group_vars" / "all.yml"
    settings = yaml.safe_load(group_vars.read_text())
    for key in FROM_CREDENTIALS:
        settings.pop(key)
    settings["health_check_report_dir"] = str(workdir / "reports")
    group_vars.write_text(yaml.safe_dump(settings, sort_keys=False))
    return target


def survey_vars(template: dict) -> dict:
    """What AWX passes for a survey: the answers, and each unanswered question's default."""
    values = {}
    for question in template["survey"]:
        if question["variable"] in template["launch"]["answers"]:
            values[question["variable"]] = template["launch"]["answers"][question["variable"]]
        elif "default" in question:
            values[question["variable"]] = question["default"]
    return values


def credential_vars(config: dict, template: dict, inputs: dict) -> dict:
    types = {t["name"]: t for t in config["dbops_awx_credential_types"]}
    out = {}
    for credential in config["dbops_awx_credentials"]:
        if credential["key"] in template.get("credentials", []):
            out.update(awx_config.render_injectors(types[credential["type"]], inputs[credential["key"]]))
    return out


class Job:
    """One ansible-runner job (a template, or one slice of it) and what its events say."""

    def __init__(self, workdir: Path, label: str, playbook: str, extravars: dict, forks: int, limit: str | None):
        self.inventory = workdir / "inventory"
        self.label, self.playbook, self.extravars, self.forks, self.limit = label, playbook, extravars, forks, limit
        self.dir = workdir / label.replace(" ", "_").replace("/", "_").replace(":", "")
        self.runner = None
        self.seconds = 0.0

    def run(self) -> None:
        start = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.runner = runner_job.run(self.dir, ROOT / self.playbook, inventory=str(self.inventory),
                                     extravars=self.extravars, forks=self.forks, limit=self.limit)
        self.seconds = time.monotonic() - start

    def stats(self) -> dict:
        return runner_job.stats(self.runner)

    def failed_tasks(self) -> list[str]:
        out = []
        for event in self.runner.events:
            data = event.get("event_data", {})
            if event.get("event") in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                res = data.get("res") or {}
                # a loop's own message is "All items completed": the items say what happened
                items = [r.get("msg") for r in res.get("results", []) if r.get("failed") or r.get("unreachable")]
                out.append("%s on %s: %s" % (data.get("task"), data.get("host"),
                                             str(items or res.get("msg", res))[:800]))
        return out


def run_template(config, template, inputs, workdir, base_vars, hosts, extra=None) -> tuple[bool, str]:
    extravars = {**base_vars, **credential_vars(config, template, inputs), **survey_vars(template), **(extra or {})}
    slices = int(template["job_slice_count"])
    forks = int(config.get("dbops_awx_forks", 20))
    name = template["name"]
    if slices > 1:
        jobs = [Job(workdir, "%s slice %d of %d" % (name, i + 1, slices), template["playbook"], extravars, forks,
                    ",".join(hosts[i::slices])) for i in range(slices)]
    else:
        jobs = [Job(workdir, name, template["playbook"], extravars, forks, None)]
    threads = [threading.Thread(target=job.run) for job in jobs]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    problems, changed = [], 0
    for job in jobs:
        stats = job.stats()
        changed += sum((stats.get("changed") or {}).values())
        if not runner_job.clean(job.runner):
            problems.append("%s: status %s, rc %s, failures %s, unreachable %s; %s" % (
                job.label, job.runner.status, job.runner.rc, stats.get("failures"), stats.get("dark"),
                "; ".join(job.failed_tasks()) or "see %s" % job.dir))
    expect = template["launch"]["expect"]
    if expect == "changed" and not changed:
        problems.append("expected changes, the job changed nothing")
    if expect == "unchanged" and changed:
        problems.append("expected no change, %d tasks changed: %s" % (changed, changed_tasks(jobs)))
    verdict = "ok    " if not problems else "FAILED"
    summary = "%-40s %s  %5.1f s  %d job(s)  changed %d" % (name, verdict, elapsed, len(jobs), changed)
    print(summary, flush=True)
    for problem in problems:
        print("    " + problem, flush=True)
    return not problems, summary


def changed_tasks(jobs) -> str:
    names = []
    for job in jobs:
        for event in job.runner.events:
            data = event.get("event_data", {})
            if event.get("event") == "runner_on_ok" and (data.get("res") or {}).get("changed"):
                names.append("%s (%s)" % (data.get("task"), data.get("host")))
    return ", ".join(names[:10])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--prefix", default="dbops", help="the lab's container prefix (lab/lab.py --prefix)")
    parser.add_argument("--only", action="append", default=[], help="launch only these templates (names)")
    parser.add_argument("--keep", action="store_true", help="keep the jobs' private data directories")
    parser.add_argument("--prepare", action="store_true",
                        help="first provision the lab (lab/provision.yml) and add what the launches need "
                             "(tests/awx/lab.yml)")
    args = parser.parse_args()
    if args.prepare:
        print("preparing the lab (lab/provision.yml, tests/awx/lab.yml) ...", flush=True)
        subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
                        "-e", "dbops_lab_prefix=%s" % args.prefix, str(ROOT / "lab" / "provision.yml"),
                        str(Path(__file__).parent / "lab.yml")], check=True, cwd=ROOT)

    config = awx_config.load()
    base_vars = {"dbops_lab_prefix": args.prefix}
    inputs = lab_credential_inputs()
    templates = {t["name"]: t for t in config["dbops_awx_job_templates"]}
    steps = [(t["launch"]["order"], "template", t) for t in config["dbops_awx_job_templates"] if "order" in t["launch"]]
    steps += [(w["launch"]["order"], "workflow", w) for w in config["dbops_awx_workflows"]]
    workdir = Path(tempfile.mkdtemp(prefix="dbops-awx-"))
    hosts = runner_job.inventory_hosts(awx_inventory(workdir))
    results = []
    try:
        for kind, item in [step[1:] for step in sorted(steps, key=lambda s: s[0])]:
            if args.only and item["name"] not in args.only:
                continue
            if kind == "template":
                results.append(run_template(config, item, inputs, workdir, base_vars, hosts)[0])
                continue
            print("workflow: %s" % item["name"], flush=True)
            for node in item["nodes"]:
                ok = run_template(config, templates[node["template"]], inputs, workdir, base_vars, hosts,
                                  extra=node.get("extra_data"))[0]
                results.append(ok)
                if not ok:
                    break
    finally:
        if args.keep:
            print("jobs' directories: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("launched %d jobs: %d passed, %d failed" % (len(results), sum(results), len(results) - sum(results)))
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
