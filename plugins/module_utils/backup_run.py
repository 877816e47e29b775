# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one call of the pg_backup_s3 module does, mode by mode (backup, restore, retention, list, verify),
on the streaming code of s3_backup.py and the decisions of backup_plan.py; the module keeps its options.
Not installed on the hosts (role pg_backup copies backup_plan.py and s3_backup.py only)."""

from __future__ import annotations

from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.backup_plan import (
    BackupError,
    parse_time,
    select_base_backup,
    summarize,
    utc_now,
)
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import connect, query, query_one
from ansible_collections.muejam.dbops.plugins.module_utils.s3_backup import (
    S3Target,
    StreamSettings,
    apply_retention,
    check_bucket,
    find_backup,
    pg_env,
    read_catalog,
    read_server_info,
    restore_base,
    restore_logical,
    run_backup,
    s3_client,
    verify_backup,
)


class VerifyFailed(BackupError):
    """A backup that does not read back as written; ``result`` is verify_backup's report."""

    def __init__(self, msg: str, result: dict[str, Any]) -> None:
        super().__init__(msg)
        self.result = result


def target_from(params: dict) -> S3Target:
    return S3Target(bucket=params["bucket"], prefix=params["prefix"], region=params["region"],
                    endpoint_url=params["endpoint_url"], access_key=params["access_key"],
                    secret_key=params["secret_key"], session_token=params["session_token"],
                    profile=params["profile"], validate_certs=params["validate_certs"],
                    encryption=params["encryption"], encryption_kms_key_id=params["encryption_kms_key_id"],
                    connect_timeout=params["s3_connect_timeout"])


def settings_from(params: dict) -> StreamSettings:
    if params["part_size"] and params["part_size"] < 5 * 1024 * 1024:
        raise BackupError("part_size must be 0 (automatic) or at least 5 MiB (5242880), S3's smallest part")
    if params["upload_workers"] < 1:
        raise BackupError("upload_workers must be at least 1")
    return StreamSettings(compression=params["compression"], compression_level=params["compression_level"],
                          compression_threads=params["compression_threads"], part_size=params["part_size"],
                          workers=params["upload_workers"])


def server_info(params: dict) -> dict:
    conn = connect(params)
    try:
        return read_server_info(lambda sql: [tuple(r.values()) for r in query(conn, sql)])
    finally:
        conn.close()


def pick_backup(catalog: dict, params: dict) -> dict:
    if params["backup_id"]:
        return find_backup(catalog, params["backup_id"])
    if params["kind"] == "base" and params["mode"] == "restore":
        target = parse_time(params["recovery_target_time"]) if params["recovery_target_time"] else None
        return select_base_backup(catalog["backups"], target)
    candidates = [m for m in catalog["backups"] if m["kind"] == params["kind"]]
    if not candidates:
        raise BackupError("there is no complete %s backup under the prefix %r" % (params["kind"], params["prefix"]))
    return max(candidates, key=lambda m: (parse_time(m["end_time"]), m["id"]))


def too_old(manifest: dict, max_age_hours: float | None, now) -> str:
    """Why a backup is older than the limit, or empty."""
    if max_age_hours is None:
        return ""
    hours = (now - parse_time(manifest["end_time"])).total_seconds() / 3600.0
    if hours <= max_age_hours:
        return ""
    values = (manifest["kind"], manifest["id"], hours, manifest["end_time"], max_age_hours)
    return ("the newest complete %s backup %s finished %.1f hours ago (%s), more than max_age_hours %g: check the "
            "backup timer and its last run's log" % values)


def do_backup(params: dict, check_mode: bool, client, target: S3Target, settings: StreamSettings) -> dict:
    databases = params["databases"] or [params["login_db"]]
    if params["kind"] == "base":
        databases = []
    elif "all" in databases and len(databases) > 1:
        raise BackupError("databases: 'all' cannot be combined with other names")
    labels = {str(k): str(v) for k, v in (params.get("labels") or {}).items()}
    server = server_info(params)
    if check_mode:
        check_bucket(client, target)
        return {"changed": True, "would": "take a %s backup of %s to %s%s" % (
            params["kind"], ", ".join(databases) or "the cluster", target.describe(),
            " labelled %s" % ", ".join("%s=%s" % kv for kv in sorted(labels.items())) if labels else "")}
    manifest = run_backup(client, target, settings, params["kind"], databases, server, pg_env(params),
                          wal_method=params["wal_method"], checkpoint=params["checkpoint"], bindir=params["pg_bindir"],
                          labels=labels)
    return {"changed": True, "backup": manifest}


def prepare_target_db(params: dict, name: str, check_mode: bool) -> None:
    import psycopg2.extensions

    conn = connect(params)
    try:
        exists = query_one(conn, "SELECT 1 AS x FROM pg_database WHERE datname = %s", (name,))
        if exists:
            other = dict(params, login_db=name)
            target_conn = connect(other)
            try:
                tables = query_one(target_conn, "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n "
                                                "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND "
                                                "n.nspname NOT IN ('pg_catalog', 'information_schema')")
            finally:
                target_conn.close()
            if tables["n"]:
                raise BackupError("database %r already has %d tables: restore into a new or empty database"
                                  % (name, tables["n"]))
        elif not check_mode:
            query(conn, "CREATE DATABASE %s" % psycopg2.extensions.quote_ident(name, conn))
    finally:
        conn.close()


def do_restore(params: dict, check_mode: bool, client, target: S3Target) -> dict:
    check_bucket(client, target)
    manifest = pick_backup(read_catalog(client, target), params)
    if manifest["kind"] == "logical":
        into = params["restore_target_db"]
        if not into:
            raise BackupError("restore_target_db is required to restore a logical backup")
        dumped = [f["database"] for f in manifest["files"] if f.get("content") == "pg_dump-custom"]
        source = params["restore_database"] or dumped[0]
        prepare_target_db(params, into, check_mode)
        if check_mode:
            return {"changed": True, "would": "restore %s of backup %s into %s" % (source, manifest["id"], into)}
        restore_logical(client, target, manifest, source, into, pg_env(params), params["pg_bindir"])
    else:
        if not params["restore_data_directory"]:
            raise BackupError("restore_data_directory is required to restore a base backup")
        if check_mode:
            return {"changed": True, "would": "unpack base backup %s into %s" % (manifest["id"],
                                                                                 params["restore_data_directory"])}
        restore_base(client, target, manifest, params["restore_data_directory"])
    return {"changed": True, "backup": manifest}


def run(params: dict, check_mode: bool) -> dict:
    """One call of pg_backup_s3: the mode's work, or BackupError/PostgresError (VerifyFailed for a bad backup)."""
    target = target_from(params)
    settings = settings_from(params)
    client = s3_client(target, settings.workers)
    mode = params["mode"]
    if mode == "backup":
        return do_backup(params, check_mode, client, target, settings)
    if mode == "restore":
        return do_restore(params, check_mode, client, target)
    if mode == "retention":
        plan = apply_retention(client, target, params["retention_days"], params["retention_min_backups"],
                               check_mode)
        return dict(plan, changed=bool(plan["delete"] or plan["delete_wal"]))
    check_bucket(client, target)
    catalog = read_catalog(client, target)
    if mode == "list":
        backups = sorted(catalog["backups"], key=lambda m: (m["end_time"], m["id"]))
        return {"changed": False, "backups": [summarize(m) for m in backups], "incomplete": catalog["incomplete"],
                "wal_count": len(catalog["wal"]), "oldest_wal": catalog["wal"][0] if catalog["wal"] else None}
    manifest = pick_backup(catalog, params)
    age = too_old(manifest, params["max_age_hours"], utc_now())
    if age:
        raise VerifyFailed(age, {"id": manifest["id"], "ok": False, "problems": [age], "files": []})
    result = verify_backup(client, target, manifest, pg_env(params), params["verify_list"], params["pg_bindir"])
    if not result["ok"]:
        raise VerifyFailed("backup %s failed verification: %s" % (manifest["id"], "; ".join(result["problems"])),
                           result)
    return {"changed": False, "verify": result}
