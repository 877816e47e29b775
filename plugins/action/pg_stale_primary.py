# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""muejam.dbops.pg_stale_primary, run inside the controller's process (pure computation, like pg_failover_plan)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.muejam.dbops.plugins.module_utils.fencing import SIGHT_ARGUMENT_SPEC, judge_from_params


class ActionModule(ActionBase):
    """Judge the writable servers without a connection or a module run."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        unused_validation, params = self.validate_argument_spec(argument_spec=SIGHT_ARGUMENT_SPEC)
        result.update(changed=False, **judge_from_params(params))
        return result
