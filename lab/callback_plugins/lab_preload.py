# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import the lab's connection plugin once, in the controller's main process.

Ansible forks a worker for every task and host, and each worker imports the task's connection
plugin. community.docker.docker_api pulls in requests and the Docker SDK code: about 0.12 to 0.17 s
per task on the lab, even for a set_fact or a skipped task. Imported here, before the forks, every
worker inherits it. Only the lab inventory uses docker_api (real inventories use ssh), so this lives
in lab/ and changes nothing but speed.

It also retries a file copy into a container that the Docker engine failed (put_file raising a connection
failure: seen in 2 of 3 runs of Molecule awx on a loaded machine, as an unreachable host in the middle of a job,
with the engine's message lost; not reproduced in 364 copies into fresh containers).
A copy is idempotent (the same file to the same temporary path), so it is tried up to 3 times, 1 s apart, and each
failure is printed as a warning with the engine's message; a third failure is the unreachable host it was.
"""

from __future__ import annotations

DOCUMENTATION = """
name: lab_preload
type: aggregate
short_description: Import the lab's docker_api connection plugin before Ansible forks its workers
description:
  - Loaded automatically from C(lab/callback_plugins) (ansible.cfg).
  - Retries a file copy into a container that failed, printing a warning; otherwise it prints nothing.
"""

import time

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.callback import CallbackBase
from ansible.utils.display import Display

try:
    from ansible_collections.community.docker.plugins.connection import docker_api
except ImportError:  # community.docker missing: Ansible reports that itself when a task needs it.
    docker_api = None

PUT_FILE_TRIES = 3


def _retrying_put_file(put_file):
    def wrapper(self, in_path, out_path):
        for attempt in range(1, PUT_FILE_TRIES + 1):
            try:
                return put_file(self, in_path, out_path)
            except AnsibleConnectionFailure as exc:
                if attempt == PUT_FILE_TRIES:
                    raise
                Display().warning("lab: copying %s into container %s failed (%s); trying again (%d of %d)" % (
                    out_path, self.get_option("remote_addr"), exc, attempt + 1, PUT_FILE_TRIES))
                time.sleep(1)
        return None
    wrapper.lab_retrying = True
    return wrapper


if docker_api is not None and not getattr(docker_api.Connection.put_file, "lab_retrying", False):
    docker_api.Connection.put_file = _retrying_put_file(docker_api.Connection.put_file)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "lab_preload"
    CALLBACK_NEEDS_ENABLED = False
