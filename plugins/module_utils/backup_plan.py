# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup planning as pure computations: object layout, manifests, part sizes, retention, PITR choice.

Nothing here talks to a server, so every rule can be unit-tested. A backup exists only when its
manifest exists (pgBackRest and WAL-G reason the same way): retention and restores read manifests,
never object names alone. The file only uses the standard library so the WAL command and the timer
runner installed on database hosts can import it next to ``s3_backup.py``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

MIB = 1024 * 1024
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PART_SIZE = 5 * 1024 * MIB
S3_MAX_PARTS = 10000
DEFAULT_MIN_PART_SIZE = 8 * MIB
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
KINDS = ("logical", "base")
_REQUIRED_MANIFEST_KEYS = ("format", "id", "kind", "series", "start_time", "end_time", "files", "compression")
_REQUIRED_FILE_KEYS = ("name", "key", "size", "raw_size", "sha256")
WAL_SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
WAL_FILE_RE = re.compile(r"^([0-9A-F]{24})(\.partial|\.[0-9A-F]{8}\.backup)?$")
HISTORY_RE = re.compile(r"^[0-9A-F]{8}\.history$")
COMPRESSION_SUFFIX = {"zstd": ".zst", "gzip": ".gz", "none": ""}


class BackupError(Exception):
    """A failure the user can act on; the message says what went wrong and what to check."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second: how manifests store times."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time that carries a zone ('Z', '+00', '+01:00'); naive times are refused."""
    cleaned = text.strip().replace(" ", "T", 1)
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    match = re.search(r"([+-]\d{2})$", cleaned)
    if match:
        cleaned += ":00"
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BackupError("cannot read the time %r: use ISO 8601 with a zone, e.g. 2026-02-17T10:30:00Z"
                          % text) from None
    if value.tzinfo is None:
        raise BackupError("the time %r has no time zone: add one (e.g. Z or +01:00) so it is not ambiguous" % text)
    return value


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def backup_id(kind: str, label: str, when: datetime) -> str:
    """A sortable, readable id: 20260217T020000Z-logical-muejam_library."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", label)
    return "%s-%s-%s" % (when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ"), kind, safe)


def backups_prefix(prefix: str) -> str:
    return join_key(prefix, "backups") + "/"


def wal_prefix(prefix: str) -> str:
    return join_key(prefix, "wal") + "/"


def backup_key(prefix: str, ident: str, name: str) -> str:
    return join_key(prefix, "backups", ident, name)


def wal_key(prefix: str, wal_name: str, compression: str) -> str:
    return join_key(prefix, "wal", wal_name + COMPRESSION_SUFFIX[compression])


def wal_name_from_key(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    for suffix in (".zst", ".gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def series_of(kind: str, databases: list[str]) -> str:
    """Backups of the same kind and databases form a series; retention counts within a series."""
    if kind == "base":
        return "base"
    return "logical-" + "+".join(databases)


def choose_part_size(worst_case_bytes: int, minimum: int = DEFAULT_MIN_PART_SIZE) -> int:
    """The smallest part size (whole MiB, at least ``minimum`` and S3's 5 MiB) that fits the worst case in 10,000 parts.

    Memory use of the uploader is a few parts, so the part size stays small unless the object
    could otherwise exceed S3's 10,000-part limit.
    """
    if worst_case_bytes < 0:
        raise BackupError("the expected backup size cannot be negative")
    needed = math.ceil(worst_case_bytes / S3_MAX_PARTS)
    size = max(needed, minimum, S3_MIN_PART_SIZE)
    size = math.ceil(size / MIB) * MIB
    if size > S3_MAX_PART_SIZE:
        raise BackupError("a backup of %d bytes does not fit in one S3 object (at most 10,000 parts of 5 GiB)"
                          % worst_case_bytes)
    return size


def worst_case_size(estimated_raw_bytes: int) -> int:
    """Raw size estimate with head-room: zstd can grow incompressible data slightly, and data grows during a dump."""
    return int(estimated_raw_bytes * 1.5) + 1024 * MIB


def wal_file_name(timeline: int, lsn: int, segment_size: int) -> str:
    """The WAL segment that contains ``lsn`` (PostgreSQL's XLogFileName)."""
    segments_per_xlogid = 0x100000000 // segment_size
    segno = lsn // segment_size
    return "%08X%08X%08X" % (timeline, segno // segments_per_xlogid, segno % segments_per_xlogid)


def parse_lsn(text: str) -> int:
    high, low = text.strip().split("/")
    return (int(high, 16) << 32) + int(low, 16)


def parse_basebackup_positions(stderr: str) -> dict[str, Any]:
    """Start/stop LSN and timeline from ``pg_basebackup --verbose`` output."""
    start = re.search(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)", stderr)
    stop = re.search(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)", stderr)
    if not start or not stop:
        raise BackupError("pg_basebackup did not report its WAL start and end points")
    return {"start_lsn": start.group(1), "timeline": int(start.group(2)), "stop_lsn": stop.group(1)}


def build_manifest(*, ident: str, kind: str, databases: list[str], start_time: datetime, end_time: datetime,
                   files: list[dict[str, Any]], compression: str, compression_level: int,
                   server: dict[str, Any], encryption: str | None, extra: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    manifest = {
        "format": MANIFEST_FORMAT,
        "id": ident,
        "kind": kind,
        "series": series_of(kind, databases),
        "databases": list(databases),
        "server_version": server.get("server_version"),
        "server_version_num": server.get("server_version_num"),
        "system_identifier": server.get("system_identifier"),
        "start_time": format_time(start_time),
        "end_time": format_time(end_time),
        "compression": compression,
        "compression_level": compression_level,
        "encryption": encryption,
        "files": files,
        "size": sum(int(f["size"]) for f in files),
        "raw_size": sum(int(f["raw_size"]) for f in files),
        "created_by": "muejam.dbops",
    }
    manifest.update(extra or {})
    return manifest


def manifest_to_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def parse_manifest(data: bytes | str, key: str = "manifest") -> dict[str, Any]:
    """Read and check a manifest; a broken one raises BackupError naming the object."""
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BackupError("%s is not valid JSON: %s" % (key, exc)) from None
    if not isinstance(manifest, dict):
        raise BackupError("%s is not a JSON object" % key)
    missing = [k for k in _REQUIRED_MANIFEST_KEYS if k not in manifest]
    if missing:
        raise BackupError("%s lacks %s" % (key, ", ".join(missing)))
    if manifest["format"] != MANIFEST_FORMAT:
        raise BackupError("%s has format %r; this version reads format %d" % (key, manifest["format"], MANIFEST_FORMAT))
    if manifest["kind"] not in KINDS:
        raise BackupError("%s has an unknown kind %r" % (key, manifest["kind"]))
    if not isinstance(manifest["files"], list) or not manifest["files"]:
        raise BackupError("%s lists no files" % key)
    for entry in manifest["files"]:
        lacking = [k for k in _REQUIRED_FILE_KEYS if k not in entry]
        if lacking:
            raise BackupError("%s has a file entry without %s" % (key, ", ".join(lacking)))
    for field in ("start_time", "end_time"):
        parse_time(manifest[field])
    return manifest


def plan_retention(manifests: list[dict[str, Any]], now: datetime, keep_days: float, keep_min: int
                   ) -> dict[str, list[str]]:
    """Which backups to keep and delete, per series.

    Kept: every backup whose end is younger than ``keep_days``, and the newest ``keep_min`` of the
    series (never fewer than one: the newest complete backup is never deleted).
    """
    if keep_days < 0 or keep_min < 0:
        raise BackupError("retention_days and retention_min_backups cannot be negative")
    by_series: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        by_series.setdefault(manifest["series"], []).append(manifest)
    keep: list[str] = []
    delete: list[str] = []
    horizon = now - timedelta(days=keep_days)
    for members in by_series.values():
        members.sort(key=lambda m: (parse_time(m["end_time"]), m["id"]), reverse=True)
        for rank, manifest in enumerate(members):
            young = parse_time(manifest["end_time"]) > horizon
            (keep if rank < max(keep_min, 1) or young else delete).append(manifest["id"])
    return {"keep": sorted(keep), "delete": sorted(delete)}


def oldest_needed_wal(kept_base_manifests: list[dict[str, Any]]) -> str | None:
    """The start WAL segment of the oldest kept base backup, or None when no base backup is kept."""
    starts = [m["start_wal"] for m in kept_base_manifests if m.get("start_wal")]
    if not starts:
        return None
    return min(starts, key=lambda name: name[8:])


def plan_wal_pruning(wal_names: list[str], oldest_needed: str | None) -> list[str]:
    """WAL files older than ``oldest_needed``, by pg_archivecleanup's rule (timeline ignored, history kept)."""
    if oldest_needed is None:
        return []
    doomed = []
    for name in wal_names:
        match = WAL_FILE_RE.match(name)
        if match and match.group(1)[8:] < oldest_needed[8:]:
            doomed.append(name)
    return sorted(doomed)


def select_base_backup(manifests: list[dict[str, Any]], target: datetime | None) -> dict[str, Any]:
    """The newest base backup that finished before ``target`` (or the newest one for 'latest')."""
    bases = sorted((m for m in manifests if m["kind"] == "base"), key=lambda m: parse_time(m["end_time"]))
    if not bases:
        raise BackupError("there is no complete base backup in the catalog: take one (kind: base) first")
    if target is None:
        return bases[-1]
    usable = [m for m in bases if parse_time(m["end_time"]) <= target]
    if not usable:
        raise BackupError("the recovery target %s is before the end of the oldest base backup %s (%s): "
                          "no base backup can be recovered to that time"
                          % (format_time(target), bases[0]["id"], bases[0]["end_time"]))
    return usable[-1]


def summarize(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a catalog listing shows of one backup."""
    keys = ("id", "kind", "series", "databases", "start_time", "end_time", "size", "raw_size", "compression",
            "server_version", "start_lsn", "stop_lsn", "timeline", "start_wal", "encryption")
    summary = {k: manifest.get(k) for k in keys}
    summary["labels"] = manifest.get("labels") or {}
    return summary
