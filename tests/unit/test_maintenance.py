"""The maintenance decisions: what to vacuum, analyse, reindex or drop, from statistics (no server)."""

from __future__ import annotations

from ansible_collections.muejam.dbops.plugins.module_utils.maintenance import (
    VACUUM_DEFAULTS,
    confirm_reindex,
    estimated_btree_pages,
    info_checks,
    is_leftover,
    plan_vacuum,
    reindex_checks,
    reindex_decision,
    space_problem,
    statement_io_columns,
    statements_diagnosis,
    top_statements_sql,
    vacuum_checks,
    vacuum_options,
)

LIMITS = {"bloat_ratio": 0.3, "min_index_bytes": 10 * 1048576, "invalid_action": "reindex"}


def table(name="t", **stats):
    base = {"database": "app", "schema": "public", "table": name, "reltuples": 100000, "n_live_tup": 100000,
            "n_dead_tup": 0, "n_mod_since_analyze": 0, "since_vacuum_s": 3600.0, "since_analyze_s": 3600.0,
            "xid_age": 1000, "table_bytes": 8192}
    base.update(stats)
    return base


def test_nothing_to_do_on_a_clean_recently_vacuumed_table():
    assert plan_vacuum([table()], VACUUM_DEFAULTS) == []


def test_dead_tuples_over_the_ratio_make_a_vacuum_and_changes_an_analyze():
    [item] = plan_vacuum([table(n_live_tup=40000, n_dead_tup=60000, n_mod_since_analyze=60000)], VACUUM_DEFAULTS)
    assert (item["vacuum"], item["analyze"], item["freeze"]) == (True, True, False)
    assert item["reasons"][0] == "60000 dead tuples (60 % of the rows)"
    assert vacuum_options(item) == "VACUUM (SKIP_LOCKED, ANALYZE)"


def test_few_dead_tuples_are_left_to_autovacuum_until_a_week_passed():
    few = table(n_dead_tup=500)
    assert plan_vacuum([few], VACUUM_DEFAULTS) == []
    [item] = plan_vacuum([table(n_dead_tup=500, since_vacuum_s=8 * 86400.0)], VACUUM_DEFAULTS)
    assert item["reasons"] == ["500 dead tuples and last vacuumed 8.0 days ago"]
    [never] = plan_vacuum([table(n_dead_tup=5, since_vacuum_s=None)], VACUUM_DEFAULTS)
    assert "never vacuumed" in never["reasons"][0]


def test_transaction_id_age_makes_a_freeze_and_goes_first():
    plan = plan_vacuum([table("busy", n_dead_tup=90000, n_live_tup=10000),
                        table("old", xid_age=160000000)], VACUUM_DEFAULTS)
    assert [p["table"] for p in plan] == ["old", "busy"]
    assert vacuum_options(plan[0]) == "VACUUM (SKIP_LOCKED, FREEZE)"


def test_analyze_only_when_rows_changed_and_never_analysed_tables():
    [changed] = plan_vacuum([table(n_mod_since_analyze=20000)], VACUUM_DEFAULTS)
    assert (changed["vacuum"], changed["analyze"]) == (False, True)
    assert vacuum_options(changed) == "ANALYZE (SKIP_LOCKED)"
    [never] = plan_vacuum([table(since_analyze_s=None)], VACUUM_DEFAULTS)
    assert never["reasons"] == ["never analysed"]
    assert plan_vacuum([table(n_live_tup=0, reltuples=0, since_analyze_s=None)], VACUUM_DEFAULTS) == []


def index(**over):
    base = {"index": "t_body_idx", "method": "btree", "valid": True, "bytes": 100 * 1048576, "relpages": 12800,
            "reltuples": 200000.0, "key_width": 65.0, "fillfactor": 90, "exclusion": False, "building_pid": None}
    base.update(over)
    return base


def test_btree_estimate_of_a_fresh_index_is_close_to_its_size():
    pages = estimated_btree_pages(1000000, 4, 90, 8192)  # an int4 key: about 367 entries per leaf page
    assert 2600 < pages < 2900
    fresh = index(relpages=pages, bytes=pages * 8192, reltuples=1000000.0, key_width=4.0)
    assert reindex_decision(fresh, LIMITS, 8192)["action"] == "none"


def test_bloated_index_is_rebuilt_and_confirmed_by_pgstattuple():
    decision = reindex_decision(index(), LIMITS, 8192)
    assert decision["action"] == "reindex" and decision["estimated_bloat"] > 0.8
    confirmed = confirm_reindex(decision, 9.5, 90, LIMITS)
    assert confirmed["action"] == "reindex" and abs(confirmed["measured_bloat"] - (1 - 9.5 / 90)) < 1e-9
    assert "pgstattuple leaf density 10 %" in confirmed["reason"] or "leaf density 9 %" in confirmed["reason"]
    dense = confirm_reindex(decision, 85.0, 90, LIMITS)
    assert dense["action"] == "none" and "not rebuilt" in dense["reason"]
    assert "estimate only" in confirm_reindex(decision, None, 90, LIMITS)["reason"]


def test_small_unknown_and_exclusion_indexes_are_not_rebuilt_for_bloat():
    assert reindex_decision(index(bytes=1048576), LIMITS, 8192)["action"] == "none"
    assert reindex_decision(index(key_width=None), LIMITS, 8192)["action"] == "none"
    assert reindex_decision(index(method="gin"), LIMITS, 8192)["action"] == "none"
    assert reindex_decision(index(exclusion=True), LIMITS, 8192)["action"] == "skip"


def test_invalid_indexes_by_kind():
    assert is_leftover("t_body_idx_ccnew") and is_leftover("t_body_idx_ccnew1") and is_leftover("x_ccold")
    assert not is_leftover("t_ccnew_idx")
    assert reindex_decision(index(valid=False, index="t_idx_ccnew"), LIMITS, 8192)["action"] == "drop"
    assert reindex_decision(index(valid=False), LIMITS, 8192)["action"] == "reindex"
    assert reindex_decision(index(valid=False), dict(LIMITS, invalid_action="drop"), 8192)["action"] == "drop"
    assert reindex_decision(index(valid=False), dict(LIMITS, invalid_action="report"), 8192)["action"] == "skip"
    building = reindex_decision(index(valid=False, building_pid=4242), LIMITS, 8192)
    assert building["action"] == "skip" and "4242" in building["reason"]
    assert reindex_decision(index(valid=False, exclusion=True), LIMITS, 8192)["action"] == "skip"


def test_free_disk_must_hold_the_copy_and_the_reserve():
    mb = 1048576
    assert space_problem(100 * mb, 2000 * mb, 1024 * mb, "/var/lib/postgresql") == ""
    problem = space_problem(1500 * mb, 2000 * mb, 1024 * mb, "/var/lib/postgresql")
    assert "2000 MB free, the copy needs 1500 MB and 1024 MB must stay free" in problem


def test_pg_stat_statements_columns_by_version():
    assert statement_io_columns(13) == statement_io_columns(15) == ("blk_read_time", "blk_write_time")
    assert statement_io_columns(17) == ("shared_blk_read_time", "shared_blk_write_time")
    assert "s.shared_blk_read_time + s.shared_blk_write_time" in top_statements_sql(17, 5)
    assert "s.blk_read_time + s.blk_write_time" in top_statements_sql(15, 5)
    assert top_statements_sql(13, 5).endswith("LIMIT 5")


def test_pg_stat_statements_diagnosis_says_what_to_change():
    assert statements_diagnosis("pg_stat_statements", True, True, "postgres") == ""
    preload = statements_diagnosis("auto_explain", True, False, "postgres")
    assert "set shared_preload_libraries = 'auto_explain, pg_stat_statements' and restart" in preload
    assert "not created in database 'app'" in statements_diagnosis("pg_stat_statements", True, False, "app")
    assert "not available" in statements_diagnosis("", False, False, "app")


def test_checks_report_skips_as_warnings_and_check_mode_plans():
    result = {"plan": [{"action": "vacuum", "database": "app", "schema": "public", "table": "t"}], "done": [],
              "skipped": [{"database": "app", "schema": "public", "table": "t", "reason": "locked by pid 7"}]}
    [check] = vacuum_checks(result, "pg1")
    assert check["status"] == "warn" and "app.public.t: locked by pid 7" in check["reason"]
    [planned] = vacuum_checks(dict(result, skipped=[]), "pg1", check_mode=True)
    assert planned["value"] == "would work on 1 table(s)" and planned["status"] == "ok"
    [standby] = reindex_checks({"skipped_reason": "a standby"}, "pg2")
    assert standby["value"] == "skipped" and standby["reason"] == "a standby"
    assert reindex_checks({"plan": [], "done": [], "skipped": []}, "pg1")[0]["value"] == "nothing to rebuild"


def test_info_checks_warn_on_slow_statements_and_missing_extension():
    report = {"standby": False, "pg_stat_statements": {"problem": ""}, "tables": [],
              "statements": [{"database": "app", "query": "SELECT  pg_sleep($1)", "mean_ms": 1500.0, "calls": 3,
                              "rows": 3}]}
    checks = info_checks(report, "pg1", 1000)
    assert [c["status"] for c in checks] == ["ok", "warn"]
    assert checks[1]["reason"].startswith("SELECT pg_sleep($1) (3 calls")
    missing = info_checks(dict(report, statements=[], pg_stat_statements={"problem": "add it"}), "pg1", 1000)
    assert missing[0]["status"] == "warn" and missing[0]["reason"] == "add it"
