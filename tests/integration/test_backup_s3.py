"""pg_backup_s3 against a real PostgreSQL 15 primary and the lab's real S3 endpoint (moto server in a container).

The module runs on the test host as Ansible runs it (``run_module``), with the host's PostgreSQL 15
client tools (pg_dump, pg_basebackup, pg_restore) talking to the lab primary over the network: the
same as running it on a backup host. The host's client is 15, so the suite is bookworm (server 15).
The wrong-credentials test needs an endpoint that checks signatures; the lab's moto accepts any key,
so that test starts a second moto server on loopback with authentication on
(INITIAL_NO_AUTH_ACTION_COUNT) and a real IAM access key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import psycopg2
import pytest

from dbops_it import LAB_PASSWORD, ROOT, SUITES, lab, playbook, run_module

PREFIX = "dbops-it-backup"
S3_KEY, S3_SECRET = "lab-access-key", "lab-secret-key-not-checked-by-moto"
DB = "muejam_library"
pytestmark = [
    pytest.mark.skipif(shutil.which("pg_dump") is None, reason="the PostgreSQL client tools are needed"),
    pytest.mark.skipif("bookworm" not in SUITES, reason="runs on bookworm (PostgreSQL 15, like the host's client)"),
]


class BackupLab:
    def __init__(self, addresses: dict):
        self.addresses = addresses
        self.endpoint = "http://%s:9000" % addresses["s3"]
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_KEY,
                               aws_secret_access_key=S3_SECRET, region_name="us-east-1")

    def connect(self, dbname: str = "postgres", user: str = "postgres", password: str = LAB_PASSWORD):
        conn = psycopg2.connect(host=self.addresses["pg1"], user=user, password=password, dbname=dbname,
                                connect_timeout=5)
        conn.autocommit = True
        return conn

    def sql(self, statement: str, dbname: str = "postgres"):
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def new_bucket(self) -> str:
        name = "it-" + uuid.uuid4().hex[:12]
        self.s3.create_bucket(Bucket=name)
        return name

    def args(self, bucket: str, **over) -> dict:
        args = {"bucket": bucket, "prefix": "pg/pg1", "endpoint_url": self.endpoint, "region": "us-east-1",
                "access_key": S3_KEY, "secret_key": S3_SECRET, "login_host": self.addresses["pg1"],
                "login_password": LAB_PASSWORD, "login_db": DB, "connect_timeout": 5}
        args.update(over)
        return args

    def keys(self, bucket: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))

    def pending_uploads(self, bucket: str) -> list:
        return self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


@pytest.fixture(scope="module")
def blab(request) -> BackupLab:
    addresses = json.loads(lab("up", "--suite", "bookworm", "--prefix", PREFIX, "--hosts", "pg1,s3"))
    if os.environ.get("DBOPS_KEEP_LAB") != "1":
        request.addfinalizer(lambda: lab("down", "--prefix", PREFIX))
    playbook("lab/replication.yml", PREFIX, "--limit", "pg1")
    return BackupLab(addresses)


def table_checksums(blab: BackupLab, dbname: str) -> dict:
    tables = [r[0] for r in blab.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", dbname)]
    result = {}
    for table in tables:
        count, digest = blab.sql("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                                 "FROM public.%s t" % table, dbname)[0]
        result[table] = (count, digest)
    return result


def assert_no_secret(run) -> None:
    for secret in (LAB_PASSWORD, S3_SECRET):
        assert secret not in run.output


def test_logical_backup_restores_identical_tables(blab):
    bucket = blab.new_bucket()
    blab.sql("CREATE TABLE IF NOT EXISTS bk_extra (id int PRIMARY KEY, note text, amount numeric, data bytea); "
             "INSERT INTO bk_extra SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END, g * 1.5, "
             "sha256(g::text::bytea) FROM generate_series(1, 5000) g ON CONFLICT DO NOTHING", DB)
    before = table_checksums(blab, DB)
    assert before["users"][0] > 0 and before["stories"][0] > 0 and before["bk_extra"][0] == 5000

    backup = run_module("pg_backup_s3", blab.args(bucket, databases=[DB]))
    assert not backup.failed, backup.result
    assert_no_secret(backup)
    manifest = backup.result["backup"]
    entry = manifest["files"][0]
    stored = blab.s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == entry["sha256"]
    assert len(stored) == entry["size"] < entry["raw_size"]
    assert blab.s3.head_object(Bucket=bucket, Key="pg/pg1/backups/%s/manifest.json" % manifest["id"])

    verified = run_module("pg_backup_s3", blab.args(bucket, mode="verify", backup_id=manifest["id"]))
    assert not verified.failed, verified.result
    assert verified.result["verify"]["files"][0]["toc_entries"] > 5

    target = "restored_" + uuid.uuid4().hex[:8]
    restored = run_module("pg_backup_s3", blab.args(bucket, mode="restore", restore_target_db=target))
    assert not restored.failed, restored.result
    assert table_checksums(blab, target) == before

    again = run_module("pg_backup_s3", blab.args(bucket, mode="restore", restore_target_db=target))
    assert again.failed and "already has %d tables" % len(before) in again.result["msg"]


def test_missing_database_fails_before_anything_is_written(blab):
    bucket = blab.new_bucket()
    run = run_module("pg_backup_s3", blab.args(bucket, databases=["no_such_db"]))
    assert run.failed
    assert "no_such_db do not exist" in run.result["msg"]
    assert blab.keys(bucket) == []
    assert blab.pending_uploads(bucket) == []


def test_failing_pg_dump_aborts_the_upload_and_writes_no_manifest(blab):
    """pg_dump itself fails (no permission on a table) after the multipart upload has started."""
    bucket = blab.new_bucket()
    blab.sql("DROP ROLE IF EXISTS bk_limited; CREATE ROLE bk_limited LOGIN PASSWORD 'bk-limited-pw'", DB)
    blab.sql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM bk_limited", DB)
    limited = blab.args(bucket, databases=[DB], login_user="bk_limited", login_password="bk-limited-pw")
    run = run_module("pg_backup_s3", limited)
    assert run.failed
    assert "pg_dump of database %s exited with status 1" % DB in run.result["msg"]
    assert "permission denied" in run.result["msg"]
    assert blab.keys(bucket) == []
    assert blab.pending_uploads(bucket) == []
    assert "bk-limited-pw" not in run.output


def put_manifest(blab: BackupLab, bucket: str, ident: str, kind: str, end: datetime, start_wal: str | None = None):
    data_key = "pg/pg1/backups/%s/data.zst" % ident
    blab.s3.put_object(Bucket=bucket, Key=data_key, Body=b"x")
    manifest = {"format": 1, "id": ident, "kind": kind, "series": "base" if kind == "base" else "logical-" + DB,
                "databases": [] if kind == "base" else [DB], "start_time": (end - timedelta(minutes=3)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"), "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "compression": "zstd",
                "files": [{"name": "data.zst", "key": data_key, "size": 1, "raw_size": 1, "sha256": "0" * 64}]}
    if start_wal:
        manifest["start_wal"] = start_wal
    blab.s3.put_object(Bucket=bucket, Key="pg/pg1/backups/%s/manifest.json" % ident, Body=json.dumps(manifest))


def test_retention_keeps_exactly_the_right_backups(blab):
    bucket = blab.new_bucket()
    now = datetime.now(timezone.utc)
    for age in (1, 10, 40, 50, 60):
        put_manifest(blab, bucket, "L%02d" % age, "logical", now - timedelta(days=age))
    for age, wal in ((2, "000000010000000000000010"), (45, "000000010000000000000008"),
                     (70, "000000010000000000000004")):
        put_manifest(blab, bucket, "B%02d" % age, "base", now - timedelta(days=age), start_wal=wal)
    for seg in range(2, 0x13):
        blab.s3.put_object(Bucket=bucket, Key="pg/pg1/wal/0000000100000000000000%02X.zst" % seg, Body=b"w")
    blab.s3.put_object(Bucket=bucket, Key="pg/pg1/wal/00000002.history.zst", Body=b"h")
    # an incomplete folder (no manifest) is not a backup and is not counted
    blab.s3.put_object(Bucket=bucket, Key="pg/pg1/backups/L00-crashed/data.zst", Body=b"x")
    before = blab.keys(bucket)

    args = blab.args(bucket, mode="retention", retention_days=30, retention_min_backups=2)
    planned = run_module("pg_backup_s3", dict(args, _ansible_check_mode=True))
    assert not planned.failed, planned.result
    assert planned.result["changed"] is True
    assert blab.keys(bucket) == before  # check mode deletes nothing

    applied = run_module("pg_backup_s3", args)
    assert not applied.failed, applied.result
    expected_delete = ["B70", "L40", "L50", "L60"]
    expected_wal = ["0000000100000000000000%02X" % s for s in range(2, 8)]
    for result in (planned.result, applied.result):
        assert result["delete"] == expected_delete
        assert result["keep"] == ["B02", "B45", "L01", "L10"]
        assert result["delete_wal"] == expected_wal
    left = blab.keys(bucket)
    for ident in expected_delete:
        assert not [k for k in left if "/%s/" % ident in k]
    for ident in applied.result["keep"]:
        assert "pg/pg1/backups/%s/manifest.json" % ident in left
    wal_left = sorted(k.rsplit("/", 1)[1] for k in left if "/wal/" in k)
    assert wal_left == sorted(["00000002.history.zst"] + ["0000000100000000000000%02X.zst" % s
                                                          for s in range(8, 0x13)])
    assert "pg/pg1/backups/L00-crashed/data.zst" in left

    listing = run_module("pg_backup_s3", blab.args(bucket, mode="list"))
    assert [b["id"] for b in listing.result["backups"]] == ["B45", "L10", "B02", "L01"]
    assert listing.result["incomplete"][0]["id"] == "L00-crashed"


def test_corrupted_object_fails_verification(blab):
    bucket = blab.new_bucket()
    backup = run_module("pg_backup_s3", blab.args(bucket, databases=[DB]))
    assert not backup.failed, backup.result
    key = backup.result["backup"]["files"][0]["key"]
    data = bytearray(blab.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    blab.s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    run = run_module("pg_backup_s3", blab.args(bucket, mode="verify"))
    assert run.failed
    assert "failed verification" in run.result["msg"]
    assert "does not match the manifest" in run.result["msg"]
    assert run.result["verify"]["ok"] is False


def test_base_backup_restore_and_target_before_oldest_base(blab, tmp_path):
    bucket = blab.new_bucket()
    backup = run_module("pg_backup_s3", blab.args(bucket, kind="base", login_db="postgres"))
    assert not backup.failed, backup.result
    manifest = backup.result["backup"]
    assert manifest["start_wal"].startswith("00000001") and manifest["timeline"] == 1

    too_early = blab.args(bucket, mode="restore", kind="base", recovery_target_time="2001-01-01T00:00:00Z",
                          restore_data_directory=str(tmp_path / "early"))
    early = run_module("pg_backup_s3", too_early)
    assert early.failed
    assert "before the end of the oldest base backup" in early.result["msg"]
    assert not (tmp_path / "early").exists()

    data_dir = tmp_path / "data"
    unpack = blab.args(bucket, mode="restore", kind="base", restore_data_directory=str(data_dir))
    restored = run_module("pg_backup_s3", unpack)
    assert not restored.failed, restored.result
    assert (data_dir / "PG_VERSION").read_text().strip() == "15"
    assert (data_dir / "global" / "pg_control").stat().st_size > 0
    wal = sorted(p.name for p in (data_dir / "pg_wal").iterdir() if len(p.name) == 24)
    assert manifest["start_wal"] in wal  # -X fetch: the WAL needed for consistency is inside


def test_bucket_missing_is_a_clear_error(blab):
    bucket = blab.new_bucket()
    blab.s3.put_object(Bucket=bucket, Key="pg/pg1/backups/keep/manifest.json", Body=b"{}")
    for mode in ("backup", "retention", "list"):
        run = run_module("pg_backup_s3", blab.args("no-such-bucket-" + uuid.uuid4().hex[:6], mode=mode))
        assert run.failed
        assert "does not exist" in run.result["msg"] and "create it or check bucket" in run.result["msg"]
    assert blab.keys(bucket) == ["pg/pg1/backups/keep/manifest.json"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_endpoint_is_a_clear_error(blab):
    start = time.monotonic()
    nowhere = blab.args("any", mode="retention", endpoint_url="http://127.0.0.1:%d" % free_port())
    run = run_module("pg_backup_s3", nowhere)
    assert run.failed
    assert "cannot reach the S3 endpoint" in run.result["msg"]
    assert time.monotonic() - start < 60


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory):
    """A moto server on loopback that checks signatures, with one IAM user allowed everything."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    endpoint = "http://127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        iam = boto3.client("iam", endpoint_url=endpoint, aws_access_key_id="bootstrap",
                           aws_secret_access_key="bootstrap", region_name="us-east-1")
        iam.create_user(UserName="backup")
        iam.put_user_policy(UserName="backup", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="backup")["AccessKey"]
        yield endpoint, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_wrong_credentials_are_a_clear_error_and_delete_nothing(blab, auth_s3):
    endpoint, access, secret = auth_s3
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                      region_name="us-east-1")
    s3.create_bucket(Bucket="auth-bucket")
    old = (datetime.now(timezone.utc) - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for ident in ("a", "b"):
        s3.put_object(Bucket="auth-bucket", Key="pg/pg1/backups/%s/manifest.json" % ident, Body=json.dumps(
            {"format": 1, "id": ident, "kind": "logical", "series": "s", "start_time": old, "end_time": old,
             "compression": "zstd", "files": [{"name": "d", "key": "k", "size": 1, "raw_size": 1, "sha256": "0"}]}))
    wrong_secret = "definitely-wrong-secret-value"
    for access_key in (access, "AKIAUNKNOWNKEY000000"):
        wrong = blab.args("auth-bucket", mode="retention", endpoint_url=endpoint, access_key=access_key,
                          secret_key=wrong_secret, retention_min_backups=1, retention_days=1)
        run = run_module("pg_backup_s3", wrong)
        assert run.failed
        assert "S3 refused the credentials" in run.result["msg"]
        assert wrong_secret not in run.output
    right = blab.args("auth-bucket", mode="list", endpoint_url=endpoint, access_key=access, secret_key=secret)
    good = run_module("pg_backup_s3", right)
    assert not good.failed, good.result
    assert sorted(b["id"] for b in good.result["backups"]) == ["a", "b"]
