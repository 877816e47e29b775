#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_reindex
short_description: Rebuild invalid and bloated indexes with REINDEX INDEX CONCURRENTLY, and nothing else
version_added: 0.5.0
description:
  - Finds the indexes that need a rebuild and rebuilds only those, one at a time, with C(REINDEX INDEX
    CONCURRENTLY), which lets writers go on. It never runs C(REINDEX DATABASE) or C(REINDEX TABLE), which lock
    every table against writes for the whole rebuild.
  - Invalid indexes (left by a failed C(CREATE INDEX CONCURRENTLY)) are rebuilt, dropped or only reported
    (O(invalid_action)); a leftover C(_ccnew) or C(_ccold) index of a failed C(REINDEX CONCURRENTLY) is dropped
    concurrently, as PostgreSQL's documentation advises. An index being built right now is left alone.
  - Btree bloat is estimated cheaply from the catalog and the planner's statistics; where the C(pgstattuple)
    extension is installed in the database, the estimate is confirmed with C(pgstatindex()) before a rebuild.
  - Before a rebuild, the free disk of the index's tablespace must hold the new copy plus O(reserve_mb). The
    module must therefore run on the database server (the role runs it there).
  - A rebuild that fails (a lock not granted within O(lock_timeout_ms), after O(retries)) is reported and the
    transient index it left is dropped.
  - On a standby it does nothing and says why. In check mode it returns the plan and runs nothing.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.maintenance
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  bloat_ratio:
    description: Share of an index's pages a rebuild would free from which it is rebuilt.
    type: float
    default: 0.3
  min_index_mb:
    description: Valid indexes smaller than this are never rebuilt for bloat (not worth the work).
    type: float
    default: 10
  invalid_action:
    description: What to do with an invalid index that is not a leftover of C(REINDEX CONCURRENTLY).
    type: str
    choices: [reindex, drop, report]
    default: reindex
  reserve_mb:
    description: Free disk in MB that must remain on the tablespace's file system after the new copy is written.
    type: int
    default: 1024
  check_free_space:
    description: Check the free disk before each rebuild (needs the data directory on the host running the module).
    type: bool
    default: true
seealso:
  - name: REINDEX (PostgreSQL documentation)
    description: Rebuilding indexes concurrently, and what to do with a failed rebuild's invalid index.
    link: https://www.postgresql.org/docs/current/sql-reindex.html
  - name: pgstattuple (PostgreSQL documentation)
    description: pgstatindex(), which confirms the bloat estimate.
    link: https://www.postgresql.org/docs/current/pgstattuple.html
  - module: muejam.dbops.pg_vacuum
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Rebuild invalid indexes and those over 30 % bloat, concurrently
  muejam.dbops.pg_reindex:
    bloat_ratio: 0.3
    lock_timeout_ms: 1000
  become: true
  become_user: postgres
  register: reindex
"""

RETURN = r"""
plan:
  description: The indexes to rebuild or drop, each with its C(action), C(reason), size and bloat.
  returned: success
  type: list
  elements: dict
  sample: [{database: app, schema: public, index: orders_created_idx, action: reindex, bytes_before: 22487040,
            estimated_bloat: 0.89, measured_bloat: 0.9, reason: "90 % bloat (pgstattuple leaf density 9 %)"}]
done:
  description: What was rebuilt or dropped, with C(bytes_after) and C(seconds). Empty in check mode.
  returned: success
  type: list
  elements: dict
skipped:
  description: Indexes that need work but were not touched, each with its C(reason).
  returned: success
  type: list
  elements: dict
skipped_reason:
  description: Why nothing was done at all (the server is a standby).
  returned: when skipped
  type: str
checks:
  description: The result as checks of the collection's report (see muejam.dbops.health_report).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.maintenance import reindex_checks
from ansible_collections.muejam.dbops.plugins.module_utils.maintenance_run import run_reindex, scheduling_argument_spec
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    postgres_argument_spec,
)


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(scheduling_argument_spec())
    argument_spec.update(
        bloat_ratio={"type": "float", "default": 0.3},
        min_index_mb={"type": "float", "default": 10},
        invalid_action={"type": "str", "default": "reindex", "choices": ["reindex", "drop", "report"]},
        reserve_mb={"type": "int", "default": 1024},
        check_free_space={"type": "bool", "default": True},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    try:
        result = run_reindex(module.params, module.check_mode)
    except PostgresError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(checks=reindex_checks(result, module.params["report_target"] or module.params["login_host"]
                                           or "localhost", module.check_mode), **result)


if __name__ == "__main__":
    main()
