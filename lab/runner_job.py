"""ansible-runner jobs as this project's tools run them: the AWX launches (tests/awx/launch.py), the fleet benchmark
(benchmarks/fleet/bench.py) and the run inside the execution environment (scripts/ee_run.py). One place for the
settings a job on this checkout needs and for reading a job's recap from its events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ansible_runner

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# A job on this checkout: its ansible.cfg and collections. ansible-runner sets ANSIBLE_CALLBACK_PLUGINS (to add its
# event callback), which hides ansible.cfg's callback_plugins: name the lab's (lab_preload) here, as ansible.cfg does.
CHECKOUT_ENV = {
    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
    "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "lab" / "callback_plugins"),
    "ANSIBLE_FORCE_COLOR": "0",
    "ANSIBLE_NOCOLOR": "1",
}


def run(private_data_dir, playbook, envvars: dict | None = None, **kwargs):
    """ansible_runner.run on this checkout (envvars replace CHECKOUT_ENV, e.g. for a job inside an EE); quiet unless
    asked. The other arguments are ansible_runner.run's."""
    kwargs.setdefault("quiet", True)
    kwargs.setdefault("project_dir", str(ROOT))
    return ansible_runner.run(private_data_dir=str(private_data_dir), playbook=str(playbook),
                              envvars=CHECKOUT_ENV if envvars is None else envvars, **kwargs)


def stats(runner) -> dict:
    """The job's recap (playbook_on_stats): ok, changed, failures, dark (unreachable) ... by host."""
    return next((e["event_data"] for e in runner.events if e.get("event") == "playbook_on_stats"), {})


def clean(runner) -> bool:
    """Successful, with no failed and no unreachable host."""
    recap = stats(runner)
    return runner.status == "successful" and not recap.get("failures") and not recap.get("dark")


def recap_line(runner) -> str:
    recap = stats(runner)
    return "status %s, rc %s, ok %s, changed %s, failures %s, unreachable %s" % (
        runner.status, runner.rc, recap.get("ok"), recap.get("changed"), recap.get("failures"), recap.get("dark"))


def inventory_hosts(inventory: Path, pattern: str = "all") -> list[str]:
    """The hosts of an inventory that match a pattern, sorted (ansible --list-hosts)."""
    out = subprocess.run([str(BIN / "ansible"), "-i", str(inventory), pattern, "--list-hosts"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.strip() for line in out.splitlines()[1:] if line.strip())
