# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alertmanager's active alerts and Prometheus' recently resolved ones, judged as report checks.

Active alerts come from Alertmanager's API v2 (``GET /api/v2/alerts?active=true&silenced=false&inhibited=false``):
what would page someone now. Alertmanager forgets a resolved alert once it is resolved, so the alerts resolved
in the last hours come from Prometheus' own ``ALERTS`` series: a series that was ``firing`` within the window and
is not firing now was resolved in it.
"""

from __future__ import annotations

ACTIVE_PATH = "/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=false"
# Every alert series that fired within the window (raw samples, so an alert firing for a few seconds counts),
# and when it was last seen firing (a subquery: exact to its step).
FIRED_QUERY = 'max_over_time(ALERTS{alertstate="firing"}[%s])'
LAST_SEEN_QUERY = 'max_over_time(timestamp(ALERTS{alertstate="firing"})[%s:%s])'
FIRING_QUERY = 'ALERTS{alertstate="firing"}'
_IGNORED_LABELS = ("__name__", "alertstate")


def alert_key(labels: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in _IGNORED_LABELS))


def describe(labels: dict) -> str:
    """RedisInstanceDown (instance=10.0.0.3:9121): the name and the labels that say where."""
    where = ", ".join("%s=%s" % (k, labels[k]) for k in ("instance", "application_name", "job") if labels.get(k))
    return "%s (%s)" % (labels.get("alertname", "?"), where) if where else labels.get("alertname", "?")


def active_alerts(raw: list) -> list[dict]:
    """Alertmanager's answer, as {name, severity, labels, summary, runbook, playbook, starts_at}, oldest first."""
    out = []
    for alert in raw or []:
        status = alert.get("status") or {}
        if status.get("state", "active") != "active" or status.get("silencedBy") or status.get("inhibitedBy"):
            continue  # asked for with filters; checked again so that an older Alertmanager cannot mislead
        labels = alert.get("labels") or {}
        notes = alert.get("annotations") or {}
        out.append({"name": labels.get("alertname", "?"), "severity": labels.get("severity", "none"),
                    "labels": labels, "summary": notes.get("summary") or notes.get("description") or "",
                    "runbook": notes.get("runbook") or notes.get("runbook_url") or "",
                    "playbook": notes.get("playbook") or "", "starts_at": alert.get("startsAt") or ""})
    return sorted(out, key=lambda a: (a["starts_at"], a["name"]))


def resolved_alerts(fired: list, firing: list, last_seen: list) -> list[dict]:
    """Prometheus vectors (the results of FIRED_QUERY, FIRING_QUERY, LAST_SEEN_QUERY) -> resolved alerts."""
    now = {alert_key(s.get("metric") or {}) for s in firing or []}
    seen = {alert_key(s.get("metric") or {}): float(s["value"][1]) for s in last_seen or [] if s.get("value")}
    out = []
    for series in fired or []:
        labels = {k: v for k, v in (series.get("metric") or {}).items() if k not in _IGNORED_LABELS}
        key = alert_key(labels)
        if key in now:
            continue
        out.append({"name": labels.get("alertname", "?"), "severity": labels.get("severity", "none"),
                    "labels": labels, "last_seen": seen.get(key)})
    return sorted(out, key=lambda a: (-(a["last_seen"] or 0), a["name"]))


def _base(check: str, target: str, threshold: str, critical: bool) -> dict:
    return {"check": check, "target": target, "unit": "", "threshold": threshold, "critical": critical,
            "runbook": "", "playbook": "", "value": None}


def _todo(alerts: list[dict], key: str) -> str:
    seen = []
    for alert in alerts:
        if alert[key] and alert[key] not in seen:
            seen.append(alert[key])
    return "; ".join(seen)


def judge(active: list[dict] | None, active_error: str | None, resolved: list[dict] | None,
          resolved_error: str | None, target: str, critical_severities: list[str], window: str) -> list[dict]:
    """Three checks: active critical alerts (critical), other active alerts (warn), alerts resolved in the window."""
    checks = []
    critical = _base("active critical alerts", target, "none (severity %s)" % "/".join(critical_severities), True)
    others = _base("active other alerts", target, "none", False)
    if active_error is not None:
        reason = "cannot read Alertmanager's active alerts: %s" % active_error
        checks += [dict(critical, status="fail", reason=reason), dict(others, status="fail", reason=reason)]
    else:
        paging = [a for a in active if a["severity"] in critical_severities]
        rest = [a for a in active if a["severity"] not in critical_severities]
        for check, alerts, bad in ((critical, paging, "fail"), (others, rest, "warn")):
            check.update(value=len(alerts), status=bad if alerts else "ok",
                         reason="; ".join("%s since %s%s" % (describe(a["labels"]), a["starts_at"],
                                                             ": " + a["summary"] if a["summary"] else "")
                                          for a in alerts),
                         runbook=_todo(alerts, "runbook"), playbook=_todo(alerts, "playbook"))
            checks.append(check)
    recent = _base("alerts resolved in the last %s" % window, target, "reported only", False)
    if resolved_error is not None:
        checks.append(dict(recent, status="warn", reason="cannot read resolved alerts: %s" % resolved_error))
    else:
        checks.append(dict(recent, value=len(resolved), status="ok",
                           reason="; ".join(describe(a["labels"]) for a in resolved)))
    return checks
