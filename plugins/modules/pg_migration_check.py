#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_migration_check
short_description: Whether a primary is ready for a schema migration now
version_added: 0.6.0
description:
  - The database half of a migration's preflight, run on the primary's host before anything is changed.
  - Fails, listing every reason, when the server is a standby, the database is missing, a transaction has been
    open longer than O(max_transaction_seconds) (a DDL would wait behind it and every writer behind the DDL),
    a replica is not streaming or lags more than O(max_replica_lag_seconds), fewer than O(min_replicas) stream,
    or the data directory's file system has less free space than the database's size times
    O(free_disk_factor) plus O(reserve_mb) (room to restore the pre-migration backup next to it).
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  app_database:
    description: The application's database (the one the migration changes).
    type: str
    required: true
  max_transaction_seconds:
    description: A transaction open longer than this blocks the migration.
    type: int
    default: 60
  max_replica_lag_seconds:
    description: A replica replaying further behind than this blocks the migration.
    type: float
    default: 30
  min_replicas:
    description: How many replicas must stream from the primary.
    type: int
    default: 0
  free_disk_factor:
    description: Free space needed under the data directory, as a multiple of the database's size.
    type: float
    default: 1.0
  reserve_mb:
    description: Free space needed on top of that, in MB.
    type: int
    default: 512
  fail_on_problems:
    description: Fail when RV(problems) is not empty; with V(false) they are only returned.
    type: bool
    default: true
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Refuse to migrate behind a long transaction or a lagging replica
  muejam.dbops.pg_migration_check:
    app_database: muejam_library
    max_transaction_seconds: 60
  become: true
  become_user: postgres
"""

RETURN = r"""
server:
  description: The server as read.
  returned: success
  type: dict
  contains:
    in_recovery:
      description: Whether it is a standby.
      type: bool
    data_directory:
      description: Its data directory.
      type: str
    database_bytes:
      description: Size of O(app_database) (null when it does not exist).
      type: int
    server_version_num:
      description: Its version number.
      type: int
free_bytes:
  description: Free bytes for PostgreSQL under the data directory (null when it is not on this host).
  returned: success
  type: int
long_transactions:
  description: Transactions open longer than O(max_transaction_seconds) (pid, user, database, application_name,
    state, seconds, query).
  returned: success
  type: list
  elements: dict
replicas:
  description: The replicas streaming from this server (application_name, client_addr, state, replay_lag_seconds).
  returned: success
  type: list
  elements: dict
problems:
  description: Why the migration should not run now; empty when it may.
  returned: always
  type: list
  elements: str
msg:
  description: What was found, in words.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.migration_db import read_preflight
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    postgres_argument_spec,
)


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        app_database={"type": "str", "required": True},
        max_transaction_seconds={"type": "int", "default": 60},
        max_replica_lag_seconds={"type": "float", "default": 30},
        min_replicas={"type": "int", "default": 0},
        free_disk_factor={"type": "float", "default": 1.0},
        reserve_mb={"type": "int", "default": 512},
        fail_on_problems={"type": "bool", "default": True},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    try:
        found = read_preflight(module.params)
    except PostgresError as exc:
        module.fail_json(msg="%s. Nothing was changed." % exc, problems=[str(exc)])
    if found["problems"] and module.params["fail_on_problems"]:
        module.fail_json(msg="not migrating %s now: %s. Nothing was changed." % (
            module.params["app_database"], "; ".join(found["problems"])), **found)
    module.exit_json(changed=False, msg="; ".join(found["problems"]) or "the primary is ready for the migration",
                     **found)


if __name__ == "__main__":
    main()
