#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup_s3
short_description: Stream PostgreSQL backups to S3, list, verify, expire and restore them
version_added: 0.2.0
description:
  - O(mode=backup) takes a logical backup (C(pg_dump) custom format of one or more databases, or with
    O(databases=[all]) the globals plus every database) or a physical base backup (C(pg_basebackup) tar
    stream, the start of every point-in-time recovery), and streams it from the child process through
    zstd into a parallel S3 multipart upload. Nothing is written to local disk and memory stays bounded
    (about 2 x O(upload_workers) + 2 parts) whatever the database size.
  - A backup exists only when its manifest (C(manifest.json) next to its objects) exists. If the dump
    command exits non-zero or any upload fails, the multipart upload is aborted, objects already written
    for that backup are deleted, no manifest is written and the task fails.
  - O(mode=list) returns the catalog. O(mode=verify) re-reads every object of a backup, checks its
    SHA-256 and size against the manifest, decompresses it fully and, for logical backups, runs
    C(pg_restore --list) over the stream.
  - O(mode=retention) keeps every backup younger than O(retention_days) and at least the newest
    O(retention_min_backups) of each series (never fewer than one) and deletes the rest, plus archived
    WAL older than the start of the oldest kept base backup. In check mode it only reports.
  - O(mode=restore) restores a logical backup into a database (created when missing, refused when it
    has tables) in one transaction, or unpacks a base backup into an empty data directory (the role
    C(muejam.dbops.pg_restore) then writes the recovery settings and starts the server).
  - The PostgreSQL client tools (C(pg_dump), C(pg_basebackup), C(pg_restore)) of the server's major
    version or newer must be on the host that runs the module.
extends_documentation_fragment:
  - muejam.dbops.postgres
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  mode:
    description: What to do.
    type: str
    choices: [backup, list, verify, retention, restore]
    default: backup
  kind:
    description:
      - C(logical) for C(pg_dump) custom-format dumps, C(base) for a physical base backup.
      - With O(mode=verify) or O(mode=restore) and no O(backup_id), selects the newest backup of this kind.
    type: str
    choices: [logical, base]
    default: logical
  databases:
    description:
      - Databases to dump with O(kind=logical). C(all) dumps the globals (roles, tablespaces) and every
        database that allows connections. Empty means O(login_db).
    type: list
    elements: str
    default: []
  bucket:
    description: The S3 bucket. It must exist.
    type: str
    required: true
  prefix:
    description: Key prefix for this cluster's backups (C(<prefix>/backups/<id>/...)) and WAL (C(<prefix>/wal/...)).
    type: str
    default: ""
  region:
    description: AWS region. Defaults to the boto3 configuration.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description: URL of an S3-compatible endpoint (MinIO, Ceph, moto). Empty means AWS S3.
    type: str
    aliases: [aws_endpoint_url, s3_url]
  access_key:
    description: Access key id. When unset the boto3 credential chain is used (environment, ~/.aws, instance role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description: Secret access key. Never logged.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description: Session token for temporary credentials. Never logged.
    type: str
    aliases: [aws_session_token]
  profile:
    description: Named profile of the boto3 configuration.
    type: str
    aliases: [aws_profile]
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  s3_connect_timeout:
    description: Seconds to wait for the S3 endpoint to accept a connection.
    type: int
    default: 10
  encryption:
    description: Server-side encryption of the objects.
    type: str
    choices: [AES256, "aws:kms"]
  encryption_kms_key_id:
    description: KMS key id when O(encryption=aws:kms); the bucket's default key when unset.
    type: str
  compression:
    description:
      - Compression of the stream. zstd uses the C(zstandard) Python module when it is importable,
        else the C(zstd) command.
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  compression_level:
    description: Compression level (zstd 1-19, gzip 1-9).
    type: int
    default: 3
  compression_threads:
    description: zstd worker threads; 0 means one per core.
    type: int
    default: 0
  part_size:
    description:
      - Multipart part size in bytes. 0 chooses the smallest size (at least 8 MiB) that keeps the
        largest plausible backup (1.5 x the database size + 1 GiB) under S3's 10,000-part limit.
    type: int
    default: 0
  upload_workers:
    description: Parts uploaded in parallel (also the depth of the queue of parts waiting).
    type: int
    default: 4
  wal_method:
    description:
      - WAL in a base backup. C(fetch) makes the backup self-contained (the WAL written during the backup
        is in the tar). C(none) relies on the WAL archive. C(stream) is not possible when the tar goes to
        standard output.
    type: str
    choices: [fetch, none]
    default: fetch
  checkpoint:
    description: Checkpoint mode of a base backup.
    type: str
    choices: [fast, spread]
    default: fast
  backup_id:
    description: The backup to verify or restore. Default is the newest complete one of O(kind).
    type: str
  labels:
    description:
      - With O(mode=backup), names and values written into the manifest (for example C(purpose=pre-migration)
        and the migration), shown by O(mode=list). They do not change retention, which keeps or deletes by age.
    type: dict
    default: {}
  verify_list:
    description: With O(mode=verify), also run C(pg_restore --list) over logical dumps.
    type: bool
    default: true
  max_age_hours:
    description:
      - With O(mode=verify), the backup verified (the newest complete one of O(kind) unless O(backup_id) is set)
        must have finished less than this many hours ago, or the task fails with its age. Unset means any age.
    type: float
  retention_days:
    description: Backups that finished less than this many days ago are kept.
    type: int
    default: 30
  retention_min_backups:
    description: The newest backups of each series kept whatever their age (at least 1 is always kept).
    type: int
    default: 3
  restore_database:
    description:
      - With O(mode=restore) of a logical backup, the database of the backup to restore. Default is the first one.
    type: str
  restore_target_db:
    description:
      - With O(mode=restore) of a logical backup, the database to restore into.
      - Created when missing; refused when it has tables.
    type: str
  restore_data_directory:
    description: With O(mode=restore) of a base backup, the directory to unpack into. It must be missing or empty.
    type: path
    aliases: [restore_data_dir]
  recovery_target_time:
    description:
      - With O(mode=restore) of a base backup and no O(backup_id), pick the newest base backup that
        finished before this time (ISO 8601 with a zone). A time before the oldest base backup fails.
    type: str
  pg_bindir:
    description: Directory of the PostgreSQL client tools; empty means the PATH.
    type: path
    default: ""
requirements:
  - boto3
  - psycopg2 (except for O(mode=list), O(mode=verify) and base-backup restores)
  - the C(zstd) command or the C(zstandard) Python module for zstd
notes:
  - The password reaches the client tools through the C(PGPASSWORD) environment variable, never the command line.
  - In check mode O(mode=backup) and O(mode=restore) only check that the bucket and server answer;
    O(mode=retention) returns what it would delete.
seealso:
  - name: Continuous archiving and point-in-time recovery (PostgreSQL documentation)
    description: WAL archiving, base backups and recovery targets, as the pg_backup and pg_restore roles use them.
    link: https://www.postgresql.org/docs/current/continuous-archiving.html
  - name: pg_basebackup (PostgreSQL documentation)
    description: Why a tar stream to standard output allows only WAL method fetch or none.
    link: https://www.postgresql.org/docs/current/app-pgbasebackup.html
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Nightly logical backup of the application database
  muejam.dbops.pg_backup_s3:
    mode: backup
    kind: logical
    databases: [muejam_library]
    bucket: muejam-backups
    prefix: postgresql/pg1
    region: eu-west-1
    encryption: AES256
  become: true
  become_user: postgres

- name: Base backup for point-in-time recovery, to an S3-compatible store
  muejam.dbops.pg_backup_s3:
    mode: backup
    kind: base
    bucket: muejam-backups
    prefix: postgresql/pg1
    endpoint_url: http://s3:9000
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"
  become: true
  become_user: postgres

- name: What would retention delete?
  muejam.dbops.pg_backup_s3:
    mode: retention
    bucket: muejam-backups
    prefix: postgresql/pg1
    retention_days: 30
    retention_min_backups: 7
  check_mode: true
  register: expiry

- name: Verify the newest logical backup
  muejam.dbops.pg_backup_s3:
    mode: verify
    kind: logical
    bucket: muejam-backups
    prefix: postgresql/pg1

- name: Restore it into a scratch database
  muejam.dbops.pg_backup_s3:
    mode: restore
    kind: logical
    bucket: muejam-backups
    prefix: postgresql/pg1
    restore_target_db: muejam_library_restored
  become: true
  become_user: postgres
"""

RETURN = r"""
backup:
  description: The manifest of the backup taken (O(mode=backup)) or restored (O(mode=restore)).
  returned: when a backup was taken or restored
  type: dict
  sample:
    id: 20260217T020000Z-logical-muejam_library
    kind: logical
    series: logical-muejam_library
    databases: [muejam_library]
    start_time: "2026-02-17T02:00:00Z"
    end_time: "2026-02-17T02:03:10Z"
    size: 104857600
    raw_size: 524288000
    compression: zstd
    labels: {purpose: pre-migration}
    files:
      - name: muejam_library.dump.zst
        key: postgresql/pg1/backups/20260217T020000Z-logical-muejam_library/muejam_library.dump.zst
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        size: 104857600
        raw_size: 524288000
        parts: 13
        part_size: 8388608
backups:
  description: With O(mode=list), every complete backup, oldest first (a summary of each manifest).
  returned: mode is list
  type: list
  elements: dict
incomplete:
  description: With O(mode=list), backup folders without a manifest (not backups; left by a crashed run).
  returned: mode is list
  type: list
  elements: dict
wal_count:
  description: With O(mode=list), the number of archived WAL files.
  returned: mode is list
  type: int
oldest_wal:
  description: With O(mode=list), the oldest archived WAL file, or null.
  returned: mode is list
  type: str
verify:
  description: With O(mode=verify), the result per object (C(sha256), C(size), C(toc_entries)), C(ok) and C(problems).
  returned: mode is verify
  type: dict
keep:
  description: With O(mode=retention), ids of the backups kept.
  returned: mode is retention
  type: list
  elements: str
delete:
  description: With O(mode=retention), ids of the backups deleted (or that would be, in check mode).
  returned: mode is retention
  type: list
  elements: str
delete_wal:
  description: With O(mode=retention), WAL files deleted (or that would be, in check mode).
  returned: mode is retention
  type: list
  elements: str
would:
  description: In check mode for O(mode=backup) or O(mode=restore), what the module would do.
  returned: check mode, mode is backup or restore
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.backup_plan import BackupError
from ansible_collections.muejam.dbops.plugins.module_utils.backup_run import VerifyFailed, run
from ansible_collections.muejam.dbops.plugins.module_utils.masking import scrub
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import (
    HAS_PSYCOPG2,
    PostgresError,
    postgres_argument_spec,
)
from ansible_collections.muejam.dbops.plugins.module_utils.s3_backup import HAS_BOTO3


def argument_spec() -> dict:
    spec = postgres_argument_spec()
    spec.update(
        mode={"type": "str", "default": "backup", "choices": ["backup", "list", "verify", "retention", "restore"]},
        kind={"type": "str", "default": "logical", "choices": ["logical", "base"]},
        databases={"type": "list", "elements": "str", "default": []},
        bucket={"type": "str", "required": True},
        prefix={"type": "str", "default": ""},
        region={"type": "str", "aliases": ["aws_region"]},
        endpoint_url={"type": "str", "aliases": ["aws_endpoint_url", "s3_url"]},
        access_key={"type": "str", "aliases": ["aws_access_key_id", "aws_access_key"], "no_log": True},
        secret_key={"type": "str", "aliases": ["aws_secret_access_key", "aws_secret_key"], "no_log": True},
        session_token={"type": "str", "aliases": ["aws_session_token"], "no_log": True},
        profile={"type": "str", "aliases": ["aws_profile"]},
        validate_certs={"type": "bool", "default": True},
        s3_connect_timeout={"type": "int", "default": 10},
        encryption={"type": "str", "choices": ["AES256", "aws:kms"]},
        encryption_kms_key_id={"type": "str"},
        compression={"type": "str", "default": "zstd", "choices": ["zstd", "gzip", "none"]},
        compression_level={"type": "int", "default": 3},
        compression_threads={"type": "int", "default": 0},
        part_size={"type": "int", "default": 0},
        upload_workers={"type": "int", "default": 4},
        wal_method={"type": "str", "default": "fetch", "choices": ["fetch", "none"]},
        checkpoint={"type": "str", "default": "fast", "choices": ["fast", "spread"]},
        backup_id={"type": "str"},
        labels={"type": "dict", "default": {}},
        verify_list={"type": "bool", "default": True},
        max_age_hours={"type": "float"},
        retention_days={"type": "int", "default": 30},
        retention_min_backups={"type": "int", "default": 3},
        restore_database={"type": "str"},
        restore_target_db={"type": "str"},
        restore_data_directory={"type": "path", "aliases": ["restore_data_dir"], "deprecated_aliases": [
            {"name": "restore_data_dir", "version": "0.5.0", "collection_name": "muejam.dbops"}]},
        recovery_target_time={"type": "str"},
        pg_bindir={"type": "path", "default": ""},
    )
    return spec


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"))
    needs_postgres = module.params["mode"] == "backup" or (
        module.params["mode"] == "restore" and module.params["kind"] == "logical")
    if needs_postgres and not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    secrets = [module.params["login_password"], module.params["secret_key"] or "", module.params["session_token"] or ""]
    try:
        result = run(module.params, module.check_mode)
    except VerifyFailed as exc:
        module.fail_json(msg=scrub(str(exc), *secrets), verify=exc.result)
    except (BackupError, PostgresError) as exc:
        module.fail_json(msg=scrub(str(exc), *secrets))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
