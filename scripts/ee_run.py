#!/usr/bin/env python
"""Run a playbook inside the execution environment image against the running lab, through ansible-runner with docker
as its container runtime (process isolation), as AWX runs a job in an EE. The collection used is the one installed
in the image (ANSIBLE_COLLECTIONS_PATH points there, not at this checkout). Prints the job's recap and status.

    python scripts/ee_run.py --image muejam-dbops-ee:0.1.0 --playbook playbooks/replication_status.yml [--prefix dbops]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
import runner_job  # noqa: E402

ROOT = runner_job.ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--playbook", required=True, help="path in this project, e.g. playbooks/replication_status.yml")
    parser.add_argument("--prefix", default="dbops", help="the lab's container prefix")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dbops-ee-run-"))
    try:
        # The project as AWX syncs it: a copy, without the checkout's .collections link (the EE's collection is used).
        project = workdir / "project"
        shutil.copytree(ROOT, project,
                        ignore=shutil.ignore_patterns(".venv", ".collections", ".git", "build", "*.tar.gz"))
        # The inventory where ansible-runner looks for it (private_data_dir/inventory, /runner/inventory inside).
        shutil.copytree(ROOT / "inventories" / "lab", workdir / "inventory")
        runner = runner_job.run(
            workdir, args.playbook, project_dir=str(project),
            extravars={"dbops_lab_prefix": args.prefix},
            process_isolation=True, process_isolation_executable="docker", container_image=args.image,
            # The lab is reached through the Docker engine (community.docker.docker_api), so the job gets its socket;
            # root in the container, to use the socket (AWX's EEs reach real hosts over SSH instead).
            container_volume_mounts=["/var/run/docker.sock:/var/run/docker.sock"],
            container_options=["--user=0", "--network=host"],
            envvars={"ANSIBLE_CONFIG": "/runner/project/ansible.cfg",
                     "ANSIBLE_COLLECTIONS_PATH": "/usr/share/ansible/collections", "ANSIBLE_FORCE_COLOR": "0"},
            quiet=False)
        print(runner_job.recap_line(runner))
        return 0 if runner_job.clean(runner) else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
