#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_stats
short_description: A host's CPU, I/O wait, memory, load and disk throughput from /proc, as report checks
version_added: 0.6.0
description:
  - Reads C(/proc/stat) and C(/proc/diskstats) twice, O(interval_seconds) apart, and C(/proc/meminfo) and
    C(/proc/loadavg) once - what C(top), C(free) and C(iostat) show, without parsing their screens.
  - Returns the figures and report checks that warn above the limits.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  interval_seconds:
    description: How long CPU and disk counters are sampled over.
    type: float
    default: 1.0
  cpu_percent:
    description: CPU busy (user, system, irq, steal; I/O wait not counted) above this warns.
    type: float
    default: 80
  iowait_percent:
    description: CPU time waiting for I/O above this warns.
    type: float
    default: 20
  memory_percent:
    description: Memory in use (total less available) above this warns.
    type: float
    default: 90
  load_per_cpu:
    description: The one-minute load average per CPU above this warns.
    type: float
    default: 2.0
  report_target:
    description: The host's name in the checks (default the host name).
    type: str
    default: ""
  runbook:
    description: The runbook section the checks name.
    type: str
    default: ""
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: CPU, memory and I/O of the database host
  muejam.dbops.host_stats:
    interval_seconds: 2
    runbook: High Database Latency
"""

RETURN = r"""
stats:
  description: cpus, cpu_percent (busy, iowait, steal), load (1m, 5m, 15m, per_cpu_1m), memory (total_bytes,
    available_bytes, used_percent, swap_used_bytes), disks (device, read_bytes_per_second,
    write_bytes_per_second, util_percent).
  returned: success
  type: dict
checks:
  description: Report checks for M(muejam.dbops.health_report).
  returned: success
  type: list
  elements: dict
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.host_stats import checks_of, sample


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "interval_seconds": {"type": "float", "default": 1.0},
            "cpu_percent": {"type": "float", "default": 80},
            "iowait_percent": {"type": "float", "default": 20},
            "memory_percent": {"type": "float", "default": 90},
            "load_per_cpu": {"type": "float", "default": 2.0},
            "report_target": {"type": "str", "default": ""},
            "runbook": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not 0 < params["interval_seconds"] <= 60:
        module.fail_json(msg="interval_seconds must be in (0, 60]")
    try:
        stats = sample(params["interval_seconds"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg="could not read /proc on this host (%s): host_stats needs Linux" % exc)
    limits = {k: params[k] for k in ("cpu_percent", "iowait_percent", "memory_percent", "load_per_cpu")}
    module.exit_json(changed=False, stats=stats,
                     checks=checks_of(stats, params["report_target"] or socket.gethostname(), limits,
                                      params["runbook"]))


if __name__ == "__main__":
    main()
