#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_health
short_description: Judge an application's health endpoint and metrics JSON against thresholds
version_added: "0.4.0"
description:
  - Reads the application's health URL and its metrics JSON (the runbook's C(curl /health) and
    C(curl /metrics/json)) and judges each configured figure, found by its JSON path, against its limits.
  - Returns report checks (the shape of the collection's report machinery) with status C(ok), C(warn) or
    C(fail), the value, the threshold and the reason. An unreachable URL, an HTTP error or a path missing from
    the JSON is a failed check with its reason, never a failed task, so that the other checks still run and the
    report is still written.
  - Runs where the URLs are reachable, usually on the application host itself (C(http://127.0.0.1:8000)).
author:
  - muejam.dbops developers (@muejam)
extends_documentation_fragment:
  - muejam.dbops.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; it runs in check mode too.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  health_url:
    description: URL of the health endpoint; a check fails unless it answers HTTP 200.
    type: str
    required: true
  metrics_url:
    description: URL of the metrics JSON. Without it only the health endpoint is checked.
    type: str
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 5
  target:
    description: Name of what is checked, in the report (default the host's name as the caller gives it).
    type: str
    default: application
  checks:
    description:
      - The figures to judge. A limit left out is not checked.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the check in the report.
        type: str
        required: true
      path:
        description: Dotted JSON path, with C([n]) for list items (C(connection_pool.utilization)).
        type: str
        required: true
      unit:
        description: Unit shown beside the value.
        type: str
        default: ""
      scale:
        description: Factor applied to the value first (C(100) turns a 0-1 ratio into percent).
        type: float
        default: 1
      fail_above:
        description: Fail when the value is above this.
        type: float
      fail_below:
        description: Fail when the value is below this.
        type: float
      warn_above:
        description: Warn when the value is above this.
        type: float
      warn_below:
        description: Warn when the value is below this.
        type: float
      critical:
        description: Whether a failure of this check fails the run (a warning never does).
        type: bool
        default: true
      runbook:
        description: Runbook section to read when the check is not ok.
        type: str
        default: ""
      playbook:
        description: Playbook to run when the check is not ok.
        type: str
        default: ""
  values:
    description:
      - Figures to return as they are, a name for each JSON path (C(errors) for C(requests.errors)), to compare
        two readings (the 5xx answered during an incident run, for instance). A path missing from the JSON gives null.
    type: dict
    default: {}
  health_runbook:
    description: Runbook section named when the health endpoint fails.
    type: str
    default: Incident Response
  health_playbook:
    description: Playbook named when the health endpoint fails.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: The runbook's application checks
  muejam.dbops.app_health:
    health_url: http://127.0.0.1:8000/health
    metrics_url: http://127.0.0.1:8000/metrics/json
    target: "{{ inventory_hostname }}"
    checks:
      - {name: pool utilisation, path: connection_pool.utilization, unit: "%", warn_below: 40, warn_above: 70,
         fail_above: 95}
      - {name: cache hit rate, path: cache.hit_rate, unit: "%", fail_below: 70}
  register: app_checks
"""

RETURN = r"""
checks:
  description: One report check for the health endpoint, then one per configured figure.
  returned: always
  type: list
  elements: dict
  sample: [{check: cache hit rate, target: app, status: fail, value: 41.5, unit: "%", threshold: "fail < 70 %",
            reason: "41.5 % < 70 %", critical: true, runbook: "", playbook: ""}]
health:
  description: The health endpoint's answer (status code, parsed JSON when it is JSON, error).
  returned: always
  type: dict
metrics:
  description: The metrics JSON as read (null when it could not be read).
  returned: always
  type: dict
values:
  description: The figures of O(values), by name; null for a path missing or metrics not read.
  returned: always
  type: dict
  sample: {"errors": 0, "cache_errors": 12}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.app_health import judge, values_at
from ansible_collections.muejam.dbops.plugins.module_utils.http_get import fetch, fetch_json, parse


def main():
    check_spec = {"name": {"type": "str", "required": True}, "path": {"type": "str", "required": True},
                  "unit": {"type": "str", "default": ""}, "scale": {"type": "float", "default": 1},
                  "fail_above": {"type": "float"}, "fail_below": {"type": "float"},
                  "warn_above": {"type": "float"}, "warn_below": {"type": "float"},
                  "critical": {"type": "bool", "default": True}, "runbook": {"type": "str", "default": ""},
                  "playbook": {"type": "str", "default": ""}}
    module = AnsibleModule(argument_spec={
        "health_url": {"type": "str", "required": True}, "metrics_url": {"type": "str"},
        "timeout": {"type": "float", "default": 5}, "target": {"type": "str", "default": "application"},
        "checks": {"type": "list", "elements": "dict", "default": [], "options": check_spec},
        "values": {"type": "dict", "default": {}},
        "health_runbook": {"type": "str", "default": "Incident Response"},
        "health_playbook": {"type": "str", "default": ""},
    }, supports_check_mode=True)
    p = module.params
    code, body, error = fetch(p["health_url"], p["timeout"])
    metrics, metrics_error = None, None
    if p["metrics_url"]:
        metrics, metrics_error = fetch_json(p["metrics_url"], p["timeout"])
        if metrics_error is None and not isinstance(metrics, dict):
            metrics, metrics_error = None, "%s did not answer a JSON object" % p["metrics_url"]
    checks = judge((code, body, error, p["health_url"]), (metrics, metrics_error),
                   p["checks"] if p["metrics_url"] else [], p["target"], p["health_runbook"], p["health_playbook"])
    module.exit_json(changed=False, checks=checks, metrics=metrics, values=values_at(metrics, p["values"]),
                     health={"status": code, "json": parse(body), "error": error})


if __name__ == "__main__":
    main()
