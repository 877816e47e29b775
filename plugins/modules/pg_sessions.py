#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_sessions
short_description: List a PostgreSQL server's sessions and lock waits, and end chosen ones with guard rails
version_added: 0.6.0
description:
  - Reads C(pg_stat_activity) with C(pg_blocking_pids()) and returns every session, the ones the filters match,
    the lock waits as trees (the blocker at each root), the connections by state, user and application against
    C(max_connections), and report checks.
  - With O(action=cancel) the matched sessions' running queries are cancelled. With O(action=terminate) they
    are cancelled first, and the sessions still running the same query after O(grace_seconds), or idle, are
    terminated.
  - Never ends its own session or another of this collection's (application name C(muejam.dbops)), never a
    backend that is not a client's (walsender, autovacuum, background workers), a superuser's session only with
    O(include_superusers). Refuses, ending nothing, when no filter is set or when more than O(max_sessions)
    would be ended.
  - In check mode it returns RV(would_end) and ends nothing.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  action:
    description: What to do with the sessions the filters match.
    type: str
    choices: [list, cancel, terminate]
    default: list
  pids:
    description: Only these backend pids.
    type: list
    elements: int
    default: []
  states:
    description: Only sessions in these states (C(active), C(idle), C(idle in transaction), ...).
    type: list
    elements: str
    default: []
  users:
    description: Only sessions of these users.
    type: list
    elements: str
    default: []
  databases:
    description: Only sessions connected to these databases.
    type: list
    elements: str
    default: []
  applications:
    description: Only sessions with these C(application_name)s.
    type: list
    elements: str
    default: []
  client_addrs:
    description: Only sessions from these addresses or networks (C(10.0.0.0/24)); C(local) means the Unix socket.
    type: list
    elements: str
    default: []
  min_query_seconds:
    description: Only active sessions whose query has run at least this long.
    type: float
  min_transaction_seconds:
    description: Only sessions whose transaction has been open at least this long.
    type: float
  min_state_seconds:
    description: Only sessions in their current state for at least this long (an idle session's idle time).
    type: float
  blocking:
    description: Only the sessions at the root of a lock tree - others wait for them, they wait for nobody (a
      waiter that the next waiter queues behind is a victim, not a cause).
    type: bool
    default: false
  waiting:
    description: Only sessions waiting for another session's lock.
    type: bool
    default: false
  include_superusers:
    description: Allow ending superusers' sessions.
    type: bool
    default: false
  max_sessions:
    description: Refuse, ending nothing, when the filters select more sessions than this.
    type: int
    default: 10
  grace_seconds:
    description: With O(action=terminate), how long a cancelled query is given to end before its session is
      terminated.
    type: float
    default: 5
  query_length:
    description: How many characters of each query to return.
    type: int
    default: 200
  report_target:
    description: The name of the server in the report checks (default O(login_host), else C(localhost)).
    type: str
    default: ""
  runbook:
    description: The runbook section the report checks name.
    type: str
    default: ""
  warn_matched:
    description: The check C(sessions matched) warns when the filters match any session.
    type: bool
    default: true
  explain:
    description: Return RV(explain), the plan of the longest-running matched query (C(EXPLAIN), which does not
      run it), read in a read-only transaction that is rolled back.
    type: bool
    default: false
  explain_analyze:
    description: With O(explain), C(EXPLAIN (ANALYZE, BUFFERS)) - this runs the query again (read-only, bounded
      by O(explain_timeout_seconds)); only when asked.
    type: bool
    default: false
  explain_timeout_seconds:
    description: The statement_timeout of the EXPLAIN.
    type: int
    default: 30
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Show queries running longer than 5 s and the lock waits
  muejam.dbops.pg_sessions:
    min_query_seconds: 5
  become: true
  become_user: postgres

- name: End the application's sessions idle for more than 5 minutes (at most 50)
  muejam.dbops.pg_sessions:
    action: terminate
    users: [muejam_app]
    states: [idle]
    min_state_seconds: 300
    max_sessions: 50
  become: true
  become_user: postgres

- name: End the session at the root of a lock chain
  muejam.dbops.pg_sessions:
    action: terminate
    blocking: true
    max_sessions: 1
"""

RETURN = r"""
sessions:
  description: Every session but this module's (pid, user, database, application_name, client_addr,
    backend_type, state, wait_event_type, wait_event, query_seconds, transaction_seconds, state_seconds,
    blocked_by, superuser, query).
  returned: success
  type: list
  elements: dict
matched:
  description: The sessions the filters match.
  returned: success
  type: list
  elements: dict
protected:
  description: Matched sessions that are never ended, each with its reason (pid, reason).
  returned: success
  type: list
  elements: dict
trees:
  description: The lock waits as trees (pid, user, state, query, transaction_seconds, waiting, blocks).
  returned: success
  type: list
  elements: dict
summary:
  description: Connections (client backends) by state, user and application, and C(max_connections).
  returned: success
  type: dict
would_end:
  description: The pids that would be cancelled or terminated (check mode).
  returned: check mode with action cancel or terminate
  type: list
  elements: int
cancelled:
  description: Pids whose query was cancelled and that no longer run it.
  returned: action cancel or terminate
  type: list
  elements: int
terminated:
  description: Pids whose session was terminated.
  returned: action terminate
  type: list
  elements: int
remaining:
  description: Selected pids still there at the end (a query that ignored the cancel, an idle session that
    a cancel does not end).
  returned: action cancel or terminate
  type: list
  elements: int
explain:
  description: The plan of the longest-running matched query (pid, database, query, analyze, plan as lines,
    error when it could not be explained).
  returned: success with explain and an active matched query
  type: dict
checks:
  description: Report checks for M(muejam.dbops.health_report).
  returned: success
  type: list
  elements: dict
msg:
  description: What was found and done, in words.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    PostgresError,
    connect,
    postgres_argument_spec,
    query_one,
    run_postgres,
)
from ansible_collections.muejam.dbops.plugins.module_utils.sessions import (
    FILTERS,
    blocking_trees,
    checks_of,
    end_sessions,
    explain,
    read_sessions,
    refuse_reason,
    select,
    summarize,
    validate,
)


def run(params: dict, check_mode: bool) -> dict:
    filters = {k: params[k] for k in FILTERS}
    validate(filters)
    conn = connect(params)
    try:
        sessions = read_sessions(conn, params["query_length"])
        max_connections = int(query_one(conn, "SELECT current_setting('max_connections') AS v")["v"])
        chosen = select(sessions, filters, params["include_superusers"])
        trees = blocking_trees(sessions)
        target = params["report_target"] or params["login_host"] or "localhost"
        result = {"changed": False, "sessions": sessions, "matched": chosen["matched"],
                  "protected": chosen["protected"], "trees": trees,
                  "summary": summarize(sessions, max_connections),
                  "checks": checks_of(sessions, chosen["matched"], trees, target, params["runbook"],
                                      params["warn_matched"])}
        slowest = sorted((s for s in chosen["matched"]
                          if s["state"] == "active" and s["backend_type"] == "client backend"),
                         key=lambda s: -(s["query_seconds"] or 0))
        if params["explain"] and slowest:
            result["explain"] = explain(params, slowest[0], params["explain_analyze"])
        pids = [s["pid"] for s in chosen["selected"]]
        if params["action"] == "list":
            result["msg"] = "%d session(s), %d matched, %d lock tree(s)" % (
                len(sessions), len(chosen["matched"]), len(trees))
            return result
        refused = refuse_reason(filters, chosen["selected"], params["max_sessions"])
        if refused:
            raise PostgresError("%s. Nothing was ended." % refused)
        if check_mode:
            return dict(result, changed=bool(pids), would_end=pids,
                        msg="would %s %s" % (params["action"], ", ".join(map(str, pids)) or "nothing"))
        done = end_sessions(conn, chosen["selected"], params["action"] == "terminate", params["grace_seconds"])
    finally:
        conn.close()
    return dict(result, changed=bool(done["cancelled"] or done["terminated"]), **done,
                msg="cancelled %s, terminated %s, remaining %s" % tuple(
                    ", ".join(map(str, done[k])) or "none" for k in ("cancelled", "terminated", "remaining")))


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        action={"type": "str", "choices": ["list", "cancel", "terminate"], "default": "list"},
        pids={"type": "list", "elements": "int", "default": []},
        states={"type": "list", "elements": "str", "default": []},
        users={"type": "list", "elements": "str", "default": []},
        databases={"type": "list", "elements": "str", "default": []},
        applications={"type": "list", "elements": "str", "default": []},
        client_addrs={"type": "list", "elements": "str", "default": []},
        min_query_seconds={"type": "float"},
        min_transaction_seconds={"type": "float"},
        min_state_seconds={"type": "float"},
        blocking={"type": "bool", "default": False},
        waiting={"type": "bool", "default": False},
        include_superusers={"type": "bool", "default": False},
        max_sessions={"type": "int", "default": 10},
        grace_seconds={"type": "float", "default": 5},
        query_length={"type": "int", "default": 200},
        report_target={"type": "str", "default": ""},
        runbook={"type": "str", "default": ""},
        warn_matched={"type": "bool", "default": True},
        explain={"type": "bool", "default": False},
        explain_analyze={"type": "bool", "default": False},
        explain_timeout_seconds={"type": "int", "default": 30},
    )
    run_postgres(AnsibleModule(argument_spec=argument_spec, supports_check_mode=True), run)


if __name__ == "__main__":
    main()
