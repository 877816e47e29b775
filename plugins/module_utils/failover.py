# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deciding a failover: which server becomes primary, what that may lose, and when to refuse.

Pure logic over the state each PostgreSQL host reported; nothing here talks to a server, so every
refusal can be tested on its own.
"""

from __future__ import annotations

from typing import Any

# Arguments of muejam.dbops.pg_failover_plan, shared by the module (documentation, direct use) and the
# action plugin that runs the same logic inside the controller's process.
PLAN_ARGUMENT_SPEC: dict[str, Any] = {
    "nodes": {"type": "list", "elements": "dict", "required": True, "options": {
        "name": {"type": "str", "required": True},
        "reachable": {"type": "bool", "required": True},
        "role": {"type": "str"},
        "timeline": {"type": "int"},
        "current_lsn": {"type": "str"},
        "received_lsn": {"type": "str"},
        "replayed_lsn": {"type": "str"},
        "upstream_host": {"type": "str"},
        "receiver_status": {"type": "str"},
    }},
    "old_primary": {"type": "str", "required": True},
    "candidate": {"type": "str"},
    "max_data_loss_bytes": {"type": "int", "default": 0},
    "force": {"type": "bool", "default": False},
    "accept_unreachable_primary": {"type": "bool", "default": False},
}


def plan_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """plan_failover() with the validated arguments of pg_failover_plan."""
    return plan_failover(params["nodes"], params["old_primary"], params["candidate"], params["max_data_loss_bytes"],
                         params["force"], params["accept_unreachable_primary"])


class FailoverRefused(Exception):
    """The failover would make things worse; the message says what to check."""


def lsn_to_int(lsn: str | None) -> int | None:
    """'16/B374D848' -> 97500059720; None stays None."""
    if not lsn:
        return None
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def most_advanced_lsn(node: dict[str, Any]) -> int | None:
    """The furthest WAL position a node holds: received (flushed) on a standby, current on a primary."""
    positions = [lsn_to_int(node.get(key)) for key in ("current_lsn", "received_lsn", "replayed_lsn")]
    known = [p for p in positions if p is not None]
    return max(known) if known else None


def plan_failover(nodes: list[dict[str, Any]], old_primary: str, candidate: str | None = None,
                  max_data_loss_bytes: int = 0, force: bool = False,
                  accept_unreachable_primary: bool = False) -> dict[str, Any]:
    """Choose the new primary, or raise FailoverRefused.

    nodes: one dict per PostgreSQL host: name, reachable (the host answers, so it can be fenced),
    role ('primary'/'standby', or None when PostgreSQL does not answer there), timeline,
    current_lsn (primary), received_lsn and replayed_lsn (standby), and on a standby its
    upstream_host and receiver_status.
    Returns new_primary, already_promoted, old_primary_reachable, others (hosts other than both
    primaries), following (those already streaming from the new primary on its timeline),
    to_repoint (the reachable others that do not), settled (already promoted and nothing to
    repoint: a second run has nothing to do but fence), lost_bytes_max (upper bound of WAL the
    choice may lose, None when unknowable) and notes.
    """
    by_name = {n["name"]: n for n in nodes}
    if old_primary not in by_name:
        raise FailoverRefused("the old primary %s is not among the PostgreSQL hosts: check the inventory" % old_primary)
    up = [n for n in nodes if n.get("reachable") and n.get("role")]
    primaries = sorted(n["name"] for n in up if n["role"] == "primary")
    standbys = [n for n in up if n["role"] == "standby"]
    old = by_name[old_primary]
    old_reachable = bool(old.get("reachable"))
    promoted = [p for p in primaries if p != old_primary]
    notes: list[str] = []

    if len(promoted) > 1 or (promoted and old_primary in primaries):
        raise FailoverRefused(
            "split brain: %s all accept writes. Stop here: decide which one holds the data you keep, fence "
            "the others (stop them), then run again naming it as candidate" % ", ".join(primaries))

    if promoted:
        new_primary = promoted[0]
        if candidate and candidate != new_primary:
            raise FailoverRefused("%s is already the primary; naming %s would promote a second one. Run again "
                                  "with candidate=%s to finish reconfiguring, or fence it first"
                                  % (new_primary, candidate, new_primary))
        notes.append("%s is already the primary (a previous run promoted it): reconciling only" % new_primary)
        return _plan(new_primary, True, old_reachable, nodes, old_primary, None, notes)

    if not old_reachable and not accept_unreachable_primary:
        raise FailoverRefused(
            "the old primary %s is unreachable, so it cannot be fenced: if it is still running it will keep "
            "accepting writes. Make sure it is down (power off, network cut), then run again with "
            "accept_unreachable_primary=true" % old_primary)
    if not old_reachable:
        notes.append("old primary %s is unreachable and was NOT fenced: the operator accepted that risk"
                     % old_primary)

    if not standbys:
        raise FailoverRefused("no standby is reachable: nothing can be promoted. Check that the replicas are "
                              "running (systemctl status postgresql@*) and reachable from the controller")

    if candidate:
        chosen = by_name.get(candidate)
        valid = "valid candidates (reachable standbys): %s" % ", ".join(n["name"] for n in standbys)
        if chosen is None:
            raise FailoverRefused("candidate %s is not a PostgreSQL host of the inventory; %s" % (candidate, valid))
        if candidate == old_primary:
            raise FailoverRefused("candidate %s is the old primary itself: name one of its replicas; %s"
                                  % (candidate, valid))
        if chosen not in standbys:
            raise FailoverRefused("candidate %s is not a reachable standby (reachable: %s, role: %s); %s"
                                  % (candidate, bool(chosen.get("reachable")), chosen.get("role"), valid))
    else:
        chosen = max(standbys, key=lambda n: (most_advanced_lsn(n) or -1, -_order(nodes, n)))

    lost = _possible_loss(chosen, standbys, old if old_reachable else None)
    if lost and lost > max_data_loss_bytes and not force:
        raise FailoverRefused(
            "promoting %s may lose %d bytes of WAL (limit %d): wait for it to catch up, pick the most "
            "advanced standby, or run again with force=true to accept the loss"
            % (chosen["name"], lost, max_data_loss_bytes))
    if lost:
        notes.append("promoting %s may lose up to %d bytes of WAL" % (chosen["name"], lost))
    return _plan(chosen["name"], False, old_reachable, nodes, old_primary, lost, notes)


def _order(nodes: list[dict[str, Any]], node: dict[str, Any]) -> int:
    return nodes.index(node)


def _possible_loss(chosen: dict[str, Any], standbys: list[dict[str, Any]], old: dict[str, Any] | None) -> int:
    """Bytes between the most advanced position anybody knows of and what the chosen one holds."""
    known = [most_advanced_lsn(n) for n in standbys + ([old] if old else [])]
    best = max(p for p in known if p is not None) if any(p is not None for p in known) else 0
    return max(0, best - (most_advanced_lsn(chosen) or 0))


def follows(node: dict[str, Any], primary: dict[str, Any]) -> bool:
    """A standby that streams from this primary on the primary's timeline (nothing to repoint)."""
    return (node.get("role") == "standby" and node.get("upstream_host") == primary["name"]
            and node.get("receiver_status") == "streaming" and primary.get("role") == "primary"
            and node.get("timeline") is not None and node.get("timeline") == primary.get("timeline"))


def _plan(new_primary: str, already: bool, old_reachable: bool, nodes: list[dict[str, Any]],
          old_primary: str, lost: int | None, notes: list[str]) -> dict[str, Any]:
    others = [n for n in nodes if n["name"] not in (new_primary, old_primary)]
    primary = next(n for n in nodes if n["name"] == new_primary)
    following = [n["name"] for n in others if already and follows(n, primary)]
    to_repoint = [n["name"] for n in others if n.get("reachable") and n["name"] not in following]
    return {
        "new_primary": new_primary,
        "already_promoted": already,
        "old_primary": old_primary,
        "old_primary_reachable": old_reachable,
        "others": [n["name"] for n in others],
        "following": following,
        "to_repoint": to_repoint,
        # Nothing to promote, repoint or verify: the servers already are what a failover would make them.
        "settled": already and not to_repoint,
        "lost_bytes_max": lost,
        "notes": notes,
    }
