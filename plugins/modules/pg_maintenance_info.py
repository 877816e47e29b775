#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_maintenance_info
short_description: Database sizes, the largest tables and indexes with their bloat, and the slowest statements
version_added: 0.5.0
description:
  - Reports each database's size, the largest tables (table, index and total size, live and dead tuples, the
    last vacuum and analyze) and the largest indexes with their estimated bloat.
  - Reports the top statements by mean execution time from C(pg_stat_statements), with the same keys on
    PostgreSQL 13, 15 and 17 (the view's column names differ between them). When the extension is not
    preloaded, not available or not created, RV(pg_stat_statements.problem) says so and what to change.
  - With O(create_extensions) it creates the named extensions where they are available and missing (on a
    primary); that is the only change it makes, and in check mode it reports it instead.
  - With O(count_rows) it counts the rows of every table of those databases exactly (for a restore test).
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  databases:
    description: Databases to report on. Default every database that accepts connections, templates excluded.
    type: list
    elements: str
    default: []
  top_statements:
    description: How many statements to return, slowest mean time first.
    type: int
    default: 20
  top_relations:
    description: How many of the largest tables and indexes to return.
    type: int
    default: 20
  slow_statement_ms:
    description: Mean execution time from which a statement is a warning in RV(checks).
    type: float
    default: 1000
  create_extensions:
    description: Extensions to create in O(login_db) when available and missing (for example C(pg_stat_statements)).
    type: list
    elements: str
    default: []
  count_rows:
    description: Databases whose tables' rows are counted exactly into RV(row_counts).
    type: list
    elements: str
    default: []
  report_target:
    description: Name of this server in RV(checks) (the caller's host name); default O(login_host) or C(localhost).
    type: str
seealso:
  - name: pg_stat_statements (PostgreSQL documentation)
    description: The view, and why it needs shared_preload_libraries.
    link: https://www.postgresql.org/docs/current/pgstatstatements.html
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Read the maintenance report
  muejam.dbops.pg_maintenance_info:
    top_statements: 20
  become: true
  become_user: postgres
  register: maintenance_info
"""

RETURN = r"""
server_version:
  description: The server's major version.
  returned: success
  type: int
  sample: 15
standby:
  description: Whether the server is in recovery.
  returned: success
  type: bool
databases:
  description: Each database's C(name) and size in C(bytes).
  returned: success
  type: list
  elements: dict
tables:
  description:
    - The largest tables, with C(total_bytes), C(table_bytes), C(index_bytes), C(n_live_tup), C(n_dead_tup),
      C(dead_ratio), C(last_vacuum), C(last_analyze) and C(xid_age).
  returned: success
  type: list
  elements: dict
indexes:
  description: The largest indexes, with C(bytes), C(valid) and C(estimated_bloat) (null when it cannot be estimated).
  returned: success
  type: list
  elements: dict
statements:
  description:
    - The top statements by mean time, with C(database), C(user), C(query), C(calls), C(total_ms), C(mean_ms),
      C(max_ms), C(rows), C(shared_blks_hit), C(shared_blks_read), C(io_ms) and C(temp_blks_written).
  returned: success
  type: list
  elements: dict
pg_stat_statements:
  description: Whether the extension can be read, and if not why.
  returned: success
  type: dict
  contains:
    preload:
      description: The running server's C(shared_preload_libraries).
      type: str
    available:
      description: Whether the extension is installed on the server's host (C(pg_available_extensions)).
      type: bool
    installed:
      description: Whether the extension is created in O(login_db).
      type: bool
    pending_restart:
      description: Whether C(shared_preload_libraries) was changed and waits for a restart.
      type: bool
    problem:
      description: What stops the statements being read and what to change; empty when they are readable.
      type: str
created_extensions:
  description: Extensions created (or that would be in check mode).
  returned: success
  type: list
  elements: str
row_counts:
  description: For each database of O(count_rows), the row count of every table.
  returned: success
  type: dict
checks:
  description: The report as checks of the collection's report (see muejam.dbops.health_report).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.maintenance import info_checks
from ansible_collections.muejam.dbops.plugins.module_utils.maintenance_run import read_report
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    postgres_argument_spec,
)


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        databases={"type": "list", "elements": "str", "default": []},
        top_statements={"type": "int", "default": 20},
        top_relations={"type": "int", "default": 20},
        slow_statement_ms={"type": "float", "default": 1000},
        create_extensions={"type": "list", "elements": "str", "default": []},
        count_rows={"type": "list", "elements": "str", "default": []},
        report_target={"type": "str"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    params = module.params
    try:
        report = read_report(params, module.check_mode)
    except PostgresError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(checks=info_checks(report, params["report_target"] or params["login_host"] or "localhost",
                                        params["slow_statement_ms"]), **report)


if __name__ == "__main__":
    main()
