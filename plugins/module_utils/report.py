# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One report machinery for the health check, maintenance and incident playbooks.

A report is a title, a time and a list of checks. A check is a dict:
    check      what was checked ("replication lag")
    target     where (a host, a URL, "cluster")
    status     ok | warn | fail
    value      what was measured (number, text or None when it could not be measured)
    unit       unit of value ("s", "%", "ms", "")
    threshold  the limit in words ("< 2 s")
    reason     why the status is not ok (empty when ok)
    critical   a failing critical check fails the run; a warning never does
    runbook    the runbook section to read when it is not ok
    playbook   the playbook to run when it is not ok
Renderers turn a report into a console table, Markdown, JSON and one self-contained HTML page.
"""

from __future__ import annotations

import datetime
import glob
import html
import json
import os

STATUSES = ("ok", "warn", "fail")
CHECK_KEYS = ("check", "target", "status", "value", "unit", "threshold", "reason", "critical", "runbook", "playbook")


def normalize_check(raw: dict) -> dict:
    """A check with every key present; an unknown status is an error of the caller (ValueError)."""
    check = {key: raw.get(key) for key in CHECK_KEYS}
    check["status"] = str(check["status"] or "fail")
    if check["status"] not in STATUSES:
        raise ValueError("check %r has status %r: use one of %s" % (raw.get("check"), raw.get("status"),
                                                                    ", ".join(STATUSES)))
    for key in ("check", "target", "unit", "threshold", "reason", "runbook", "playbook"):
        check[key] = "" if check[key] is None else str(check[key])
    check["critical"] = bool(check["critical"])
    return check


def check_key(check: dict) -> str:
    return "%s @ %s" % (check["check"], check["target"])


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    return None


def changes_since(checks: list[dict], previous: dict | None, compared: list[str]) -> list[dict]:
    """For each check named in compared (by its `check`), the change of its number since the previous report."""
    if not previous:
        return []
    before = {check_key(c): c for c in previous.get("checks", [])}
    out = []
    for check in checks:
        if check["check"] not in compared:
            continue
        old = before.get(check_key(check))
        now_value, old_value = _number(check["value"]), _number(old["value"]) if old else None
        if now_value is None or old_value is None:
            continue
        out.append({"check": check["check"], "target": check["target"], "unit": check["unit"],
                    "before": old_value, "now": now_value, "change": round(now_value - old_value, 3)})
    return out


def build_report(title: str, generated_at: str, checks: list[dict], previous: dict | None = None,
                 compared: list[str] | None = None, notes: list[str] | None = None) -> dict:
    checks = [normalize_check(c) for c in checks]
    counts = {status: sum(1 for c in checks if c["status"] == status) for status in STATUSES}
    failed_critical = [check_key(c) for c in checks if c["status"] == "fail" and c["critical"]]
    overall = "fail" if counts["fail"] else ("warn" if counts["warn"] else "ok")
    return {
        "title": title,
        "generated_at": generated_at,
        "status": overall,
        "counts": counts,
        "failed_critical": failed_critical,
        "checks": checks,
        "changes": changes_since(checks, previous, compared or []),
        "previous_generated_at": previous.get("generated_at") if previous else None,
        "notes": list(notes or []),
    }


def format_value(check: dict) -> str:
    value = check["value"]
    if value is None:
        return "-"
    if isinstance(value, float):
        value = ("%.2f" % value).rstrip("0").rstrip(".")
    unit = check["unit"]
    return "%s %s" % (value, unit) if unit and unit != "%" else "%s%s" % (value, unit)


def _todo(check: dict) -> str:
    parts = [p for p in (check["runbook"] and "runbook: " + check["runbook"],
                         check["playbook"] and "run: " + check["playbook"]) if p]
    return "; ".join(parts)


def render_text(report: dict, width: int = 40) -> str:
    """The console table: one line per check, then what to do for each one that is not ok."""
    rows = [("STATUS", "CHECK", "TARGET", "VALUE", "THRESHOLD")]
    for c in report["checks"]:
        rows.append((c["status"].upper(), c["check"][:width], c["target"][:width], format_value(c)[:width],
                     c["threshold"][:width]))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["%s: %s (%d ok, %d warn, %d fail) at %s" % (report["title"], report["status"].upper(),
                                                         report["counts"]["ok"], report["counts"]["warn"],
                                                         report["counts"]["fail"], report["generated_at"])]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    bad = [c for c in report["checks"] if c["status"] != "ok"]
    if bad:
        lines.append("")
        for c in bad:
            lines.append("%s %s @ %s: %s" % (c["status"].upper(), c["check"], c["target"], c["reason"] or "-"))
            todo = _todo(c)
            if todo:
                lines.append("    " + todo)
    for change in report["changes"]:
        lines.append("change since %s: %s @ %s %s -> %s (%+g %s)" % (
            report["previous_generated_at"], change["check"], change["target"], change["before"], change["now"],
            change["change"], change["unit"]))
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict) -> str:
    out = ["# %s" % report["title"], "",
           "Generated %s. Overall: **%s** (%d ok, %d warn, %d fail)." % (
               report["generated_at"], report["status"].upper(), report["counts"]["ok"],
               report["counts"]["warn"], report["counts"]["fail"]), "",
           "| Status | Check | Target | Value | Threshold | Reason | What to do |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in report["checks"]:
        out.append("| %s |" % " | ".join(_md_cell(x) for x in (
            c["status"].upper() + (" (critical)" if c["critical"] and c["status"] == "fail" else ""),
            c["check"], c["target"], format_value(c), c["threshold"], c["reason"], _todo(c) if c["status"] != "ok"
            else "")))
    if report["changes"]:
        out += ["", "## Change since %s" % report["previous_generated_at"], "",
                "| Check | Target | Before | Now | Change |", "| --- | --- | --- | --- | --- |"]
        for ch in report["changes"]:
            cells = (_md_cell(ch["check"]), _md_cell(ch["target"]), ch["before"], ch["now"], ch["change"], ch["unit"])
            out.append("| %s | %s | %s | %s | %+g %s |" % cells)
    if report["notes"]:
        out += ["", "## Notes", ""] + ["- " + _md_cell(n) for n in report["notes"]]
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.status{font-weight:bold;text-transform:uppercase}
tr.ok .status{color:#1a7f37}tr.warn .status{color:#9a6700}tr.fail .status{color:#cf222e}
tr.fail{background:#ffebe9}tr.warn{background:#fff8c5}.overall{font-size:1.2em}
@page{size:A3 landscape;margin:1cm}@media print{body{margin:0;font-size:10px}}
"""


def render_html(report: dict) -> str:
    """One page, no external assets (no scripts, fonts or stylesheets from elsewhere)."""
    esc = html.escape
    rows = []
    for c in report["checks"]:
        rows.append(
            '<tr class="%s" data-check="%s" data-target="%s"><td class="status">%s</td><td>%s</td><td>%s</td>'
            '<td class="value">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                esc(c["status"]), esc(c["check"]), esc(c["target"]), esc(c["status"]), esc(c["check"]),
                esc(c["target"]), esc(format_value(c)), esc(c["threshold"]), esc(c["reason"]),
                esc(_todo(c)) if c["status"] != "ok" else ""))
    changes = ""
    if report["changes"]:
        changes = "<h2>Change since %s</h2><table><tr><th>Check</th><th>Target</th><th>Before</th><th>Now</th>" \
                  "<th>Change</th></tr>%s</table>" % (esc(str(report["previous_generated_at"])), "".join(
                      "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%+g %s</td></tr>" % (
                          esc(ch["check"]), esc(ch["target"]), ch["before"], ch["now"], ch["change"], esc(ch["unit"]))
                      for ch in report["changes"]))
    notes = "".join("<li>%s</li>" % esc(n) for n in report["notes"])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%s</title><style>%s</style></head>'
        '<body><h1>%s</h1><p class="overall" id="overall" data-status="%s">Overall: <b>%s</b> '
        '(%d ok, %d warn, %d fail), generated %s</p>'
        '<table id="checks"><tr><th>Status</th><th>Check</th><th>Target</th><th>Value</th><th>Threshold</th>'
        '<th>Reason</th><th>What to do</th></tr>%s</table>%s%s</body></html>\n' % (
            esc(report["title"]), _CSS, esc(report["title"]), esc(report["status"]), esc(report["status"].upper()),
            report["counts"]["ok"], report["counts"]["warn"], report["counts"]["fail"],
            esc(report["generated_at"]), "".join(rows), changes,
            "<h2>Notes</h2><ul>%s</ul>" % notes if notes else ""))


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"


RENDERERS = {"md": render_markdown, "json": render_json, "html": render_html}
REPORT_ARGUMENT_SPEC = {
    "title": {"type": "str", "required": True},
    "checks": {"type": "list", "elements": "dict", "required": True},
    "dest": {"type": "path", "required": True},
    "basename": {"type": "str", "default": "report"},
    "formats": {"type": "list", "elements": "str", "default": ["md", "json", "html"],
                "choices": ["md", "json", "html"]},
    "compared": {"type": "list", "elements": "str", "default": []},
    "notes": {"type": "list", "elements": "str", "default": []},
    "keep": {"type": "int", "default": 30},
    "unreachable": {"type": "list", "elements": "str", "default": []},
}


def unreachable_check(host: str) -> dict:
    return {"check": "host reachable", "target": host, "status": "fail", "critical": True, "value": None,
            "unit": "", "threshold": "answers", "runbook": "", "playbook": "",
            "reason": "no result from %s: it was unreachable or failed before its checks (see the run's output)"
                      % host}


def _stamp(generated_at: str) -> str:
    return "".join(ch for ch in generated_at if ch.isalnum())


def previous_report(dest: str, basename: str) -> dict | None:
    """The newest earlier JSON report <basename>-<stamp>.json in dest, or None (an unreadable one is skipped)."""
    for path in sorted(glob.glob(os.path.join(dest, basename + "-2*.json")), reverse=True):
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and isinstance(document.get("checks"), list):
            return document
    return None


def write_report(params: dict, generated_at: str) -> dict:
    """Build the report against the previous one in dest, write it as <basename>-<stamp>.<fmt> and
    <basename>-latest.<fmt> (written whole, then renamed into place), keep the newest `keep` sets.
    Returns {report, files (format -> path of the stamped file), latest, text}."""
    dest, basename = os.path.normpath(os.path.abspath(os.path.expanduser(params["dest"]))), params["basename"]
    if not os.path.isdir(dest):
        os.makedirs(dest, 0o755)
    checks = [unreachable_check(host) for host in params.get("unreachable") or []] + list(params["checks"])
    report = build_report(params["title"], generated_at, checks, previous_report(dest, basename),
                          params["compared"], params["notes"])
    files, latest = {}, {}
    for fmt in params["formats"]:
        text = RENDERERS[fmt](report)
        for kind, name in (("files", "%s-%s.%s" % (basename, _stamp(generated_at), fmt)),
                           ("latest", "%s-latest.%s" % (basename, fmt))):
            path = os.path.join(dest, name)
            with open(path + ".tmp", "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(path + ".tmp", path)
            (files if kind == "files" else latest)[fmt] = path
    for fmt in params["formats"]:
        stamped = sorted(glob.glob(os.path.join(dest, "%s-2*.%s" % (basename, fmt))))
        for old in stamped[:-max(1, params["keep"])]:
            os.remove(old)
    return {"report": report, "files": files, "latest": latest, "text": render_text(report)}


def write_report_now(params: dict) -> dict:
    """write_report stamped with the current UTC time (the action plugin and the module both use this)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return write_report(params, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
