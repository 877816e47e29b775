# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup timer's job (installed by role pg_backup): take the configured backups, apply retention,
write Prometheus textfile metrics. The same module_utils code as the pg_backup_s3 module does the work.

    /usr/bin/python3 /usr/local/lib/muejam-dbops/dbops_backup_run.py [/etc/muejam-dbops/backup.json]

Runs as the postgres user and connects through the Unix socket.
"""

from __future__ import annotations

import os
import sys
import time

LIB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LIB)

import psycopg2  # noqa: E402
from dbops_wal import DEFAULT_CONFIG, load_config, target_from  # noqa: E402

from ansible_collections.muejam.dbops.plugins.module_utils.backup_plan import BackupError  # noqa: E402
from ansible_collections.muejam.dbops.plugins.module_utils.s3_backup import (  # noqa: E402
    StreamSettings,
    apply_retention,
    pg_env,
    read_server_info,
    run_backup,
    s3_client,
)

METRIC_HELP = {
    "dbops_backup_last_success_timestamp_seconds": "Unix time the last backup of this kind finished successfully.",
    "dbops_backup_last_size_bytes": "Stored (compressed) size of the last successful backup of this kind.",
    "dbops_backup_last_duration_seconds": "Duration of the last successful backup of this kind.",
    "dbops_backup_last_run_success": "1 if the last run of this kind succeeded, 0 if it failed.",
}


def read_metrics(path: str) -> dict[tuple[str, str], str]:
    """Previous values, so a failed run keeps the last success time (the alert fires on its age)."""
    values: dict[tuple[str, str], str] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("dbops_") and "{" in line:
                    name, rest = line.split("{", 1)
                    labels, value = rest.rsplit("}", 1)
                    values[(name, labels)] = value.strip()
    except FileNotFoundError:
        pass
    return values


def write_metrics(path: str, values: dict[tuple[str, str], str]) -> None:
    lines = []
    for name, text in METRIC_HELP.items():
        lines += ["# HELP %s %s" % (name, text), "# TYPE %s gauge" % name]
        lines += ["%s{%s} %s" % (name, labels, value) for (metric, labels), value in sorted(values.items())
                  if metric == name]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".tmp"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(partial, path)


def in_recovery(params: dict) -> bool:
    """True on a standby: the timer is installed on standbys too (ready for a promotion), and only the
    primary backs up. A server that does not answer is not a standby: the backup then fails and says why."""
    try:
        conn = psycopg2.connect(host=params["login_unix_socket"], port=params["login_port"], dbname="postgres")
    except psycopg2.Error:
        return False
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_is_in_recovery()")
        return bool(cur.fetchone()[0])
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    config = load_config(argv[0] if argv else os.environ.get("DBOPS_BACKUP_CONFIG", DEFAULT_CONFIG))
    target = target_from(config)
    settings = StreamSettings(compression=config.get("compression", "zstd"),
                              compression_level=int(config.get("compression_level", 3)),
                              workers=int(config.get("upload_workers", 4)))
    client = s3_client(target, settings.workers)
    params = {"login_unix_socket": config.get("socket_dir", "/var/run/postgresql"),
              "login_port": config.get("port", 5432), "login_db": "postgres"}
    metrics_path = config["metrics_file"]
    if in_recovery(params):
        # A former primary's last figures would keep its backup-age alert firing for a series that moved on.
        write_metrics(metrics_path, {})
        print("dbops backup: this server is a standby; the primary takes the backups (nothing to do)")
        return 0
    values = read_metrics(metrics_path)
    failed = False
    for job in config["jobs"]:
        labels = 'kind="%s",series="%s"' % (job["kind"], "+".join(job.get("databases", [])) or "cluster")
        started = time.time()
        try:
            conn = psycopg2.connect(host=params["login_unix_socket"], port=params["login_port"], dbname="postgres")
            try:
                cur = conn.cursor()

                def run_sql(sql: str, cur=cur) -> list[tuple]:
                    cur.execute(sql)
                    return cur.fetchall()

                server = read_server_info(run_sql)
            finally:
                conn.close()
            manifest = run_backup(client, target, settings, job["kind"], job.get("databases", []), server,
                                  pg_env(params), wal_method=job.get("wal_method", "fetch"))
        except (BackupError, psycopg2.Error, OSError) as exc:
            failed = True
            values[("dbops_backup_last_run_success", labels)] = "0"
            print("dbops backup %s failed: %s" % (labels, exc), file=sys.stderr)
            continue
        values[("dbops_backup_last_success_timestamp_seconds", labels)] = "%d" % time.time()
        values[("dbops_backup_last_size_bytes", labels)] = str(manifest["size"])
        values[("dbops_backup_last_duration_seconds", labels)] = "%.1f" % (time.time() - started)
        values[("dbops_backup_last_run_success", labels)] = "1"
        print("dbops backup %s: %s, %d bytes" % (labels, manifest["id"], manifest["size"]))
    write_metrics(metrics_path, values)
    if not failed and config.get("retention"):
        try:
            plan = apply_retention(client, target, float(config["retention"]["days"]),
                                   int(config["retention"]["min_backups"]), check_mode=False)
            print("dbops retention: deleted %d backups and %d WAL files"
                  % (len(plan["delete"]), len(plan["delete_wal"])))
        except BackupError as exc:
            print("dbops retention failed: %s" % exc, file=sys.stderr)
            return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
