"""The lab's application stand-in against a real primary: pool, reload without a restart, fail-open cache, health.

The health check, maintenance and incident work reads these figures; they must be real. Redis is not
started in this lab, so the cache is unreachable: reads must still succeed (fail-open) and count errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from dbops_it import ROOT, lab, playbook, run_module

PREFIX = "dbops-it-app"
ADDRESSES: dict[str, str] = {}


@pytest.fixture(scope="module")
def app(request):
    addresses = json.loads(lab("up", "--prefix", PREFIX, "--hosts", "pg1,app"))
    if os.environ.get("DBOPS_KEEP_LAB") != "1":
        request.addfinalizer(lambda: lab("down", "--prefix", PREFIX))
    playbook("lab/provision.yml", PREFIX, "--limit", "pg1,app")
    ADDRESSES.update(addresses)
    return PREFIX + "-app"


def sh(container: str, *argv: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError("%s failed: %s%s" % (" ".join(argv), proc.stdout, proc.stderr))
    return proc.stdout


def request(container: str, path: str, method: str = "GET") -> tuple[int, dict]:
    probe = ("import json, urllib.request, urllib.error, sys\n"
             "req = urllib.request.Request('http://127.0.0.1:8000' + sys.argv[1], method=sys.argv[2],"
             " data=b'' if sys.argv[2] == 'POST' else None)\n"
             "try:\n    r = urllib.request.urlopen(req, timeout=10); print(r.status); print(r.read().decode())\n"
             "except urllib.error.HTTPError as e:\n    print(e.code); print(e.read().decode())\n")
    out = sh(container, "python3", "-c", probe, path, method)
    code, dummy, body = out.partition("\n")
    return int(code), json.loads(body) if body.strip().startswith("{") else {"text": body}


def set_env(container: str, key: str, value: str) -> None:
    sh(container, "sed", "-i", "s/^%s=.*/%s=%s/" % (key, key, value), "/etc/muejam/app.env")


def wait_metrics(container: str, predicate, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        metrics = request(container, "/metrics/json")[1]
        if predicate(metrics) or time.monotonic() > deadline:
            return metrics
        time.sleep(0.3)


def test_health_reports_its_checks_and_reads_fail_open_without_redis(app):
    code, health = request(app, "/health")
    assert code == 200, health
    assert health["checks"]["database"]["status"] == "ok"
    assert health["checks"]["cache"]["status"] == "fail" and health["status"] == "degraded"
    before = request(app, "/metrics/json")[1]["cache"]["errors"]
    for story in (1, 2, 3):
        code, body = request(app, "/stories/%d" % story)
        assert code == 200 and body["id"] == story and body["cache"] == "miss"
    metrics = request(app, "/metrics/json")[1]
    assert metrics["cache"]["errors"] >= before + 3
    assert metrics["database"]["queries_in_window"] >= 3 and metrics["database"]["avg_latency_ms"] > 0
    assert request(app, "/stories/999999999")[0] == 404


def test_pool_size_changes_on_reload_without_a_restart_or_a_failed_request(app):
    started = request(app, "/health")[1]["started_at"]
    set_env(app, "DB_POOL_MAX_CONNECTIONS", "7")
    traffic = subprocess.Popen(["docker", "exec", app, "python3", "/opt/muejam/muejam_traffic.py", "--rate", "40",
                                "--seconds", "4", "--writes", "0.2"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(1)
    sh(app, "systemctl", "reload", "muejam-app")
    result = json.loads(traffic.communicate(timeout=60)[0])
    metrics = wait_metrics(app, lambda m: m["connection_pool"]["max"] == 7)
    assert metrics["connection_pool"]["max"] == 7
    assert request(app, "/health")[1]["started_at"] == started, "the reload restarted the application"
    assert result["errors"] == 0 and result["ok"] + result["not_found"] == result["sent"] > 100, result
    text = sh(app, "curl", "-s", "http://127.0.0.1:8000/metrics")
    assert "muejam_connection_pool_max 7" in text.splitlines()


def test_held_connections_fill_the_pool_and_waiting_requests_are_counted(app):
    set_env(app, "DB_POOL_MAX_CONNECTIONS", "4")
    sh(app, "systemctl", "reload", "muejam-app")
    wait_metrics(app, lambda m: m["connection_pool"]["max"] == 4)
    assert request(app, "/lab/hold?connections=4&seconds=6", "POST")[0] == 202
    full = wait_metrics(app, lambda m: m["connection_pool"]["in_use"] == 4)
    assert full["connection_pool"]["utilization"] == 100.0
    # A read now waits for a connection (then times out after 5 s with 503, or gets one when the hold ends).
    waiter = subprocess.Popen(["docker", "exec", app, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               "http://127.0.0.1:8000/stories/12345"], stdout=subprocess.PIPE, text=True)
    waiting = wait_metrics(app, lambda m: m["connection_pool"]["waiting"] >= 1, timeout=5)
    assert waiting["connection_pool"]["waiting"] >= 1
    assert waiter.communicate(timeout=30)[0] in ("200", "503")
    assert wait_metrics(app, lambda m: m["connection_pool"]["in_use"] == 0, timeout=20)["connection_pool"][
        "in_use"] == 0


def test_health_is_503_when_the_primary_is_down(app):
    pg = PREFIX + "-pg1"
    version = sh(pg, "ls", "/etc/postgresql").split()[0]
    sh(pg, "systemctl", "stop", "postgresql@%s-main" % version)
    try:
        code, health = request(app, "/health")
        assert code == 503 and health["checks"]["database"]["status"] == "fail", health
        assert health["checks"]["database"]["error"]
    finally:
        sh(pg, "systemctl", "start", "postgresql@%s-main" % version)
    assert request(app, "/health")[0] == 200


def test_app_health_module_judges_the_real_endpoints_and_reports_bad_input_as_failed_checks(app):
    base = "http://%s:8000" % app_address()
    checks = [{"name": "pool utilisation", "path": "connection_pool.utilization", "unit": "%", "fail_above": 95},
              {"name": "pool size", "path": "connection_pool.max", "fail_below": 1},
              {"name": "latency", "path": "database.avg_ms", "fail_above": 100}]
    run = run_module("app_health", {"health_url": base + "/health", "metrics_url": base + "/metrics/json",
                                    "target": "app", "checks": checks})
    assert not run.failed, run.output
    by_name = {c["check"]: c for c in run.result["checks"]}
    assert by_name["application health"]["status"] == "ok" and by_name["application health"]["value"] == 200
    assert by_name["pool size"]["status"] == "ok" and by_name["pool size"]["value"] >= 1
    assert by_name["latency"]["status"] == "fail"
    assert by_name["latency"]["reason"].startswith("database.avg_ms is not in the metrics JSON (at database:")
    wrong = run_module("app_health", {"health_url": "http://%s:8099/health" % app_address(),
                                      "metrics_url": base + "/metrics/nothing", "checks": checks[:1]})
    assert not wrong.failed, wrong.output
    assert [c["status"] for c in wrong.result["checks"]] == ["fail", "fail"]
    assert "cannot reach http://%s:8099/health" % app_address() in wrong.result["checks"][0]["reason"]
    assert wrong.result["checks"][1]["reason"] == ('metrics not read: HTTP 404 from %s/metrics/nothing: '
                                                   '{"error": "not found: GET /metrics/nothing"}' % base)


def app_address() -> str:
    return ADDRESSES["app"]
