# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state of a Redis Cluster as a report: state, slot coverage, open slots, every node.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cluster_plan import (
    CLUSTER_SLOTS,
    format_slot_ranges,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    ClusterSession,
    reply_text,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_topology import (
    ClusterNode,
    ClusterTopology,
    RedisClusterError,
    check_findings,
    parse_info_text,
)

# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def cluster_report(session: ClusterSession, wait_seconds: float = 0) -> dict[str, Any]:
    """Everything redis_cluster_info returns: state, coverage, open slots, nodes, check findings."""
    topology = session.load_agreed(wait_seconds)
    cluster_info = parse_info_text(reply_text(session.command(session.entry_address, "CLUSTER", "INFO")))
    nodes = [_node_report(session, topology, node) for node in topology.nodes]
    findings = check_findings(topology)
    uncovered = topology.uncovered_slots()
    return {
        "changed": False,
        "cluster_state": cluster_info.get("cluster_state"),
        "cluster_info": cluster_info,
        "entry_node": topology.entry_id,
        "slots": {"covered": CLUSTER_SLOTS - len(uncovered), "uncovered": len(uncovered),
                  "uncovered_ranges": format_slot_ranges(uncovered), "all_covered": not uncovered},
        "open_slots": [{"slot": m.slot, "node_id": m.node_id, "address": topology.node(m.node_id).address,
                        "state": m.state, "peer_id": m.peer_id} for m in topology.open_slots()],
        "masters": len(topology.masters()),
        "replicas": len(topology.nodes) - len(topology.masters()),
        "keys": sum(n["keys"] or 0 for n in nodes if n["role"] == "master"),
        "nodes": nodes,
        "check": {"ok": not findings, "findings": findings},
    }


def _node_report(session: ClusterSession, topology: ClusterTopology, node: ClusterNode) -> dict[str, Any]:
    slots = topology.slots_of(node.node_id)
    report: dict[str, Any] = {
        "node_id": node.node_id, "address": node.address, "host": node.host, "port": node.port,
        "hostname": node.hostname or None, "role": "replica" if node.is_replica else "master",
        "master_id": node.master_id, "flags": sorted(node.flags - {"myself"}), "link_state": node.link_state,
        "config_epoch": node.config_epoch, "slots": len(slots), "slot_ranges": format_slot_ranges(slots),
        "replicas": [r.node_id for r in topology.replicas_of(node.node_id)],
        "reachable": node.node_id in topology.views, "keys": None, "used_memory": None, "used_memory_human": None,
    }
    if report["reachable"]:
        try:
            report["keys"] = int(session.command(node, "DBSIZE"))
            memory = session.command(node, "INFO", "memory")
            report["used_memory"] = int(memory.get("used_memory", 0))
            report["used_memory_human"] = memory.get("used_memory_human")
        except RedisClusterError as exc:
            report["reachable"] = False
            report["error"] = str(exc)
    return report


RUNBOOK_CACHE = "Incident Response / Cache Failure"


def report_checks(report: dict[str, Any], target: str, playbook: str = "") -> list[dict[str, Any]]:
    """cluster_report's result as report checks (module_utils/report.py): the cluster state and slot coverage
    (critical), the nodes (a failed or unreachable master fails; a replica down or another finding of
    `redis-cli --cluster check` is a warning while every slot is served)."""
    base = {"target": target, "critical": True, "runbook": RUNBOOK_CACHE, "playbook": playbook, "unit": ""}
    state = report["cluster_state"]
    slots = report["slots"]
    checks = [
        dict(base, check="redis cluster state", value=state, threshold="ok", status="ok" if state == "ok" else "fail",
             reason="" if state == "ok" else "CLUSTER INFO says cluster_state:%s" % state),
        dict(base, check="redis slot coverage", value=slots["covered"], threshold="%d slots" % CLUSTER_SLOTS,
             status="ok" if slots["all_covered"] else "fail",
             reason="" if slots["all_covered"] else "%d slots uncovered (%s)" % (
                 slots["uncovered"], ",".join(slots["uncovered_ranges"]))),
    ]
    down = [n for n in report["nodes"] if not n["reachable"] or "fail" in n["flags"] or "fail?" in n["flags"]]
    masters_down = [n for n in down if n["role"] == "master" and n["slots"]]
    others = [f["message"] for f in report["check"]["findings"]
              if f["code"] not in ("node_unreachable", "node_failed", "slots_uncovered")]
    reasons = ["%s %s is %s" % (n["role"], n["address"], "unreachable" if not n["reachable"] else
                                "flagged " + ",".join(f for f in n["flags"] if f.startswith("fail")))
               for n in down] + others
    status = "fail" if masters_down or not slots["all_covered"] else ("warn" if reasons else "ok")
    up = "%d/%d" % (len(report["nodes"]) - len(down), len(report["nodes"]))
    checks.append(dict(base, check="redis nodes up", value=up,
                       threshold="all reachable, none failed", status=status, reason="; ".join(reasons)))
    return checks
