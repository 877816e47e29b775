"""The shared report machinery: statuses, the run's verdict, changes since the previous report, renderers."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.report import (
    build_report,
    render_html,
    render_json,
    render_markdown,
    render_text,
)

CHECKS = [
    {"check": "replication lag", "target": "pg2", "status": "ok", "value": 0.4, "unit": "s", "threshold": "< 2 s",
     "critical": True},
    {"check": "pool utilisation", "target": "app", "status": "warn", "value": 12.0, "unit": "%",
     "threshold": "40-70 %", "reason": "pool oversized (12 % < 40 %)", "critical": False,
     "runbook": "Morning Health Check", "playbook": "playbooks/incident_connections.yml"},
    {"check": "cache hit rate", "target": "app", "status": "fail", "value": 41.5, "unit": "%", "threshold": "> 70 %",
     "reason": "41.5 % < 70 %", "critical": True, "runbook": "Cache Failure", "playbook": "playbooks/cache_warm.yml"},
]


def test_verdict_counts_and_the_critical_failures():
    report = build_report("Morning health check", "2026-12-03T09:00:00Z", CHECKS)
    assert report["status"] == "fail"
    assert report["counts"] == {"ok": 1, "warn": 1, "fail": 1}
    assert report["failed_critical"] == ["cache hit rate @ app"]


def test_a_warning_alone_is_not_a_critical_failure():
    report = build_report("t", "now", CHECKS[:2])
    assert report["status"] == "warn" and report["failed_critical"] == []


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="use one of ok, warn, fail"):
        build_report("t", "now", [{"check": "x", "status": "green"}])


def test_change_since_the_previous_report_for_compared_checks_only():
    previous = build_report("t", "yesterday", [dict(CHECKS[0], value=1.5), dict(CHECKS[2], value=80.0)])
    report = build_report("t", "today", CHECKS, previous=json.loads(render_json(previous)),
                          compared=["replication lag"])
    assert report["changes"] == [{"check": "replication lag", "target": "pg2", "unit": "s", "before": 1.5,
                                  "now": 0.4, "change": -1.1}]
    assert report["previous_generated_at"] == "yesterday"


def test_text_and_markdown_name_what_to_do_for_each_check_not_ok():
    report = build_report("Morning health check", "now", CHECKS)
    text = render_text(report)
    assert "FAIL cache hit rate @ app: 41.5 % < 70 %" in text
    assert "run: playbooks/cache_warm.yml" in text
    assert "playbooks/cache_warm.yml" in render_markdown(report)
    assert "| FAIL (critical) | cache hit rate | app | 41.5% |" in render_markdown(report)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.external = []
        self.rows = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "link", "img") or any(v and "://" in v for v in attrs.values()):
            self.external.append((tag, attrs))
        if tag == "tr" and "data-check" in attrs:
            self.rows.append((attrs["data-check"], attrs["class"]))


def test_html_is_self_contained_and_escaped():
    report = build_report("<Morning>", "now", CHECKS + [dict(CHECKS[0], target="<script>x</script>")])
    page = render_html(report)
    parser = _Collect()
    parser.feed(page)
    assert parser.external == []
    assert ("cache hit rate", "fail") in parser.rows and ("pool utilisation", "warn") in parser.rows
    assert "<script>x" not in page


def _params(dest, checks, **over):
    params = {"title": "Morning health check", "checks": checks, "dest": str(dest), "basename": "morning",
              "formats": ["md", "json", "html"], "compared": ["cache hit rate"], "notes": [], "keep": 2,
              "unreachable": []}
    params.update(over)
    return params


def test_written_report_compares_with_the_previous_one_and_keeps_the_newest(tmp_path):
    from ansible_collections.muejam.dbops.plugins.module_utils.report import write_report

    first = write_report(_params(tmp_path, CHECKS), "2026-12-01T09:00:00Z")
    assert first["report"]["changes"] == []
    better = [dict(c, value=80.0, status="ok") if c["check"] == "cache hit rate" else c for c in CHECKS]
    write_report(_params(tmp_path, better), "2026-12-02T09:00:00Z")
    third = write_report(_params(tmp_path, better, unreachable=["redis3"]), "2026-12-03T09:00:00Z")
    assert third["report"]["changes"] == [{"check": "cache hit rate", "target": "app", "unit": "%", "before": 80.0,
                                           "now": 80.0, "change": 0.0}]
    assert third["report"]["previous_generated_at"] == "2026-12-02T09:00:00Z"
    assert third["report"]["failed_critical"] == ["host reachable @ redis3"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["morning-20261202T090000Z.html", "morning-20261202T090000Z.json", "morning-20261202T090000Z.md",
                     "morning-20261203T090000Z.html", "morning-20261203T090000Z.json", "morning-20261203T090000Z.md",
                     "morning-latest.html", "morning-latest.json", "morning-latest.md"]
    assert json.loads((tmp_path / "morning-latest.json").read_text())["generated_at"] == "2026-12-03T09:00:00Z"


def test_second_report_shows_the_change_of_a_number(tmp_path):
    from ansible_collections.muejam.dbops.plugins.module_utils.report import write_report

    write_report(_params(tmp_path, CHECKS), "2026-12-01T09:00:00Z")
    better = [dict(c, value=80.0, status="ok") if c["check"] == "cache hit rate" else c for c in CHECKS]
    second = write_report(_params(tmp_path, better), "2026-12-02T09:00:00Z")
    assert second["report"]["changes"][0]["change"] == 38.5
    assert "cache hit rate @ app 41.5 -> 80.0 (+38.5 %)" in second["text"]
