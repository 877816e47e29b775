# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Import the lab's connection plugin once, in the controller's main process.

Ansible forks a worker for every task and host, and each worker imports the task's connection
plugin. community.docker.docker_api pulls in requests and the Docker SDK code: about 0.12 to 0.17 s
per task on the lab, even for a set_fact or a skipped task. Imported here, before the forks, every
worker inherits it. Only the lab inventory uses docker_api (real inventories use ssh), so this lives
in lab/ and changes nothing but speed.
"""

from __future__ import annotations

DOCUMENTATION = """
name: lab_preload
type: aggregate
short_description: Import the lab's docker_api connection plugin before Ansible forks its workers
description:
  - Loaded automatically from C(lab/callback_plugins) (ansible.cfg); prints nothing.
"""

from ansible.plugins.callback import CallbackBase

try:
    import ansible_collections.community.docker.plugins.connection.docker_api  # noqa: F401 pylint: disable=unused-import
except ImportError:  # community.docker missing: Ansible reports that itself when a task needs it.
    pass


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "lab_preload"
    CALLBACK_NEEDS_ENABLED = False
