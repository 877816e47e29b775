# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""muejam.dbops.renamed_vars, run inside the controller's process (no connection, no module payload)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.muejam.dbops.plugins.module_utils.renamed import ARGUMENT_SPEC, deprecations

display = Display()


class ActionModule(ActionBase):
    """Warn, once per old name given, as Ansible warns of a deprecated option."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        unused_validation, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        found = deprecations(params["renamed"])
        for item in found:
            display.deprecated(item["msg"], version=item["version"], collection_name=item["collection_name"])
        result.update(changed=False, deprecated=[item["old"] for item in params["renamed"] if item["given"]],
                      msg="; ".join(item["msg"] for item in found) or "no deprecated variable given")
        return result
