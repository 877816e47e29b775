"""host_stats' parsers on the text of real /proc files (samples taken on a Debian host) and on this
machine's own /proc, which the test reads for real."""

from __future__ import annotations

import os

from ansible_collections.muejam.dbops.plugins.module_utils import host_stats as hs

STAT_0 = "cpu  1000 0 500 8000 100 0 0 0 0 0\ncpu0 500 0 250 4000 50 0 0 0 0 0\n"
STAT_1 = "cpu  1600 0 700 8600 300 0 0 0 0 0\ncpu0 800 0 350 4300 150 0 0 0 0 0\n"
DISK_0 = (" 254       0 vda 100 0 2000 0 50 0 4000 0 0 1000 0 0 0 0 0\n"
          " 254       1 vda1 100 0 2000 0 50 0 4000 0 0 1000 0 0 0 0 0\n"
          "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
DISK_1 = (" 254       0 vda 200 0 4048 0 90 0 8096 0 0 1500 0 0 0 0 0\n"
          " 254       1 vda1 200 0 4048 0 90 0 8096 0 0 1500 0 0 0 0 0\n")
MEMINFO = "MemTotal:       1000000 kB\nMemFree:         100000 kB\nMemAvailable:    250000 kB\n" \
          "SwapTotal:       10 kB\nSwapFree:        4 kB\n"


def test_cpu_busy_and_iowait_over_the_interval():
    assert hs.cpu_percent(hs.parse_cpu(STAT_0), hs.parse_cpu(STAT_1)) == {"busy": 50.0, "iowait": 12.5,
                                                                          "steal": 0.0}


def test_whole_disks_only_and_their_rates():
    before, after = hs.parse_diskstats(DISK_0), hs.parse_diskstats(DISK_1)
    assert list(before) == ["vda"]
    [vda] = hs.disk_rates(before, after, 2.0)
    assert vda == {"device": "vda", "read_bytes_per_second": 524288, "write_bytes_per_second": 1048576,
                   "util_percent": 25.0}


def test_memory_and_checks():
    mem = hs.memory(hs.parse_meminfo(MEMINFO))
    assert mem["used_percent"] == 75.0 and mem["swap_used_bytes"] == 6 * 1024
    files = {"/proc/stat": [STAT_0, STAT_1], "/proc/diskstats": [DISK_0, DISK_1], "/proc/loadavg": ["9.00 4 2 1/2 3"],
             "/proc/meminfo": [MEMINFO]}
    stats = hs.sample(2.0, read=lambda p: files[p].pop(0), sleep=lambda s: None, cpu_count=4)
    checks = {c["check"]: c for c in hs.checks_of(stats, "pg1", {"cpu_percent": 40, "iowait_percent": 20,
                                                                 "memory_percent": 90, "load_per_cpu": 2.0}, "x")}
    assert checks["cpu busy"]["status"] == "warn" and checks["cpu iowait"]["status"] == "ok"
    assert checks["load per cpu"]["value"] == 2.25 and checks["load per cpu"]["status"] == "warn"
    assert checks["memory used"]["status"] == "ok"


def test_this_machines_proc_reads():
    stats = hs.sample(0.2)
    assert stats["cpus"] == os.cpu_count()
    assert 0 <= stats["cpu_percent"]["busy"] <= 100
    assert stats["memory"]["total_bytes"] > 0
