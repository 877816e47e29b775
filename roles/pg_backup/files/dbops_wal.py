# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WAL archiving to S3 for PostgreSQL's archive_command and restore_command (installed by role pg_backup).

    archive_command = '/usr/bin/python3 /usr/local/lib/muejam-dbops/dbops_wal.py push %p %f'
    restore_command = '/usr/bin/python3 /usr/local/lib/muejam-dbops/dbops_wal.py fetch %f %p'

Exit status 0 only when the segment is safely stored (or fetched and checked); anything else is
non-zero so PostgreSQL retries the archive, or ends recovery when a segment is missing. Settings
come from a JSON file (default /etc/muejam-dbops/backup.json, or DBOPS_BACKUP_CONFIG).
"""

from __future__ import annotations

import json
import os
import sys

LIB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LIB)

from ansible_collections.muejam.dbops.plugins.module_utils.backup_plan import BackupError  # noqa: E402
from ansible_collections.muejam.dbops.plugins.module_utils.s3_backup import (  # noqa: E402
    S3Target,
    StreamSettings,
    WalNotFound,
    fetch_wal,
    push_wal,
    s3_client,
)

DEFAULT_CONFIG = "/etc/muejam-dbops/backup.json"


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def target_from(config: dict) -> S3Target:
    s3 = config["s3"]
    return S3Target(bucket=s3["bucket"], prefix=s3.get("prefix", ""), region=s3.get("region"),
                    endpoint_url=s3.get("endpoint_url"), access_key=s3.get("access_key"),
                    secret_key=s3.get("secret_key"), encryption=s3.get("encryption"),
                    encryption_kms_key_id=s3.get("encryption_kms_key_id"),
                    connect_timeout=int(s3.get("connect_timeout", 10)))


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("push", "fetch"):
        print("usage: dbops_wal.py push <path> <name> | fetch <name> <path>", file=sys.stderr)
        return 2
    config = load_config(os.environ.get("DBOPS_BACKUP_CONFIG", DEFAULT_CONFIG))
    compression = config.get("wal_compression", "zstd")
    settings = StreamSettings(compression=compression, compression_level=int(config.get("wal_compression_level", 3)),
                              compression_threads=1)
    target = target_from(config)
    client = s3_client(target, workers=1)
    try:
        if argv[0] == "push":
            outcome = push_wal(client, target, argv[1], argv[2], settings)
            if outcome != "archived":
                print("dbops_wal: %s %s" % (argv[2], outcome), file=sys.stderr)
        else:
            fetch_wal(client, target, argv[1], argv[2], compression)
    except WalNotFound as exc:
        print("dbops_wal: %s" % exc, file=sys.stderr)
        return 1
    except (BackupError, OSError) as exc:
        print("dbops_wal: %s failed: %s" % (argv[0], exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
