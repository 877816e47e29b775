# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's CPU, memory, load and disk I/O from /proc, over a short interval (what `top`, `free` and
`iostat` show), parsed without a server: the parsers take the files' text."""

from __future__ import annotations

import os
import time
from typing import Any, Callable

CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def parse_cpu(stat_text: str) -> dict[str, int]:
    """The aggregate 'cpu' line of /proc/stat, in clock ticks."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:1 + len(CPU_FIELDS)]]
            return dict(zip(CPU_FIELDS, values + [0] * (len(CPU_FIELDS) - len(values))))
    raise ValueError("no aggregate cpu line in /proc/stat")


def cpu_percent(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    delta = {k: after[k] - before[k] for k in CPU_FIELDS}
    total = sum(delta.values()) or 1
    return {"busy": round(100.0 * (total - delta["idle"] - delta["iowait"]) / total, 1),
            "iowait": round(100.0 * delta["iowait"] / total, 1),
            "steal": round(100.0 * delta["steal"] / total, 1)}


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo in bytes."""
    values = {}
    for line in text.splitlines():
        key, dummy, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def memory(meminfo: dict[str, int]) -> dict[str, Any]:
    total = meminfo.get("MemTotal", 0)
    available = meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
    swap_total = meminfo.get("SwapTotal", 0)
    swap_used = swap_total - meminfo.get("SwapFree", 0)
    return {"total_bytes": total, "available_bytes": available,
            "used_percent": round(100.0 * (total - available) / total, 1) if total else 0.0,
            "swap_used_bytes": swap_used}


def parse_diskstats(text: str) -> dict[str, dict[str, int]]:
    """Whole disks of /proc/diskstats (partitions, loop and ram devices left out): sectors and ms busy."""
    disks = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 14:
            continue
        name = f[2]
        if name.startswith(("loop", "ram", "dm-", "sr")) or (name[-1].isdigit() and not name.startswith("nvme")):
            continue
        if name.startswith("nvme") and "p" in name[4:]:
            continue
        disks[name] = {"read_sectors": int(f[5]), "write_sectors": int(f[9]), "io_ms": int(f[12])}
    return disks


def disk_rates(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], seconds: float) -> list[dict]:
    rates = []
    for name in sorted(set(before) & set(after)):
        b, a = before[name], after[name]
        rates.append({"device": name,
                      "read_bytes_per_second": int((a["read_sectors"] - b["read_sectors"]) * 512 / seconds),
                      "write_bytes_per_second": int((a["write_sectors"] - b["write_sectors"]) * 512 / seconds),
                      "util_percent": round(min(100.0, (a["io_ms"] - b["io_ms"]) / (10.0 * seconds)), 1)})
    return rates


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def sample(seconds: float, read: Callable[[str], str] = _read, sleep: Callable[[float], None] = time.sleep,
           cpu_count: int | None = None) -> dict[str, Any]:
    """CPU and disk rates over `seconds`, memory and load now."""
    cpu0, disk0 = parse_cpu(read("/proc/stat")), parse_diskstats(read("/proc/diskstats"))
    sleep(seconds)
    cpu1, disk1 = parse_cpu(read("/proc/stat")), parse_diskstats(read("/proc/diskstats"))
    load = [float(v) for v in read("/proc/loadavg").split()[:3]]
    cpus = cpu_count or os.cpu_count() or 1
    return {"interval_seconds": seconds, "cpus": cpus, "cpu_percent": cpu_percent(cpu0, cpu1),
            "load": {"1m": load[0], "5m": load[1], "15m": load[2], "per_cpu_1m": round(load[0] / cpus, 2)},
            "memory": memory(parse_meminfo(read("/proc/meminfo"))), "disks": disk_rates(disk0, disk1, seconds)}


def checks_of(stats: dict[str, Any], target: str, limits: dict[str, float], runbook: str) -> list[dict[str, Any]]:
    """Report checks: CPU busy, I/O wait, memory used, load per CPU, each against its warn limit."""

    def check(name: str, value: float, limit: float, unit: str, reason: str) -> dict[str, Any]:
        return {"check": name, "target": target, "status": "warn" if value > limit else "ok", "critical": False,
                "value": value, "unit": unit, "threshold": "<= %g%s" % (limit, unit), "reason": reason,
                "runbook": runbook}

    busiest = max(stats["disks"], key=lambda d: d["util_percent"], default=None)
    return [
        check("cpu busy", stats["cpu_percent"]["busy"], limits["cpu_percent"], " %",
              "over %g s, %d CPU(s)" % (stats["interval_seconds"], stats["cpus"])),
        check("cpu iowait", stats["cpu_percent"]["iowait"], limits["iowait_percent"], " %",
              ("busiest disk %s %.0f %% busy" % (busiest["device"], busiest["util_percent"])) if busiest else ""),
        check("memory used", stats["memory"]["used_percent"], limits["memory_percent"], " %",
              "%d MB available" % (stats["memory"]["available_bytes"] // 1048576)),
        check("load per cpu", stats["load"]["per_cpu_1m"], limits["load_per_cpu"], "",
              "load %(1m)s / %(5m)s / %(15m)s" % stats["load"]),
    ]
