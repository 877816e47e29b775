"""The WAL archive/restore command (roles/pg_backup/files/dbops_wal.py) against the lab's real S3 endpoint.

The command runs as PostgreSQL runs it: a separate process, ``push <path> <name>`` for archive_command and
``fetch <name> <path>`` for restore_command, settings from the JSON file the role writes
(DBOPS_BACKUP_CONFIG points at a test copy), and its exit status is the outcome PostgreSQL acts on.
Only the S3 endpoint is needed (moto in the lab's ``s3`` container); no PostgreSQL server is involved.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from dbops_it import ROOT, lab

PREFIX = "dbops-it-wal"
S3_KEY, S3_SECRET = "lab-access-key", "lab-wal-secret-not-checked-by-moto"
COMMAND = ROOT / "roles" / "pg_backup" / "files" / "dbops_wal.py"
SEGMENT = "000000010000000000000003"
SEGMENT_SIZE = 16 * 1024 * 1024


class WalLab:
    def __init__(self, s3_address: str, tmp: Path):
        self.endpoint = "http://%s:9000" % s3_address
        self.tmp = tmp
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_KEY,
                               aws_secret_access_key=S3_SECRET, region_name="us-east-1")

    def new_bucket(self) -> str:
        name = "wal-" + uuid.uuid4().hex[:12]
        self.s3.create_bucket(Bucket=name)
        return name

    def config(self, bucket: str) -> Path:
        path = self.tmp / ("backup-%s.json" % uuid.uuid4().hex[:8])
        path.write_text(json.dumps({"s3": {"bucket": bucket, "prefix": "pg/pg1", "endpoint_url": self.endpoint,
                                           "region": "us-east-1", "access_key": S3_KEY, "secret_key": S3_SECRET,
                                           "connect_timeout": 5},
                                    "wal_compression": "zstd", "wal_compression_level": 3}))
        return path

    def run(self, config: Path, *args: str, hide_zstandard: bool = False) -> subprocess.CompletedProcess:
        """Run the command as PostgreSQL does; with ``hide_zstandard`` the zstandard module cannot be
        imported, so the command falls back to the zstd binary (hosts without python3-zstandard)."""
        path = [str(ROOT / ".collections")]
        if hide_zstandard:
            path.insert(0, str(self.tmp / "no-zstandard"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "DBOPS_BACKUP_CONFIG": str(config)}
        proc = subprocess.run([sys.executable, str(COMMAND), *args], capture_output=True, text=True, env=env,
                              cwd=self.tmp, timeout=120, check=False)
        assert S3_SECRET not in proc.stdout + proc.stderr
        return proc

    def stored(self, bucket: str, name: str = SEGMENT) -> dict:
        obj = self.s3.get_object(Bucket=bucket, Key="pg/pg1/wal/%s.zst" % name)
        return {"body": obj["Body"].read(), "etag": obj["ETag"], "metadata": obj["Metadata"],
                "last_modified": obj["LastModified"]}

    def keys(self, bucket: str) -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture(scope="module")
def wal_lab(request, tmp_path_factory) -> WalLab:
    addresses = json.loads(lab("up", "--suite", "bookworm", "--prefix", PREFIX, "--hosts", "s3"))
    if os.environ.get("DBOPS_KEEP_LAB") != "1":
        request.addfinalizer(lambda: lab("down", "--prefix", PREFIX))
    tmp = tmp_path_factory.mktemp("wal")
    (tmp / "no-zstandard").mkdir()
    (tmp / "no-zstandard" / "zstandard.py").write_text('raise ImportError("hidden by the test")\n')
    return WalLab(addresses["s3"], tmp)


def wal_segment(seed: int) -> bytes:
    """16 MiB like a WAL segment: pages of records (some incompressible bytes) and zero-filled tail."""
    page = hashlib.sha256(b"page-%d" % seed).digest() * 64 + b"\x00" * 6144
    records = b"".join(hashlib.sha512(b"%d-%d" % (seed, i)).digest() for i in range(4096))
    body = (records + page * 32)[:SEGMENT_SIZE // 2]
    return body + b"\x00" * (SEGMENT_SIZE - len(body))


def write_segment(wal_lab: WalLab, seed: int) -> Path:
    path = wal_lab.tmp / ("pg_wal-%s" % uuid.uuid4().hex[:8])
    path.mkdir()
    segment = path / SEGMENT
    segment.write_bytes(wal_segment(seed))
    return segment


@pytest.mark.parametrize("hide_zstandard", [False, True], ids=["zstandard-module", "zstd-binary"])
def test_push_then_fetch_gives_identical_bytes(wal_lab, hide_zstandard):
    bucket = wal_lab.new_bucket()
    config = wal_lab.config(bucket)
    segment = write_segment(wal_lab, 1)

    pushed = wal_lab.run(config, "push", str(segment), SEGMENT, hide_zstandard=hide_zstandard)
    assert pushed.returncode == 0, pushed.stderr
    stored = wal_lab.stored(bucket)
    assert len(stored["body"]) < SEGMENT_SIZE  # compressed
    assert stored["metadata"]["raw-sha256"] == hashlib.sha256(segment.read_bytes()).hexdigest()

    dest = wal_lab.tmp / ("RECOVERYXLOG-%s" % uuid.uuid4().hex[:8])
    fetched = wal_lab.run(config, "fetch", SEGMENT, str(dest), hide_zstandard=hide_zstandard)
    assert fetched.returncode == 0, fetched.stderr
    assert dest.read_bytes() == segment.read_bytes()
    assert not Path(str(dest) + ".dbops-partial").exists()


def test_pushing_the_same_segment_again_succeeds_and_changes_nothing(wal_lab):
    bucket = wal_lab.new_bucket()
    config = wal_lab.config(bucket)
    segment = write_segment(wal_lab, 2)
    assert wal_lab.run(config, "push", str(segment), SEGMENT).returncode == 0
    before = wal_lab.stored(bucket)

    again = wal_lab.run(config, "push", str(segment), SEGMENT)
    assert again.returncode == 0, again.stderr
    assert "already archived" in again.stderr
    assert wal_lab.stored(bucket) == before
    assert wal_lab.keys(bucket) == ["pg/pg1/wal/%s.zst" % SEGMENT]


def test_pushing_a_different_file_under_an_existing_name_fails_and_keeps_the_stored_segment(wal_lab):
    bucket = wal_lab.new_bucket()
    config = wal_lab.config(bucket)
    original = write_segment(wal_lab, 3)
    assert wal_lab.run(config, "push", str(original), SEGMENT).returncode == 0
    before = wal_lab.stored(bucket)

    impostor = write_segment(wal_lab, 4)
    assert impostor.read_bytes() != original.read_bytes()
    refused = wal_lab.run(config, "push", str(impostor), SEGMENT)
    assert refused.returncode != 0
    assert "already exists in the archive with different contents" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert wal_lab.stored(bucket) == before
    dest = wal_lab.tmp / ("RECOVERYXLOG-%s" % uuid.uuid4().hex[:8])
    assert wal_lab.run(config, "fetch", SEGMENT, str(dest)).returncode == 0
    assert dest.read_bytes() == original.read_bytes()


def test_fetching_a_missing_segment_exits_non_zero_and_writes_nothing(wal_lab):
    bucket = wal_lab.new_bucket()
    config = wal_lab.config(bucket)
    dest = wal_lab.tmp / ("RECOVERYXLOG-%s" % uuid.uuid4().hex[:8])

    missing = wal_lab.run(config, "fetch", "000000010000000000000099", str(dest))
    assert missing.returncode != 0
    assert "000000010000000000000099.zst is not in the archive" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not dest.exists() and not Path(str(dest) + ".dbops-partial").exists()


def test_pushing_to_a_missing_bucket_exits_non_zero_with_a_clear_message(wal_lab):
    bucket = "wal-missing-" + uuid.uuid4().hex[:8]
    config = wal_lab.config(bucket)
    segment = write_segment(wal_lab, 5)

    failed = wal_lab.run(config, "push", str(segment), SEGMENT)
    assert failed.returncode != 0
    assert "the bucket %r does not exist" % bucket in failed.stderr
    assert "Traceback" not in failed.stderr
    with pytest.raises(botocore.exceptions.ClientError):
        wal_lab.s3.head_bucket(Bucket=bucket)


def test_fetching_a_corrupted_segment_exits_non_zero_and_writes_nothing(wal_lab):
    bucket = wal_lab.new_bucket()
    config = wal_lab.config(bucket)
    segment = write_segment(wal_lab, 6)
    assert wal_lab.run(config, "push", str(segment), SEGMENT).returncode == 0
    stored = wal_lab.stored(bucket)
    other = write_segment(wal_lab, 7)
    assert wal_lab.run(config, "push", str(other), "000000010000000000000004").returncode == 0
    # A valid zstd object whose contents are not the segment recorded in the metadata.
    wal_lab.s3.put_object(Bucket=bucket, Key="pg/pg1/wal/%s.zst" % SEGMENT,
                          Body=wal_lab.stored(bucket, "000000010000000000000004")["body"],
                          Metadata=stored["metadata"])
    dest = wal_lab.tmp / ("RECOVERYXLOG-%s" % uuid.uuid4().hex[:8])

    corrupt = wal_lab.run(config, "fetch", SEGMENT, str(dest))
    assert corrupt.returncode != 0
    assert "is corrupt" in corrupt.stderr
    assert not dest.exists() and not Path(str(dest) + ".dbops-partial").exists()
