#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: alertmanager_alerts
short_description: Active alerts from Alertmanager and the alerts resolved lately from Prometheus, as report checks
version_added: "0.4.0"
description:
  - The runbook's "check Alertmanager for active alerts and the last 24 hours' resolved ones", read from the APIs.
  - Active alerts come from Alertmanager's API v2 (C(/api/v2/alerts)), those active, not silenced and not inhibited.
    An active alert whose C(severity) label is one of O(critical_severities) is a failed critical check; any
    other active alert is a warning.
  - Alertmanager keeps no history of resolved alerts, so the resolved ones come from Prometheus' C(ALERTS)
    series (O(prometheus_url)), as each alert series that was firing within O(resolved_window) and is not firing
    now. Without O(prometheus_url) that check is a warning saying so.
  - An unreachable Alertmanager or Prometheus is a failed check with its reason, never a failed task, so the
    other checks of a health report still run.
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
  alertmanager_url:
    description: Base URL of Alertmanager (C(http://mon.example:9093)).
    type: str
    required: true
  prometheus_url:
    description: Base URL of Prometheus, for the alerts resolved within O(resolved_window).
    type: str
  resolved_window:
    description: How far back resolved alerts are reported (a Prometheus duration).
    type: str
    default: 24h
  resolved_step:
    description: Resolution of the last-seen time of a resolved alert (a Prometheus duration).
    type: str
    default: 1m
  critical_severities:
    description: Values of the C(severity) label that make an active alert critical.
    type: list
    elements: str
    default: [critical]
  target:
    description: Name of what is checked, in the report.
    type: str
    default: alertmanager
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 5
"""

EXAMPLES = r"""
- name: Active and recently resolved alerts
  muejam.dbops.alertmanager_alerts:
    alertmanager_url: http://127.0.0.1:9093
    prometheus_url: http://127.0.0.1:9090
  register: alerts
"""

RETURN = r"""
checks:
  description: Report checks (active critical alerts, other active alerts, alerts resolved in the window).
  returned: always
  type: list
  elements: dict
active:
  description: Active alerts (name, severity, labels, summary, runbook, playbook, starts_at); null when unread.
  returned: always
  type: list
  elements: dict
resolved:
  description: Alerts resolved within the window (name, severity, labels, last_seen as a Unix time); null when unread.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.muejam.dbops.plugins.module_utils import alerts
from ansible_collections.muejam.dbops.plugins.module_utils.http_get import fetch_json


def prometheus_vector(base: str, query: str, timeout: float) -> tuple:
    document, error = fetch_json("%s/api/v1/query?query=%s" % (base, quote(query, safe="")), timeout)
    if error is not None:
        return None, error
    if not isinstance(document, dict) or document.get("status") != "success":
        return None, "Prometheus refused %s: %s" % (query, (document or {}).get("error", document))
    return document["data"]["result"], None


def read_resolved(p: dict) -> tuple:
    if not p["prometheus_url"]:
        return None, "no prometheus_url given: Alertmanager keeps no history of resolved alerts"
    base = p["prometheus_url"].rstrip("/")
    vectors = []
    for query in (alerts.FIRED_QUERY % p["resolved_window"], alerts.FIRING_QUERY,
                  alerts.LAST_SEEN_QUERY % (p["resolved_window"], p["resolved_step"])):
        vector, error = prometheus_vector(base, query, p["timeout"])
        if error is not None:
            return None, error
        vectors.append(vector)
    return alerts.resolved_alerts(*vectors), None


def main():
    module = AnsibleModule(argument_spec={
        "alertmanager_url": {"type": "str", "required": True}, "prometheus_url": {"type": "str"},
        "resolved_window": {"type": "str", "default": "24h"}, "resolved_step": {"type": "str", "default": "1m"},
        "critical_severities": {"type": "list", "elements": "str", "default": ["critical"]},
        "target": {"type": "str", "default": "alertmanager"}, "timeout": {"type": "float", "default": 5},
    }, supports_check_mode=True)
    p = module.params
    raw, active_error = fetch_json(p["alertmanager_url"].rstrip("/") + alerts.ACTIVE_PATH, p["timeout"])
    if active_error is None and not isinstance(raw, list):
        raw, active_error = None, "Alertmanager answered %r, not a list of alerts (is this Alertmanager?)" % raw
    active = alerts.active_alerts(raw) if active_error is None else None
    resolved, resolved_error = read_resolved(p)
    checks = alerts.judge(active, active_error, resolved, resolved_error, p["target"], p["critical_severities"],
                          p["resolved_window"])
    module.exit_json(changed=False, checks=checks, active=active, resolved=resolved)


if __name__ == "__main__":
    main()
