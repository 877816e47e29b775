"""Streaming pieces without a server: compressors round-trip, the uploader's parts, hashing and abort-on-failure."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils import s3_backup
from ansible_collections.muejam.dbops.plugins.module_utils.backup_plan import MIB, BackupError
from ansible_collections.muejam.dbops.plugins.module_utils.s3_backup import (
    MultipartUploader,
    S3Target,
    StreamSettings,
    compress_chunks,
    decompress_chunks,
)

DATA = [os.urandom(300_000) + b"text " * 50_000 for dummy in range(7)]


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_round_trip_with_python_codecs(compression):
    settings = StreamSettings(compression=compression)
    packed = b"".join(compress_chunks(iter(DATA), settings))
    assert b"".join(decompress_chunks([packed[i:i + 65536] for i in range(0, len(packed), 65536)],
                                      compression)) == b"".join(DATA)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd binary not installed")
def test_zstd_binary_fallback_interoperates(monkeypatch):
    packed_by_module = b"".join(compress_chunks(iter(DATA), StreamSettings()))
    monkeypatch.setattr(s3_backup, "HAS_ZSTANDARD", False)
    packed_by_binary = b"".join(compress_chunks(iter(DATA), StreamSettings()))
    assert b"".join(decompress_chunks([packed_by_module], "zstd")) == b"".join(DATA)
    monkeypatch.setattr(s3_backup, "HAS_ZSTANDARD", True)
    assert b"".join(decompress_chunks([packed_by_binary], "zstd")) == b"".join(DATA)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd binary not installed")
def test_zstd_binary_fallback_propagates_source_failure(monkeypatch):
    monkeypatch.setattr(s3_backup, "HAS_ZSTANDARD", False)

    def failing():
        yield DATA[0]
        raise BackupError("pg_dump exited with status 1")

    with pytest.raises(BackupError, match="status 1"):
        b"".join(compress_chunks(failing(), StreamSettings()))


def test_corrupt_zstd_is_reported():
    packed = bytearray(b"".join(compress_chunks(iter(DATA), StreamSettings())))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(BackupError):
        b"".join(decompress_chunks([bytes(packed)], "zstd"))


class RecordingClient:
    """Stands in for boto3 only to observe part sizes and calls; the real endpoint is in the integration tests."""

    def __init__(self, fail_on_part=None):
        self.parts = {}
        self.calls = []
        self.fail_on_part = fail_on_part
        self.lock = threading.Lock()

    def create_multipart_upload(self, **kw):
        self.calls.append("create")
        return {"UploadId": "u1"}

    def upload_part(self, **kw):
        if kw["PartNumber"] == self.fail_on_part:
            raise RuntimeError("connection reset")
        with self.lock:
            self.parts[kw["PartNumber"]] = kw["Body"]
        return {"ETag": '"%d"' % kw["PartNumber"]}

    def complete_multipart_upload(self, **kw):
        self.calls.append(("complete", [p["PartNumber"] for p in kw["MultipartUpload"]["Parts"]]))

    def abort_multipart_upload(self, **kw):
        self.calls.append("abort")


def test_uploader_cuts_fixed_parts_and_hashes_everything():
    client = RecordingClient()
    chunks = [os.urandom(700_000) for dummy in range(40)]
    result = MultipartUploader(client, S3Target("b"), "k", 5 * MIB, workers=3).upload(iter(chunks))
    joined = b"".join(chunks)
    assert result.sha256 == hashlib.sha256(joined).hexdigest()
    assert result.size == len(joined)
    assert b"".join(client.parts[n] for n in sorted(client.parts)) == joined
    assert all(len(client.parts[n]) == 5 * MIB for n in sorted(client.parts)[:-1])
    assert client.calls[-1] == ("complete", list(range(1, 7)))


def test_uploader_aborts_when_a_part_fails():
    client = RecordingClient(fail_on_part=2)
    with pytest.raises(BackupError, match="uploading a part"):
        MultipartUploader(client, S3Target("b"), "k", 5 * MIB, workers=2).upload(
            iter([os.urandom(MIB) for dummy in range(30)]))
    assert client.calls[-1] == "abort"
    assert not any(isinstance(c, tuple) for c in client.calls)


def test_uploader_aborts_when_the_source_fails():
    client = RecordingClient()

    def source():
        yield os.urandom(6 * MIB)
        raise BackupError("pg_dump exited with status 1")

    with pytest.raises(BackupError, match="status 1"):
        MultipartUploader(client, S3Target("b"), "k", 5 * MIB, workers=2).upload(source())
    assert client.calls == ["create", "abort"]


def test_empty_stream_is_one_empty_part():
    client = RecordingClient()
    result = MultipartUploader(client, S3Target("b"), "k", 5 * MIB).upload(iter([]))
    assert result.parts == 1 and client.parts == {1: b""}
