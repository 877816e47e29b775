#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_vacuum
short_description: VACUUM and ANALYZE the tables that need it, chosen from their statistics
version_added: 0.5.0
description:
  - Reads every table's statistics (dead tuples, rows changed since the last analyze, time since the last
    vacuum and analyze, automatic ones included, and the transaction-ID age) and runs C(VACUUM), C(VACUUM
    (ANALYZE)), C(VACUUM (FREEZE)) or C(ANALYZE) only on the tables that need it, most urgent first.
  - Never blocks writers. Every statement uses C(SKIP_LOCKED) and the session's O(lock_timeout_ms); a table
    another session has locked is tried again O(retries) times and then skipped and reported, not waited on.
  - On a standby it does nothing and says why (VACUUM cannot run during recovery).
  - In check mode it returns the plan (which tables, which statement, why) and runs nothing.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.maintenance
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  tables:
    description: Only these tables (C(schema.table) or C(table)). Default every table.
    type: list
    elements: str
    default: []
  dead_ratio:
    description: Share of dead tuples (of live plus dead) from which a table is vacuumed.
    type: float
    default: 0.1
  min_dead_tuples:
    description: Fewer dead tuples than this never make a table due on O(dead_ratio) alone.
    type: int
    default: 1000
  analyze_ratio:
    description: Share of the table's rows changed since the last analyze from which it is analysed.
    type: float
    default: 0.1
  min_changed_rows:
    description: Fewer changed rows than this never make a table due on O(analyze_ratio) alone.
    type: int
    default: 1000
  max_days_since_vacuum:
    description: A table with dead tuples that was not vacuumed (by anyone) for longer than this is vacuumed.
    type: float
    default: 7
  max_days_since_analyze:
    description: A table with changed rows that was not analysed for longer than this is analysed.
    type: float
    default: 7
  freeze_age:
    description:
      - Transaction-ID age from which a table gets C(VACUUM (FREEZE)), ahead of autovacuum's forced
        anti-wraparound run (C(autovacuum_freeze_max_age), 200 million by default).
    type: int
    default: 150000000
seealso:
  - name: Routine vacuuming (PostgreSQL documentation)
    description: Why dead tuples and transaction-ID age matter.
    link: https://www.postgresql.org/docs/current/routine-vacuuming.html
  - module: muejam.dbops.pg_reindex
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Vacuum what needs it, giving up on locked tables after 1 s, starting nothing after 30 minutes
  muejam.dbops.pg_vacuum:
    window_minutes: 30
    lock_timeout_ms: 1000
  become: true
  become_user: postgres
  register: vacuum
"""

RETURN = r"""
plan:
  description: Every table that needs work, most urgent first.
  returned: success
  type: list
  elements: dict
  sample: [{database: app, schema: public, table: orders, action: vacuum analyze, dead_tuples: 90000,
            reasons: ["90000 dead tuples (90 % of the rows)"]}]
done:
  description: The tables worked on, with C(seconds) and C(dead_tuples_after). Empty in check mode.
  returned: success
  type: list
  elements: dict
skipped:
  description: Tables of the plan not worked on, each with its C(reason) (locked, the window ended).
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

from ansible_collections.muejam.dbops.plugins.module_utils.maintenance import VACUUM_DEFAULTS, vacuum_checks
from ansible_collections.muejam.dbops.plugins.module_utils.maintenance_run import run_vacuum, scheduling_argument_spec
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    postgres_argument_spec,
)


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(scheduling_argument_spec())
    argument_spec.update(
        tables={"type": "list", "elements": "str", "default": []},
        dead_ratio={"type": "float", "default": VACUUM_DEFAULTS["dead_ratio"]},
        min_dead_tuples={"type": "int", "default": VACUUM_DEFAULTS["min_dead_tuples"]},
        analyze_ratio={"type": "float", "default": VACUUM_DEFAULTS["analyze_ratio"]},
        min_changed_rows={"type": "int", "default": VACUUM_DEFAULTS["min_changed_rows"]},
        max_days_since_vacuum={"type": "float", "default": VACUUM_DEFAULTS["max_days_since_vacuum"]},
        max_days_since_analyze={"type": "float", "default": VACUUM_DEFAULTS["max_days_since_analyze"]},
        freeze_age={"type": "int", "default": VACUUM_DEFAULTS["freeze_age"]},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    try:
        result = run_vacuum(module.params, module.check_mode)
    except PostgresError as exc:
        module.fail_json(msg=str(exc))
    target = module.params["report_target"] or module.params["login_host"] or "localhost"
    module.exit_json(checks=vacuum_checks(result, target, module.check_mode), **result)


if __name__ == "__main__":
    main()
