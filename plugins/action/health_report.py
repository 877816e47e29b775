# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""muejam.dbops.health_report, run inside the controller's process: the report files are for the person
who ran the playbook, so they are written where it runs (the controller, or AWX's execution environment),
never on a managed host. The module file keeps the documentation and writes on the target for direct use.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.muejam.dbops.plugins.module_utils.report import REPORT_ARGUMENT_SPEC, write_report_now


class ActionModule(ActionBase):
    """Build, render and write the report on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        unused_validation, params = self.validate_argument_spec(argument_spec=REPORT_ARGUMENT_SPEC)
        try:
            written = write_report_now(params)
        except (OSError, ValueError) as exc:
            result.update(failed=True, changed=False,
                          msg="The report could not be written to %s: %s. Set another directory (dest); "
                              "every check above was still made." % (params["dest"], exc))
            return result
        result.update(changed=False, report=written["report"], files=written["files"], latest=written["latest"],
                      lines=written["text"].split("\n"))
        return result
