# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache side of the runbook: one node's health (PING, INFO), an emergency flush of every
master of a cluster, and warming keys into the masters that own their slots, rate-limited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cluster_plan import CLUSTER_SLOTS
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    ClusterSession,
    refuse_unsafe_cluster,
    reply_text,
)
from ansible_collections.muejam.dbops.plugins.module_utils.redis_topology import (
    ClusterTopology,
    RedisClusterError,
)

RUNBOOK_CACHE = "Incident Response / Cache Failure"
RUNBOOK_FLUSH = "Emergency Procedures / Emergency Cache Flush"

# The INFO fields a person reads first, per section (the whole sections are returned too).
SUMMARY_FIELDS = {
    "server": ("redis_version", "uptime_in_seconds"),
    "memory": ("used_memory_human", "maxmemory_human", "maxmemory_policy", "mem_fragmentation_ratio"),
    "clients": ("connected_clients", "blocked_clients"),
    "stats": ("keyspace_hits", "keyspace_misses", "evicted_keys", "rejected_connections"),
    "persistence": ("rdb_last_bgsave_status", "aof_enabled", "aof_last_write_status"),
    "replication": ("role", "master_link_status"),
}


# --------------------------------------------------------------------------------------------
# Key slots (the cluster specification's CRC16-XMODEM of the key or of its {hash tag}, mod 16384)
# --------------------------------------------------------------------------------------------


def _crc16_step(crc: int, dummy_bit: int) -> int:
    return ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)


_CRC16 = [reduce(_crc16_step, range(8), byte << 8) & 0xFFFF for byte in range(256)]


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: bytes | str) -> int:
    """The slot of a key: only the part between the first { and the next } counts, when not empty."""
    data = key.encode("utf-8") if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return crc16(data) % CLUSTER_SLOTS


# --------------------------------------------------------------------------------------------
# One node
# --------------------------------------------------------------------------------------------


def node_health(session: ClusterSession, sections: Sequence[str], memory_warn_percent: float) -> dict[str, Any]:
    """PING and INFO of the entry node; its place in a cluster when it runs in cluster mode.

    An unreachable node is a result (reachable false, with the reason), not an error: the caller
    is diagnosing an outage.
    """
    address = session.entry_address
    started = time.monotonic()
    try:
        session.command(address, "PING")
    except RedisClusterError as exc:
        return {"address": address, "reachable": False, "error": str(exc), "ping_ms": None, "info": {},
                "summary": {}, "cluster_enabled": None, "cluster": None, "problems": [str(exc)]}
    ping_ms = round((time.monotonic() - started) * 1000.0, 2)
    info = {section: session.command(address, "INFO", section)
            for section in dict.fromkeys(["server", "replication", "cluster"] + list(sections))}
    summary = {field: info[section].get(field)
               for section, fields in SUMMARY_FIELDS.items() if section in info for field in fields}
    enabled = bool(int(info["cluster"].get("cluster_enabled", 0)))
    cluster = _cluster_place(session, address) if enabled else None
    result = {"address": address, "reachable": True, "error": None, "ping_ms": ping_ms, "info": info,
              "summary": summary, "cluster_enabled": enabled, "cluster": cluster}
    result["problems"] = node_problems(result, memory_warn_percent)
    return result


def _cluster_place(session: ClusterSession, address: str) -> dict[str, Any]:
    nodes = session.cluster_nodes(address)
    myself = next(node for node in nodes if node.myself)
    state = reply_text(session.command(address, "CLUSTER", "INFO"))
    cluster_state = next((line.split(":", 1)[1].strip() for line in state.splitlines()
                          if line.startswith("cluster_state:")), None)
    master = next((node for node in nodes if node.node_id == myself.master_id), None)
    return {"node_id": myself.node_id, "role": "replica" if myself.is_replica else "master",
            "master_id": myself.master_id, "master_address": master.address if master else None,
            "slots": len(myself.slots), "cluster_state": cluster_state, "known_nodes": len(nodes),
            "failed_peers": sorted(node.address for node in nodes if node.failed and not node.myself)}


def node_problems(result: Mapping[str, Any], memory_warn_percent: float) -> list[str]:
    """What a person must look at on a reachable node, in words (empty when nothing)."""
    problems = []
    memory = result["info"].get("memory", {})
    maxmemory = int(memory.get("maxmemory") or 0)
    if maxmemory and int(memory.get("used_memory") or 0) * 100.0 / maxmemory > memory_warn_percent:
        problems.append("memory %s of maxmemory %s (over %g %%; policy %s)" % (
            memory.get("used_memory_human"), memory.get("maxmemory_human"), memory_warn_percent,
            memory.get("maxmemory_policy")))
    persistence = result["info"].get("persistence", {})
    for field in ("rdb_last_bgsave_status", "aof_last_write_status"):
        if persistence.get(field) not in (None, "ok"):
            problems.append("%s is %s (check the disk and the server log)" % (field, persistence[field]))
    replication = result["info"].get("replication", {})
    if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
        problems.append("its link to the master is %s" % replication.get("master_link_status"))
    cluster = result.get("cluster")
    if cluster and cluster["cluster_state"] != "ok":
        problems.append("it says cluster_state:%s" % cluster["cluster_state"])
    return problems


def node_check(result: Mapping[str, Any], target: str, playbook: str = "") -> dict[str, Any]:
    """node_health's result as one report check: down or cluster_state fail is a failure, another problem a warning."""
    check = {"check": "redis node", "target": target, "unit": "", "critical": True, "runbook": RUNBOOK_CACHE,
             "playbook": playbook, "threshold": "answers PING; cluster_state ok"}
    if not result["reachable"]:
        return dict(check, value="not answering", status="fail", reason=result["error"])
    summary, cluster = result["summary"], result["cluster"]
    if cluster:
        place = ("replica of %s" % (cluster["master_address"] or cluster["master_id"])
                 if cluster["role"] == "replica" else "master, %d slots" % cluster["slots"])
    else:
        place = "standalone (%s)" % (summary.get("role") or "?")
    value = "%s; %s used; %s clients; %s ms" % (
        place, summary.get("used_memory_human"), summary.get("connected_clients"), result["ping_ms"])
    problems = result["problems"]
    failing = cluster is not None and cluster["cluster_state"] != "ok"
    return dict(check, value=value, status="fail" if failing else ("warn" if problems else "ok"),
                reason="; ".join(problems))


# --------------------------------------------------------------------------------------------
# Flushing every master
# --------------------------------------------------------------------------------------------


def _key_counts(session: ClusterSession, topology: ClusterTopology) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    for node in topology.nodes:
        try:
            counts[node.address] = int(session.command(node, "DBSIZE")) if node.node_id in topology.views else None
        except RedisClusterError:
            counts[node.address] = None
    return counts


def flush_cluster(session: ClusterSession, check_mode: bool, wait_seconds: float) -> dict[str, Any]:
    """FLUSHALL ASYNC on every master (replicas follow through replication); keys before and after.

    Refuses, flushing nothing, while a master that holds slots is failed or unreachable (its keys
    would survive and come back with it) or while slots are uncovered or open.
    """
    topology = session.load()
    refuse_unsafe_cluster(topology, allow_open_slots=False, doing="flush", done="flushed")
    masters = topology.usable_masters()
    before = _key_counts(session, topology)
    result: dict[str, Any] = {"masters": [m.address for m in masters], "keys_before": before,
                              "keys_before_total": sum(before[m.address] or 0 for m in masters)}
    if check_mode:
        return dict(result, changed=bool(masters), flushed=[], keys_after=before,
                    keys_after_total=result["keys_before_total"])
    flushed = []
    for master in masters:
        reply = session.command(master, "FLUSHALL", "ASYNC")
        if reply is not True and reply_text(reply) != "OK":
            raise RedisClusterError("FLUSHALL ASYNC on %s answered %r; flushed so far: %s" % (
                master.address, reply, ", ".join(flushed) or "none"))
        flushed.append(master.address)
    deadline = time.monotonic() + wait_seconds
    after = _key_counts(session, topology)
    while any(after.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
        after = _key_counts(session, topology)
    return dict(result, changed=True, flushed=flushed, keys_after=after,
                keys_after_total=sum(after[m.address] or 0 for m in masters))


# --------------------------------------------------------------------------------------------
# Warming
# --------------------------------------------------------------------------------------------


def warm_keys(session: ClusterSession, items: Sequence[Mapping[str, Any]], options: Mapping[str, Any],
              check_mode: bool, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """SET key value EX ttl (NX unless overwrite) on the master of each key's slot, in batches of
    batch_size, no faster than rate keys a second (0: no limit). Keys whose slot no master serves
    are skipped and counted; a key a master refuses (MOVED while slots move, OOM) is counted with the
    first reasons, and the others still go."""
    topology = session.load()
    owners = topology.slot_owners()
    ttl, rate, batch_size = options["ttl"], options["rate"], max(1, options["batch_size"])
    result: dict[str, Any] = {"keys": len(items), "warmed": 0, "existing": 0, "uncovered": 0, "refused": 0,
                              "errors": [], "batches": 0}
    started = time.monotonic()
    for first in range(0, len(items), batch_size):
        by_owner: dict[str, list[tuple[str, list[Any]]]] = {}
        for item in items[first:first + batch_size]:
            key = str(item["key"])
            owner = owners.get(key_slot(key))
            if owner is None:
                result["uncovered"] += 1
                continue
            command: list[Any] = ["SET", key, item["value"], "EX", int(item.get("ttl") or ttl)]
            if not options["overwrite"]:
                command.append("NX")
            by_owner.setdefault(owner.node_id, []).append((key, command))
        if not check_mode:
            for node_id, entries in by_owner.items():
                replies = session.pipeline(topology.node(node_id), [command for dummy, command in entries])
                _count_replies(result, [key for key, dummy in entries], replies, session)
        else:
            result["warmed"] += sum(len(entries) for entries in by_owner.values())
        result["batches"] += 1
        if rate and not check_mode:
            ahead = (first + batch_size) / float(rate) - (time.monotonic() - started)
            if ahead > 0 and first + batch_size < len(items):
                sleep(ahead)
    result["seconds"] = round(time.monotonic() - started, 3)
    result["changed"] = result["warmed"] > 0
    return result


def _count_replies(result: dict[str, Any], keys: Sequence[str], replies: Sequence[Any],
                   session: ClusterSession) -> None:
    for key, reply in zip(keys, replies):
        if isinstance(reply, Exception):
            result["refused"] += 1
            if len(result["errors"]) < 5:
                result["errors"].append("%s: %s" % (key, session.error_text(reply)))
        elif reply is None:
            result["existing"] += 1
        else:
            result["warmed"] += 1
