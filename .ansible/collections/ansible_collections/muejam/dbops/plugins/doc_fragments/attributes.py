# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What --check and --diff do, stated once for every module of the collection."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a prediction of the changed status without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when run with --diff.
  idempotent:
    description:
      - Running the module again with the same options after a successful run changes nothing
        and reports C(changed=false).
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This module only reads state; it runs the same in check mode.
  diff_mode:
    support: N/A
    details:
      - This module only reads state.
  idempotent:
    support: full
"""

    ACTION = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reports what it would do and changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
"""
