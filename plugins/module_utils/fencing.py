# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fence on sight: which of two or more writable PostgreSQL servers is a former primary that came back.

Without a consensus store nothing stops a killed old primary from booting as a primary again on its old
timeline. Every playbook that reaches the PostgreSQL hosts asks this once: a writable server on an older
timeline than the one the application points at is stale and is fenced; anything less clear (also no known
application primary: a server recovered to a point in time is on a newer timeline too) is refused,
because only a person can tell which data to keep. Pure logic over the states the hosts reported.
"""

from __future__ import annotations

from typing import Any

SIGHT_ARGUMENT_SPEC: dict[str, Any] = {
    "nodes": {"type": "list", "elements": "dict", "required": True, "options": {
        "name": {"type": "str", "required": True},
        "address": {"type": "str"},
        "role": {"type": "str"},
        "timeline": {"type": "int"},
        "detached": {"type": "str"},
    }},
    "app_primary": {"type": "str"},
}

KEEP_BY_HAND = ("decide which server holds the data to keep, then make the other one a replica: "
                "playbooks/rejoin.yml -e rejoin=<it> -e pg_failover_rejoin_stop_running_primary=true "
                "(pg_rewind discards what it wrote on its own timeline; dump that first if it matters)")


def _label(node: dict[str, Any]) -> str:
    return "%s (timeline %s)" % (node["name"], node.get("timeline"))


def _named(nodes: list[dict[str, Any]], name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    for node in nodes:
        if name in (node["name"], node.get("address")):
            return node
    return None


def judge_writable(nodes: list[dict[str, Any]], app_primary: str | None = None) -> dict[str, Any]:
    """{'writable', 'keep', 'fence', 'detached', 'refused', 'message'} for the reported states.

    nodes: {'name', 'address' (optional: what the application may call it), 'role' ('primary', 'standby' or
    None when PostgreSQL does not answer), 'timeline', 'detached' (why it left the cluster, or None)}.
    app_primary: the host the application's settings
    name as the primary, when known (its name or address).
    """
    app_node = _named(nodes, app_primary)
    # A server restored from S3 (pg_restore marks it detached) writes on a timeline of its own by design.
    detached = [n for n in nodes if n.get("role") == "primary" and n.get("detached") and n is not app_node]
    writable = [n for n in nodes if n.get("role") == "primary" and n not in detached]
    result: dict[str, Any] = {"writable": [n["name"] for n in writable], "keep": None, "fence": [],
                              "detached": [n["name"] for n in detached], "refused": False, "message": ""}
    if len(writable) <= 1:
        result["keep"] = writable[0]["name"] if writable else None
        return result
    listed = ", ".join(_label(n) for n in writable)
    newest = max(int(n.get("timeline") or 0) for n in writable)
    on_newest = [n for n in writable if int(n.get("timeline") or 0) == newest]

    def refuse(why: str) -> dict[str, Any]:
        result.update(refused=True, message="CRITICAL: %d servers accept writes: %s. %s Nothing was changed: %s."
                      % (len(writable), listed, why, KEEP_BY_HAND))
        return result

    if app_primary and app_node is None:
        return refuse("The application points at %s, which is not one of them." % app_primary)
    if app_node is not None and app_node not in writable:
        return refuse("The application points at %s, which does not accept writes." % app_node["name"])
    if app_node is not None and int(app_node.get("timeline") or 0) < newest:
        return refuse("The application points at %s, on an older timeline than %s."
                      % (_label(app_node), ", ".join(_label(n) for n in on_newest)))
    if app_node is None:
        # A newer timeline alone proves nothing: a server recovered to a point in time promotes onto one too.
        return refuse("The application's primary is not known (no application host, or no primary in its settings).")
    if len(on_newest) > 1:
        return refuse("%s are on the same timeline: no timeline history tells which one is a former primary."
                      % " and ".join(n["name"] for n in on_newest))
    keep = app_node
    fence = [n for n in writable if n is not keep]
    names = ", ".join(n["name"] for n in fence)
    result.update(keep=keep["name"], fence=[n["name"] for n in fence], message=(
        "CRITICAL: %d servers accept writes: %s. %s is the primary%s; %s came back on an older timeline after a "
        "failover (a former primary started unfenced) and must be fenced (playbooks/fence_on_sight.yml: stopped, "
        "its service masked, a standby.signal left; what it wrote since stays in its data directory), then made a "
        "replica: playbooks/rejoin.yml -e rejoin=%s (pg_rewind discards those writes; dump them first if they matter)."
        % (len(writable), listed, keep["name"], " the application uses", names, ",".join(n["name"] for n in fence))))
    return result


def judge_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """judge_writable() with the validated arguments of pg_stale_primary."""
    return judge_writable(params["nodes"], params["app_primary"])
