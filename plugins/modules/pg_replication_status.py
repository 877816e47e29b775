#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_replication_status
short_description: Report streaming replication health of a PostgreSQL primary or standby
version_added: 0.1.0
description:
  - Connects to one PostgreSQL server (13 or later) and reports its replication state.
  - On a primary, reports the timeline, the current WAL position, every connected standby with its
    lag in bytes and seconds, and every replication slot with the WAL it retains.
  - On a standby, reports the upstream server (without its password), the WAL receiver status,
    received and replayed positions and the replay lag. The lag in seconds reads 0 when the standby has
    replayed everything it received, so an idle primary does not look like a growing lag.
  - Judges the state against thresholds and returns RV(healthy) and a list of RV(problems); with
    O(fail_on_unhealthy=true) the task fails when there is any problem.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  expected_role:
    description:
      - The role this server should have. A server of the other role is reported as a problem.
    type: str
    choices: [any, primary, standby]
    default: any
  max_lag_seconds:
    description: Replay lag in seconds above which a standby is unhealthy. Not checked when unset.
    type: float
  max_lag_bytes:
    description: Replay lag in bytes of WAL above which a standby is unhealthy. Not checked when unset.
    type: int
  min_streaming_replicas:
    description: On a primary, the least number of standbys that must be streaming. Not checked when unset.
    type: int
  max_slot_retained_bytes:
    description:
      - WAL retained by a replication slot above which the slot is reported (an abandoned slot fills the disk).
        Not checked when unset.
    type: int
  expect_archiving:
    description:
      - On a primary, report a problem when it does not archive WAL (C(archive_mode=off) or no archive command)
        - its backups and point-in-time recovery stopped there, for example after a failover to a server that was
        never set up for backups. Failing archiving (the last attempt failed) is reported whatever this says.
    type: bool
    default: false
  fail_on_unhealthy:
    description: Fail the task when any problem is found, listing them in the message.
    type: bool
    default: false
  wait_for:
    description:
      - On a primary, application names of standbys to wait for (see O(wait_seconds)) until each one streams
        within O(max_lag_bytes) and O(max_lag_seconds) when they are set. One that is still not connected at the
        end is reported in RV(problems).
    type: list
    elements: str
    default: []
  wait_seconds:
    description:
      - How long to wait for the standbys of O(wait_for), reading the state again every 0.2 s. The result is the
        last state read. C(0) reads once.
    type: int
    default: 0
  report_target:
    description: Name of this server in RV(checks) (the caller's host name); default O(login_host) or C(localhost).
    type: str
  report_playbook:
    description: The playbook RV(checks) name for a replication problem.
    type: str
    default: ""
  compare_lsn:
    description:
      - A WAL position (for example where a new timeline began). When set, RV(past_compare_lsn) says whether this
        server's WAL goes past it (a primary's written WAL; a standby's received or replayed WAL).
    type: str
seealso:
  - name: Monitoring replication (PostgreSQL documentation)
    description: The views this module reads.
    link: https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-REPLICATION-VIEW
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Morning check on the primary, with the runbook's thresholds
  muejam.dbops.pg_replication_status:
    expected_role: primary
    max_lag_seconds: 2
    min_streaming_replicas: 2
  become: true
  become_user: postgres
  register: replication

- name: Fail when a standby is more than 16 MB behind
  muejam.dbops.pg_replication_status:
    login_host: db2.example.com
    login_user: monitor
    login_password: "{{ vault_monitor_password }}"
    max_lag_bytes: 16777216
    fail_on_unhealthy: true
"""

RETURN = r"""
role:
  description: C(primary) or C(standby).
  returned: success
  type: str
  sample: primary
server_version:
  description: PostgreSQL version of the server.
  returned: success
  type: str
  sample: "15.14"
server_version_num:
  description: PostgreSQL version as a number.
  returned: success
  type: int
  sample: 150014
timeline:
  description: Timeline the server is on (the primary's insert timeline, or the standby's receive/replay timeline).
  returned: success
  type: int
  sample: 1
current_lsn:
  description: Current WAL write position on a primary; last replayed position on a standby.
  returned: success
  type: str
  sample: 0/3000148
streaming_replicas:
  description: Number of standbys connected to this server in state C(streaming).
  returned: success
  type: int
  sample: 2
replicas:
  description: Standbys connected to this server (from C(pg_stat_replication)).
  returned: success
  type: list
  elements: dict
  contains:
    application_name:
      description: The standby's application_name (normally its name).
      type: str
    client_addr:
      description: Address the standby connects from.
      type: str
    state:
      description: WAL sender state (C(streaming), C(catchup), C(startup)...).
      type: str
    sync_state:
      description: C(async), C(sync), C(potential) or C(quorum).
      type: str
    sent_lsn:
      description: Last WAL position sent.
      type: str
    write_lsn:
      description: Last WAL position written by the standby.
      type: str
    flush_lsn:
      description: Last WAL position flushed by the standby.
      type: str
    replay_lsn:
      description: Last WAL position replayed by the standby.
      type: str
    lag_bytes:
      description: Bytes of WAL between this server's position and the standby's replay position.
      type: int
    lag_seconds:
      description: Replay lag in seconds; 0 when the standby has replayed everything.
      type: float
slots:
  description: Replication slots on this server.
  returned: success
  type: list
  elements: dict
  contains:
    slot_name:
      description: Name of the slot.
      type: str
    slot_type:
      description: C(physical) or C(logical).
      type: str
    active:
      description: Whether a consumer is connected to the slot.
      type: bool
    restart_lsn:
      description: Oldest WAL position the slot keeps.
      type: str
    retained_bytes:
      description: WAL kept for this slot, in bytes (null on a standby).
      type: int
    wal_status:
      description: C(reserved), C(extended), C(unreserved) or C(lost).
      type: str
standby:
  description: On a standby, its view of replication; empty on a primary.
  returned: success
  type: dict
  contains:
    upstream_host:
      description: Host the standby streams from.
      type: str
    upstream_port:
      description: Port the standby streams from.
      type: int
    upstream_conninfo:
      description: The standby's C(primary_conninfo) with the password removed.
      type: str
    application_name:
      description: application_name the standby announces to its upstream.
      type: str
    slot_name:
      description: Replication slot the WAL receiver uses, if any.
      type: str
    receiver_status:
      description: WAL receiver status (C(streaming), C(stopped), C(waiting)...).
      type: str
    received_lsn:
      description: Last WAL position received and flushed.
      type: str
    replayed_lsn:
      description: Last WAL position replayed.
      type: str
    flushed_lsn:
      description: Last WAL position flushed by the WAL receiver.
      type: str
    replay_paused:
      description: Whether WAL replay is paused.
      type: bool
    last_replay_timestamp:
      description: Commit time of the last replayed transaction (ISO 8601).
      type: str
    lag_bytes:
      description: WAL received but not yet replayed, in bytes.
      type: int
    lag_seconds:
      description: Replay lag in seconds; 0 when everything received has been replayed.
      type: float
archiving:
  description: The server's WAL archiving (on a standby it shows what the server will do once promoted).
  returned: success
  type: dict
  contains:
    archive_mode:
      description: C(off), C(on) or C(always).
      type: str
    archives:
      description: Whether WAL leaves the server (C(archive_mode) is not C(off) and a command or library is set).
      type: bool
    archived_count:
      description: WAL files archived since the statistics were reset.
      type: int
    last_archived_wal:
      description: The last WAL file archived.
      type: str
    last_archived_time:
      description: When, in UTC (ISO 8601).
      type: str
    failed_count:
      description: Failed attempts since the statistics were reset.
      type: int
    last_failed_time:
      description: The last failed attempt, in UTC (ISO 8601).
      type: str
    failing:
      description: The last attempt failed (later than the last success).
      type: bool
  sample: {archive_mode: "on", archives: true, archived_count: 12, failing: false}
detached:
  description:
    - Why this server is not a member of the replication cluster (C(dbops.detached), set by role
      M(muejam.dbops.pg_restore) on a server restored from S3), or null.
  returned: success
  type: str
  sample: restored from s3://backups/postgresql/pg1 to 2026-02-17T10:30:00Z
healthy:
  description: True when no problem was found against the thresholds.
  returned: success
  type: bool
  sample: true
not_ready:
  description: Those of O(wait_for) that do not stream within the lag limits at the end (empty when all do).
  returned: success
  type: list
  elements: str
  sample: []
waited_seconds:
  description: How long the module waited for the standbys of O(wait_for).
  returned: success
  type: float
  sample: 0.4
past_compare_lsn:
  description: Whether this server's WAL goes past O(compare_lsn).
  returned: when O(compare_lsn) is set
  type: bool
  sample: false
checks:
  description:
    - The state as report checks (the shape of the collection's report machinery, used by role
      muejam.dbops.health_check). They are each standby's lag on a primary, a standby's own replay lag, the other
      problems of this server, and the size of each database on a primary (reported only).
  returned: success
  type: list
  elements: dict
  sample: [{check: replication lag, target: pg1 -> pg2, status: ok, value: 0.0, unit: s, threshold: "< 2 s",
            reason: "", critical: true, runbook: "Incident Response / Replication Lag", playbook: ""}]
databases:
  description: On a primary, each database that accepts connections and its size.
  returned: on a primary
  type: list
  elements: dict
  sample: [{name: muejam_library, size_bytes: 9012345}]
problems:
  description: Each finding that breaks a threshold, as a sentence.
  returned: success
  type: list
  elements: str
  sample: ["standby pg2 replay lag is 12582912 bytes (limit 1048576)"]
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    connect,
    postgres_argument_spec,
    query_one,
)
from ansible_collections.muejam.dbops.plugins.module_utils.replication import (
    absent_standbys,
    find_problems,
    not_ready,
    read_replication_state,
    report_checks,
)


def wal_past(conn, lsn: str) -> bool:
    """Whether this server's WAL (written, or received/replayed on a standby) goes past lsn."""
    return bool(query_one(conn, """
        SELECT CASE WHEN pg_is_in_recovery()
                    THEN GREATEST(COALESCE(pg_last_wal_receive_lsn(), '0/0'::pg_lsn),
                                  COALESCE(pg_last_wal_replay_lsn(), '0/0'::pg_lsn))
                    ELSE pg_current_wal_lsn() END > %s::pg_lsn AS past""", (lsn,))["past"])


def main() -> None:
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        expected_role={"type": "str", "default": "any", "choices": ["any", "primary", "standby"]},
        max_lag_seconds={"type": "float"},
        max_lag_bytes={"type": "int"},
        min_streaming_replicas={"type": "int"},
        max_slot_retained_bytes={"type": "int"},
        fail_on_unhealthy={"type": "bool", "default": False},
        expect_archiving={"type": "bool", "default": False},
        compare_lsn={"type": "str"},
        wait_for={"type": "list", "elements": "str", "default": []},
        wait_seconds={"type": "int", "default": 0},
        report_target={"type": "str"},
        report_playbook={"type": "str", "default": ""},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    params = module.params

    try:
        conn = connect(params)
        try:
            began = time.monotonic()
            while True:
                state = read_replication_state(conn)
                waited = time.monotonic() - began
                waiting_for = not_ready(state, params["wait_for"], params)
                if not waiting_for or waited >= params["wait_seconds"]:
                    break
                time.sleep(0.2)
            if params["compare_lsn"]:
                state["past_compare_lsn"] = wal_past(conn, params["compare_lsn"])
        finally:
            conn.close()
    except PostgresError as exc:
        module.fail_json(msg=str(exc))

    problems = find_problems(state, params) + absent_standbys(state, params["wait_for"], waited)
    result = dict(state, changed=False, healthy=not problems, problems=problems, not_ready=waiting_for,
                  waited_seconds=round(waited, 2),
                  checks=report_checks(state, params, problems, params["report_target"] or params["login_host"]
                                       or "localhost", params["report_playbook"]))
    if problems and params["fail_on_unhealthy"]:
        module.fail_json(msg="Replication is unhealthy: " + "; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
