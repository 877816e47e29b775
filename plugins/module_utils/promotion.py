# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Promoting a standby: the one irreversible step of a failover, done once and verified."""

from __future__ import annotations

from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import PostgresError, query, query_one
from ansible_collections.muejam.dbops.plugins.module_utils.replication import is_in_recovery, timeline_of_walfile


def primary_position(conn: Any) -> dict[str, Any]:
    """Timeline and current WAL position of a primary."""
    row = query_one(conn, "SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS walfile")
    return {"lsn": row["lsn"], "timeline": timeline_of_walfile(row["walfile"])}


def standby_position(conn: Any) -> dict[str, Any]:
    """Timeline and last replayed WAL position of a standby."""
    row = query_one(conn, """
        SELECT pg_last_wal_replay_lsn()::text AS replayed_lsn,
               COALESCE((SELECT received_tli FROM pg_stat_wal_receiver),
                        (SELECT timeline_id FROM pg_control_checkpoint())) AS timeline
    """)
    return {"replayed_lsn": row["replayed_lsn"], "timeline": int(row["timeline"])}


def promote(conn: Any, wait_seconds: int, check_mode: bool) -> dict[str, Any]:
    """Promote the connected standby; do nothing on a primary. Returns what happened."""
    if not is_in_recovery(conn):
        position = primary_position(conn)
        # A promotion done by hand (or a run cut off after pg_promote) may not have checkpointed yet.
        checkpointed = not check_mode and checkpoint_new_timeline(conn)
        return dict(position, promoted=False, was_primary=True, replayed_lsn=None,
                    msg="already a primary on timeline %d: %s" % (position["timeline"], "checkpointed the new timeline"
                                                                  if checkpointed else "nothing to do"))
    before = standby_position(conn)
    if check_mode:
        return {"promoted": True, "was_primary": False, "timeline": before["timeline"],
                "replayed_lsn": before["replayed_lsn"], "lsn": before["replayed_lsn"],
                "msg": "would promote this standby (replayed up to %s on timeline %d)"
                       % (before["replayed_lsn"], before["timeline"])}
    done = query_one(conn, "SELECT pg_promote(true, %s) AS done", (wait_seconds,))["done"]
    if not done or is_in_recovery(conn):
        raise PostgresError("the standby did not finish promotion within %d seconds: check its log; "
                            "it may still finish, run again to see" % wait_seconds)
    after = primary_position(conn)
    checkpoint_new_timeline(conn)
    return dict(after, promoted=True, was_primary=False, replayed_lsn=before["replayed_lsn"],
                msg="promoted to primary on timeline %d" % after["timeline"])


# The timeline the primary writes on (from its WAL file name) against the one its control file's latest
# checkpoint records: they differ from a promotion until the first checkpoint after it.
CONTROL_TIMELINE_SQL = """
    SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS current,
           (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpointed
"""


def checkpoint_new_timeline(conn: Any) -> bool:
    """CHECKPOINT when the control file still names the timeline before the promotion; True when it ran.

    A promotion writes an end-of-recovery record, not a checkpoint, so for a while the control file keeps the
    old timeline. pg_rewind before PostgreSQL 16 reads the source's timeline from there and answers "no rewind
    required" for an old primary that did diverge: the rewind would be skipped and the old primary would fail to
    follow (or, worse, be taken for in line). Needs a superuser or, from 15, pg_checkpoint.
    """
    row = query_one(conn, CONTROL_TIMELINE_SQL)
    if int(row["checkpointed"]) >= int(row["current"]):
        return False
    query(conn, "CHECKPOINT")
    return True


def branch_point(conn: Any) -> dict[str, Any] | None:
    """Where the primary's current timeline began (parent timeline, LSN), from its newest history file.

    None on timeline 1. Needs pg_read_file (a superuser, or a role granted it).
    """
    timeline = primary_position(conn)["timeline"]
    if timeline <= 1:
        return None
    text = query_one(conn, "SELECT pg_read_file(%s) AS text", ("pg_wal/%08X.history" % timeline,))["text"]
    entries = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise PostgresError("the history file of timeline %d is empty: check pg_wal/%08X.history"
                            % (timeline, timeline))
    return {"parent_timeline": int(entries[-1][0]), "lsn": entries[-1][1]}
