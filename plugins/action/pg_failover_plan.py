# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""muejam.dbops.pg_failover_plan, run inside the controller's process.

The decision is pure computation over the states the hosts reported. As a module it cost a Python
process and a module payload on the controller (about 0.8 s of a failover); here it is a function
call. The module file keeps the documentation and the same logic for direct use.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.muejam.dbops.plugins.module_utils.failover import (
    PLAN_ARGUMENT_SPEC,
    FailoverRefused,
    plan_from_params,
)


class ActionModule(ActionBase):
    """Decide the failover (or refuse) without a connection or a module run."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        unused_validation, params = self.validate_argument_spec(argument_spec=PLAN_ARGUMENT_SPEC)
        try:
            plan = plan_from_params(params)
        except FailoverRefused as exc:
            result.update(failed=True, changed=False, msg="Failover refused, nothing was changed: %s" % exc)
            return result
        result.update(changed=False, **plan)
        return result
