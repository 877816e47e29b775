# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An application's health answer and metrics JSON judged against thresholds, as report checks.

Applications differ: where a figure sits in the metrics JSON is a path (``connection_pool.utilization``,
``load_balancer.replicas[0].requests``) given with its limits, never assumed.
"""

from __future__ import annotations

import re

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class PathMissing(Exception):
    pass


def value_at(document, path: str):
    """The value at a dotted path with [n] list indices; PathMissing says which step is absent and what is there."""
    current = document
    walked = []
    for name, index in _STEP.findall(path):
        if name:
            if not isinstance(current, dict) or name not in current:
                have = ", ".join(sorted(current)) if isinstance(current, dict) else type(current).__name__
                raise PathMissing("%s is not in the metrics JSON (at %s: %s)" % (
                    path, ".".join(walked) or "the top", have or "nothing"))
            current = current[name]
            walked.append(name)
        else:
            position = int(index)
            if not isinstance(current, list) or position >= len(current):
                raise PathMissing("%s is not in the metrics JSON (%s has no item %d)" % (
                    path, ".".join(walked) or "the top", position))
            current = current[position]
            walked.append("[%d]" % position)
    return current


def values_at(document, paths: dict) -> dict:
    """{name: value at path} for each named path; None where the path is missing or nothing was read."""
    found = {}
    for name, path in paths.items():
        try:
            found[name] = value_at(document, str(path)) if document is not None else None
        except PathMissing:
            found[name] = None
    return found


# Each limit a check may set: (key, status when crossed, comparison), in the order they are judged.
_LIMITS = (("fail_above", "fail", ">"), ("fail_below", "fail", "<"), ("warn_above", "warn", ">"),
           ("warn_below", "warn", "<"))


def _unit_suffix(spec: dict) -> str:
    return " " + spec["unit"] if spec.get("unit") else ""


def threshold_text(spec: dict) -> str:
    parts = ["%s %s %g%s" % (status, word, spec[key], _unit_suffix(spec))
             for key, status, word in sorted(_LIMITS, key=lambda limit: (limit[1] == "fail", limit[2] == ">"))
             if spec.get(key) is not None]
    return "; ".join(parts) or "reported only"


def judge_value(value, spec: dict) -> tuple[str, str]:
    """(status, reason) of one number against the limits of spec."""
    suffix = _unit_suffix(spec)
    for key, status, word in _LIMITS:
        limit = spec.get(key)
        if limit is None:
            continue
        if (word == ">" and value > limit) or (word == "<" and value < limit):
            return status, "%g%s %s %g%s" % (value, suffix, word, limit, suffix)
    return "ok", ""


def metric_check(metrics, error: str | None, spec: dict, target: str) -> dict:
    check = {"check": spec["name"], "target": target, "unit": spec.get("unit") or "",
             "threshold": threshold_text(spec), "critical": spec.get("critical", True),
             "runbook": spec.get("runbook") or "", "playbook": spec.get("playbook") or "", "value": None}
    if error is not None:
        return dict(check, status="fail", reason="metrics not read: %s" % error)
    try:
        raw = value_at(metrics, spec["path"])
    except PathMissing as exc:
        return dict(check, status="fail", reason=str(exc))
    if raw is None:
        return dict(check, status="warn", reason="%s is null (nothing measured in the window?)" % spec["path"])
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        if isinstance(raw, bool) and not any(spec.get(key) is not None for key, dummy, dummy2 in _LIMITS):
            # a flag reported as it is (force_primary_reads: true); only a limit needs a number
            return dict(check, value=raw, status="ok", reason="")
        return dict(check, status="fail", reason="%s is %r, not a number" % (spec["path"], raw))
    value = raw * float(spec.get("scale") or 1)
    status, reason = judge_value(value, spec)
    return dict(check, value=round(value, 3), status=status, reason=reason)


def health_check(status_code: int | None, body: str, error: str | None, url: str, target: str,
                 runbook: str = "", playbook: str = "") -> dict:
    check = {"check": "application health", "target": target, "unit": "", "threshold": "HTTP 200",
             "critical": True, "runbook": runbook, "playbook": playbook, "value": status_code}
    if error is not None:
        return dict(check, status="fail", reason="cannot reach %s: %s" % (url, error))
    if status_code != 200:
        excerpt = " ".join(body.split())[:200]
        return dict(check, status="fail", reason="HTTP %s from %s: %s" % (status_code, url, excerpt))
    return dict(check, status="ok", reason="")


def judge(health: tuple, metrics: tuple, specs: list[dict], target: str, health_runbook: str = "",
          health_playbook: str = "") -> list[dict]:
    """health = (status_code, body, error, url); metrics = (document, error). The checks, health first."""
    checks = [health_check(*health, target=target, runbook=health_runbook, playbook=health_playbook)]
    document, error = metrics
    checks += [metric_check(document, error, spec, target) for spec in specs]
    return checks
