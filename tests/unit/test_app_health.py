"""The application's health and metrics judged by JSON path: limits, missing paths, unreachable URLs."""

from __future__ import annotations

from ansible_collections.muejam.dbops.plugins.module_utils.app_health import judge, metric_check, value_at, values_at

METRICS = {"connection_pool": {"max": 50, "in_use": 20, "utilization": 40.0},
           "cache": {"hits": 10, "misses": 40, "hit_rate": 20.0},
           "load_balancer": {"replicas": [{"host": "pg2", "requests": 7}]}}
POOL = {"name": "pool utilisation", "path": "connection_pool.utilization", "unit": "%", "warn_below": 40,
        "warn_above": 70, "fail_above": 95, "critical": True}


def test_paths_with_list_items():
    assert value_at(METRICS, "load_balancer.replicas[0].requests") == 7


def test_a_missing_path_is_a_failed_check_that_says_what_is_there():
    check = metric_check(METRICS, None, dict(POOL, path="connection_pool.usage"), "app")
    assert check["status"] == "fail"
    assert check["reason"] == ("connection_pool.usage is not in the metrics JSON "
                               "(at connection_pool: in_use, max, utilization)")
    assert metric_check(METRICS, None, dict(POOL, path="load_balancer.replicas[3]"), "app")["reason"].endswith(
        "(load_balancer.replicas has no item 3)")


def test_limits_fail_before_warn_and_the_band_is_ok():
    assert metric_check({"connection_pool": {"utilization": 96.5}}, None, POOL, "app")["status"] == "fail"
    assert metric_check({"connection_pool": {"utilization": 80}}, None, POOL, "app")["status"] == "warn"
    low = metric_check({"connection_pool": {"utilization": 12}}, None, POOL, "app")
    assert (low["status"], low["reason"]) == ("warn", "12 % < 40 %")
    assert metric_check({"connection_pool": {"utilization": 55}}, None, POOL, "app")["status"] == "ok"
    assert metric_check(METRICS, None, POOL, "app")["threshold"] == "warn < 40 %; warn > 70 %; fail > 95 %"


def test_scale_null_and_text_values():
    ratio = metric_check({"r": 0.42}, None, {"name": "hit", "path": "r", "scale": 100, "fail_below": 70}, "app")
    assert (ratio["value"], ratio["status"]) == (42.0, "fail")
    assert metric_check({"r": None}, None, {"name": "hit", "path": "r"}, "app")["status"] == "warn"
    text = metric_check({"r": "high"}, None, {"name": "hit", "path": "r"}, "app")
    assert text["reason"] == "r is 'high', not a number"


def test_unreachable_health_and_metrics_fail_every_check_with_the_reason():
    checks = judge((None, "", "Connection refused", "http://app:8000/health"),
                   (None, "cannot reach http://app:8000/metrics/json: Connection refused"), [POOL], "app")
    assert [c["status"] for c in checks] == ["fail", "fail"]
    assert checks[0]["reason"] == "cannot reach http://app:8000/health: Connection refused"
    assert checks[1]["reason"].startswith("metrics not read: cannot reach")


def test_health_503_is_a_critical_failure_with_the_body():
    check = judge((503, '{"status": "fail"}', None, "http://x/health"), (METRICS, None), [], "app")[0]
    assert check["status"] == "fail" and check["critical"] and check["reason"].startswith("HTTP 503 from")


def test_values_by_name_and_null_where_missing():
    metrics = {"requests": {"errors": 3}, "cache": {"hits": 10, "misses": None}, "pools": [{"in_use": 4}]}
    paths = {"errors": "requests.errors", "hits": "cache.hits", "misses": "cache.misses", "first": "pools[0].in_use",
             "gone": "cache.evictions"}
    assert values_at(metrics, paths) == {"errors": 3, "hits": 10, "misses": None, "first": 4, "gone": None}
    assert values_at(None, {"errors": "requests.errors"}) == {"errors": None}


def test_a_flag_without_limits_is_reported_as_it_is():
    flags = {"load_balancer": {"force_primary_reads": True}}
    spec = {"name": "reads forced to the primary", "path": "load_balancer.force_primary_reads"}
    check = metric_check(flags, None, spec, "app")
    assert (check["status"], check["value"], check["reason"]) == ("ok", True, "")
    limited = metric_check(flags, None, dict(spec, fail_above=0), "app")
    assert limited["status"] == "fail" and "not a number" in limited["reason"]
