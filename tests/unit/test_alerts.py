"""Alertmanager's active alerts and Prometheus' resolved ones, judged as report checks."""

from __future__ import annotations

from ansible_collections.muejam.dbops.plugins.module_utils.alerts import active_alerts, judge, resolved_alerts

AM = [
    {"labels": {"alertname": "RedisInstanceDown", "severity": "critical", "instance": "10.0.0.6:9121"},
     "annotations": {"summary": "Redis on 10.0.0.6 is down", "runbook": "Incident Response / Cache Failure",
                     "playbook": "ansible-playbook muejam.dbops.incident_cache_failure"},
     "startsAt": "2026-12-03T08:00:00Z", "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    {"labels": {"alertname": "HighReplicationLag", "severity": "warning", "instance": "pg2"},
     "annotations": {"summary": "lag 9 s"}, "startsAt": "2026-12-03T07:00:00Z",
     "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    {"labels": {"alertname": "PostgresDown", "severity": "critical"}, "annotations": {},
     "startsAt": "2026-12-03T06:00:00Z", "status": {"state": "suppressed", "silencedBy": ["s1"], "inhibitedBy": []}},
]


def test_active_alerts_leave_out_silenced_and_inhibited_ones_and_sort_oldest_first():
    active = active_alerts(AM)
    assert [a["name"] for a in active] == ["HighReplicationLag", "RedisInstanceDown"]
    assert active[1]["playbook"] == "ansible-playbook muejam.dbops.incident_cache_failure"


def test_a_critical_alert_fails_critically_and_a_warning_only_warns():
    checks = judge(active_alerts(AM), None, [], None, "mon", ["critical"], "24h")
    by_name = {c["check"]: c for c in checks}
    crit, other = by_name["active critical alerts"], by_name["active other alerts"]
    assert (crit["status"], crit["value"], crit["critical"]) == ("fail", 1, True)
    assert "RedisInstanceDown (instance=10.0.0.6:9121)" in crit["reason"]
    assert crit["runbook"] == "Incident Response / Cache Failure"
    assert (other["status"], other["value"], other["critical"]) == ("warn", 1, False)
    assert by_name["alerts resolved in the last 24h"]["status"] == "ok"


def test_no_alert_is_all_ok():
    checks = judge([], None, [], None, "mon", ["critical"], "24h")
    assert [c["status"] for c in checks] == ["ok", "ok", "ok"]


def test_resolved_is_what_fired_in_the_window_and_fires_no_more():
    fired = [{"metric": {"__name__": "ALERTS", "alertname": "RedisInstanceDown", "alertstate": "firing",
                         "instance": "a", "severity": "critical"}, "value": [1, "1"]},
             {"metric": {"__name__": "ALERTS", "alertname": "BackupTooOld", "alertstate": "firing",
                         "severity": "critical"}, "value": [1, "1"]}]
    firing = [{"metric": {"__name__": "ALERTS", "alertname": "BackupTooOld", "alertstate": "firing",
                          "severity": "critical"}, "value": [1, "1"]}]
    seen = [{"metric": {"alertname": "RedisInstanceDown", "alertstate": "firing", "instance": "a",
                        "severity": "critical"}, "value": [1, "1764748800"]}]
    resolved = resolved_alerts(fired, firing, seen)
    assert [(r["name"], r["last_seen"]) for r in resolved] == [("RedisInstanceDown", 1764748800.0)]
    checks = judge([], None, resolved, None, "mon", ["critical"], "24h")
    assert checks[2]["value"] == 1 and "RedisInstanceDown (instance=a)" in checks[2]["reason"]


def test_alertmanager_unreachable_fails_both_active_checks_with_the_reason():
    checks = judge(None, "cannot reach http://mon:9093: Connection refused", None, "no prometheus_url given",
                   "mon", ["critical"], "24h")
    assert [c["status"] for c in checks] == ["fail", "fail", "warn"]
    assert checks[0]["critical"] and "Connection refused" in checks[0]["reason"]
    assert "no prometheus_url" in checks[2]["reason"]
