#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_database_swap
short_description: Put a restored database in the place of another, keeping the other under a new name
version_added: 0.6.0
description:
  - Renames O(name) to O(keep_as) and O(replacement) to O(name) in one transaction, so the application finds the
    restored database under the name its settings already have. Nothing is dropped.
  - C(ALTER DATABASE RENAME) needs every session of both databases gone. Stop the application first; with
    O(terminate_sessions) the sessions left (monitoring, a forgotten psql) are ended, else they are listed in the
    error and nothing is changed.
  - Idempotent - when O(keep_as) and O(name) exist and O(replacement) does not, an earlier run did the swap.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  name:
    description: The database the application uses; it becomes O(keep_as).
    type: str
    required: true
  replacement:
    description: The database that takes the name O(name) (a restored copy).
    type: str
    required: true
  keep_as:
    description: The new name of the old O(name); it must not exist yet.
    type: str
    required: true
  terminate_sessions:
    description: End the sessions still connected to either database instead of failing.
    type: bool
    default: false
  retries:
    description: How often to try again when a session reconnects between the terminate and the rename.
    type: int
    default: 3
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Put the restored copy in the place of muejam_library (the application is stopped)
  muejam.dbops.pg_database_swap:
    name: muejam_library
    replacement: muejam_library_rb_20261207t0100
    keep_as: muejam_library_pre_rb_20261207t0100
    terminate_sessions: true
  become: true
  become_user: postgres
"""

RETURN = r"""
database:
  description: The name that now holds the replacement.
  returned: success
  type: str
kept_as:
  description: The name the old database now has.
  returned: success
  type: str
terminated:
  description: The sessions that were ended (pid, user, database, application_name, state).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.migration_db import swap_databases
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import postgres_argument_spec, run_postgres


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        replacement={"type": "str", "required": True},
        keep_as={"type": "str", "required": True},
        terminate_sessions={"type": "bool", "default": False},
        retries={"type": "int", "default": 3},
    )
    run_postgres(AnsibleModule(argument_spec=argument_spec, supports_check_mode=True), swap_databases)


if __name__ == "__main__":
    main()
