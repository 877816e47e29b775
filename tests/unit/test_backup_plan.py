"""Pure backup planning: part sizes, manifests, retention over manifests, WAL pruning, PITR base choice."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.backup_plan import (
    MIB,
    S3_MAX_PARTS,
    S3_MIN_PART_SIZE,
    BackupError,
    backup_id,
    build_manifest,
    choose_part_size,
    manifest_to_bytes,
    oldest_needed_wal,
    parse_basebackup_positions,
    parse_lsn,
    parse_manifest,
    parse_time,
    plan_retention,
    plan_wal_pruning,
    select_base_backup,
    wal_file_name,
    worst_case_size,
)

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
GIB = 1024 * MIB


@pytest.mark.parametrize("size", [0, 1, 5 * MIB, GIB, 80 * GIB, 100 * GIB, 1024 * GIB, 5 * 1024 * GIB,
                                  48 * 1024 * GIB - 1])
def test_part_size_fits_worst_case_in_ten_thousand_parts(size):
    part = choose_part_size(size)
    assert part >= S3_MIN_PART_SIZE
    assert part % MIB == 0
    assert math.ceil(size / part) <= S3_MAX_PARTS


def test_part_size_stays_small_for_ordinary_databases():
    # memory is a few parts: a 10 GiB database must not get huge parts
    assert choose_part_size(worst_case_size(10 * GIB)) == 8 * MIB
    assert choose_part_size(worst_case_size(1024 * GIB)) == 158 * MIB


def test_part_size_respects_s3_minimum_even_if_asked_lower():
    assert choose_part_size(GIB, minimum=1 * MIB) == S3_MIN_PART_SIZE


def test_part_size_refuses_what_s3_cannot_hold():
    with pytest.raises(BackupError, match="does not fit"):
        choose_part_size(10000 * 5 * 1024 * MIB + 1)


def manifest(kind="logical", ident=None, end=NOW, databases=("muejam_library",), start_wal=None, age_days=None):
    if age_days is not None:
        end = NOW - timedelta(days=age_days)
    files = [{"name": "x.dump.zst", "key": "p/backups/%s/x.dump.zst" % ident, "size": 10, "raw_size": 40,
              "sha256": "0" * 64}]
    extra = {"start_wal": start_wal} if start_wal else {}
    ident = ident or backup_id(kind, "base" if kind == "base" else "+".join(databases), end)
    return build_manifest(ident=ident, kind=kind, databases=[] if kind == "base" else list(databases),
                          start_time=end - timedelta(minutes=5), end_time=end, files=files, compression="zstd",
                          compression_level=3, server={"server_version": "15.10"}, encryption=None, extra=extra)


def test_manifest_round_trip_and_fields():
    original = manifest(kind="base", ident="20260301T015500Z-base-base", start_wal="000000010000000000000003")
    parsed = parse_manifest(manifest_to_bytes(original))
    assert parsed == original
    assert parsed["series"] == "base"
    assert parsed["size"] == 10 and parsed["raw_size"] == 40
    assert parsed["end_time"] == "2026-03-01T02:00:00Z"


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.pop("files"), "lacks files"),
    (lambda m: m.update(files=[]), "lists no files"),
    (lambda m: m.update(kind="incremental"), "unknown kind"),
    (lambda m: m.update(format=99), "format 99"),
    (lambda m: m["files"][0].pop("sha256"), "without sha256"),
    (lambda m: m.update(end_time="yesterday"), "cannot read the time"),
])
def test_broken_manifests_are_refused(mutate, message):
    data = manifest()
    mutate(data)
    with pytest.raises(BackupError, match=message):
        parse_manifest(json.dumps(data), "k")


def test_not_json_is_refused():
    with pytest.raises(BackupError, match="not valid JSON"):
        parse_manifest(b"{nope", "k")


def ids(backups):
    return sorted(m["id"] for m in backups)


def test_retention_keeps_young_and_newest_min():
    backups = [manifest(ident="d%02d" % age, age_days=age) for age in (0, 1, 5, 29, 31, 40, 60)]
    plan = plan_retention(backups, NOW, keep_days=30, keep_min=3)
    assert plan["keep"] == ["d00", "d01", "d05", "d29"]
    assert plan["delete"] == ["d31", "d40", "d60"]


def test_retention_min_backups_keeps_old_ones_when_few_are_young():
    backups = [manifest(ident="d%02d" % age, age_days=age) for age in (10, 35, 50, 70, 90)]
    plan = plan_retention(backups, NOW, keep_days=30, keep_min=3)
    assert plan["keep"] == ["d10", "d35", "d50"]
    assert plan["delete"] == ["d70", "d90"]


def test_retention_never_deletes_the_newest_even_with_zero_min():
    backups = [manifest(ident="d%02d" % age, age_days=age) for age in (40, 50)]
    plan = plan_retention(backups, NOW, keep_days=30, keep_min=0)
    assert plan["keep"] == ["d40"]
    assert plan["delete"] == ["d50"]


def test_retention_counts_per_series():
    backups = [manifest(ident="a%02d" % age, age_days=age) for age in (40, 50)]
    backups += [manifest(ident="b%02d" % age, age_days=age, databases=("other",)) for age in (45, 55)]
    backups += [manifest(kind="base", ident="c%02d" % age, age_days=age) for age in (41, 60)]
    plan = plan_retention(backups, NOW, keep_days=30, keep_min=1)
    assert plan["keep"] == ["a40", "b45", "c41"]
    assert plan["delete"] == ["a50", "b55", "c60"]


def test_retention_refuses_negative_settings():
    with pytest.raises(BackupError):
        plan_retention([], NOW, keep_days=-1, keep_min=1)


def test_wal_pruning_follows_oldest_kept_base_backup():
    kept = [manifest(kind="base", ident="b1", start_wal="00000001000000000000000A"),
            manifest(kind="base", ident="b2", start_wal="000000020000000100000003")]
    oldest = oldest_needed_wal(kept)
    assert oldest == "00000001000000000000000A"
    names = ["000000010000000000000008", "000000010000000000000009", "00000001000000000000000A",
             "00000001000000000000000B", "000000010000000000000009.00000028.backup", "00000002.history",
             "000000010000000000000007.partial"]
    assert plan_wal_pruning(names, oldest) == ["000000010000000000000007.partial", "000000010000000000000008",
                                               "000000010000000000000009",
                                               "000000010000000000000009.00000028.backup"]


def test_no_wal_is_pruned_without_a_kept_base_backup():
    assert oldest_needed_wal([]) is None
    assert plan_wal_pruning(["000000010000000000000001"], None) == []


def test_wal_file_name_and_lsn():
    seg = 16 * MIB
    assert parse_lsn("0/3000028") == 0x3000028
    assert wal_file_name(1, parse_lsn("0/3000028"), seg) == "000000010000000000000003"
    assert wal_file_name(2, parse_lsn("1/FF000000"), seg) == "0000000200000001000000FF"
    assert wal_file_name(1, parse_lsn("2/00000000"), 64 * MIB) == "000000010000000200000000"


def test_basebackup_positions_from_verbose_output():
    stderr = ("pg_basebackup: initiating base backup, waiting for checkpoint to complete\n"
              "pg_basebackup: checkpoint completed\n"
              "pg_basebackup: write-ahead log start point: 0/5000028 on timeline 1\n"
              "pg_basebackup: write-ahead log end point: 0/5000100\n"
              "pg_basebackup: base backup completed\n")
    assert parse_basebackup_positions(stderr) == {"start_lsn": "0/5000028", "timeline": 1, "stop_lsn": "0/5000100"}
    with pytest.raises(BackupError):
        parse_basebackup_positions("pg_basebackup: error")


def test_select_base_for_recovery_target():
    bases = [manifest(kind="base", ident="old", end=NOW - timedelta(days=2)),
             manifest(kind="base", ident="new", end=NOW - timedelta(hours=1)),
             manifest(ident="logical", end=NOW)]
    assert select_base_backup(bases, None)["id"] == "new"
    assert select_base_backup(bases, NOW - timedelta(hours=2))["id"] == "old"
    assert select_base_backup(bases, NOW)["id"] == "new"
    with pytest.raises(BackupError, match="before the end of the oldest base backup old"):
        select_base_backup(bases, NOW - timedelta(days=3))
    with pytest.raises(BackupError, match="no complete base backup"):
        select_base_backup([bases[2]], None)


@pytest.mark.parametrize("text, expected", [
    ("2026-02-17T10:30:00Z", datetime(2026, 2, 17, 10, 30, tzinfo=timezone.utc)),
    ("2026-02-17 10:30:00+00", datetime(2026, 2, 17, 10, 30, tzinfo=timezone.utc)),
    ("2026-02-17 11:30:00+01:00", datetime(2026, 2, 17, 10, 30, tzinfo=timezone.utc)),
])
def test_parse_time_accepts_zoned_times(text, expected):
    assert parse_time(text) == expected


def test_parse_time_refuses_naive_times():
    with pytest.raises(BackupError, match="no time zone"):
        parse_time("2026-02-17 10:30:00")
