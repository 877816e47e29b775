# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming PostgreSQL backups to S3: compress, upload in parallel parts, checksum, catalog, verify, restore.

Used by the ``pg_backup_s3`` module, by the backup timer's runner and by the WAL command that
the ``pg_backup`` role installs on database hosts (they import this file and ``backup_plan.py``
from a copy of this package), so every path runs the same code.

Memory stays bounded whatever the database size: the backup is read from the child process's
stdout in 1 MiB chunks, compressed as it streams, cut into parts of a fixed size, and at most
``workers`` parts wait in a bounded queue while ``workers`` threads upload. Nothing is written to
local disk. Any failure (child exit status, compressor, an upload) aborts the multipart upload
and no manifest is written, so a failed backup leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import subprocess
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from ansible_collections.muejam.dbops.plugins.module_utils.backup_plan import (
    MANIFEST_NAME,
    S3_MAX_PARTS,
    BackupError,
    backup_id,
    backup_key,
    backups_prefix,
    build_manifest,
    choose_part_size,
    manifest_to_bytes,
    oldest_needed_wal,
    parse_basebackup_positions,
    parse_lsn,
    parse_manifest,
    plan_retention,
    plan_wal_pruning,
    utc_now,
    wal_file_name,
    wal_key,
    wal_name_from_key,
    wal_prefix,
    worst_case_size,
)

try:
    import boto3
    import botocore.config
    import botocore.exceptions

    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

try:
    import zstandard

    HAS_ZSTANDARD = True
except ImportError:
    HAS_ZSTANDARD = False

CHUNK = 1024 * 1024
STDERR_TAIL = 4000


@dataclass
class S3Target:
    """Where backups go and how to reach it (amazon.aws option names)."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    profile: str | None = None
    validate_certs: bool = True
    encryption: str | None = None
    encryption_kms_key_id: str | None = None
    connect_timeout: int = 10

    def describe(self) -> str:
        where = self.endpoint_url or ("AWS S3 region %s" % (self.region or "default"))
        return "s3://%s/%s at %s" % (self.bucket, self.prefix.strip("/"), where)

    def put_args(self) -> dict[str, str]:
        args = {}
        if self.encryption:
            args["ServerSideEncryption"] = self.encryption
        if self.encryption == "aws:kms" and self.encryption_kms_key_id:
            args["SSEKMSKeyId"] = self.encryption_kms_key_id
        return args


@dataclass
class StreamSettings:
    compression: str = "zstd"
    compression_level: int = 3
    compression_threads: int = 0  # 0: one per core
    part_size: int = 0  # 0: chosen from the expected size
    workers: int = 4


def s3_client(target: S3Target, workers: int = 4) -> Any:
    """A boto3 S3 client with short timeouts, so an unreachable endpoint fails in seconds, not minutes."""
    if not HAS_BOTO3:
        raise BackupError("boto3 is not installed on the host running this (Debian: apt install python3-boto3)")
    session = boto3.session.Session(
        aws_access_key_id=target.access_key or None, aws_secret_access_key=target.secret_key or None,
        aws_session_token=target.session_token or None, region_name=target.region or None,
        profile_name=target.profile or None)
    config = botocore.config.Config(
        connect_timeout=target.connect_timeout, read_timeout=60, max_pool_connections=workers + 4,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"} if target.endpoint_url else None)
    return session.client("s3", endpoint_url=target.endpoint_url or None, config=config,
                          verify=target.validate_certs)


def explain_s3_error(exc: Exception, target: S3Target, doing: str) -> BackupError:
    """Turn a boto3 failure into a message that says what to check (never a secret)."""
    where = target.describe()
    if HAS_BOTO3:
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                            botocore.exceptions.ReadTimeoutError)):
            return BackupError("cannot reach the S3 endpoint while %s (%s): check endpoint_url/region and the "
                               "network: %s" % (doing, where, exc))
        if isinstance(exc, botocore.exceptions.NoCredentialsError):
            return BackupError("no S3 credentials found while %s: set access_key and secret_key, or configure "
                               "the boto3 credential chain (environment, ~/.aws, instance role)" % doing)
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            # A bare 404 (HEAD has no body) names no cause: only a bucket check may read it as a missing bucket.
            if code == "NoSuchBucket" or (code == "404" and "bucket" in doing):
                return BackupError("the bucket %r does not exist (%s): create it or check bucket/endpoint_url"
                                   % (target.bucket, where))
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken",
                        "InvalidToken", "InvalidClientTokenId"):
                return BackupError("S3 refused the credentials while %s (%s, %s): check access_key/secret_key "
                                   "and the bucket policy" % (doing, where, code))
            return BackupError("S3 request failed while %s (%s): %s %s"
                               % (doing, where, code, error.get("Message", "")))
        if isinstance(exc, botocore.exceptions.BotoCoreError):
            return BackupError("S3 client error while %s (%s): %s" % (doing, where, exc))
    return BackupError("%s failed: %s" % (doing, exc))


def check_bucket(client: Any, target: S3Target) -> None:
    """Fail early, before any child process starts or any object changes, when the bucket is unusable."""
    try:
        client.head_bucket(Bucket=target.bucket)
    except Exception as exc:
        raise explain_s3_error(exc, target, "checking the bucket") from None


class OutputCollector(threading.Thread):
    """Drains a pipe in the background (so the child never blocks on it) and keeps its tail."""

    def __init__(self, stream: Any, keep: int = STDERR_TAIL) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.keep = keep
        self.lines = 0
        self._tail: deque[bytes] = deque()
        self._size = 0
        self.start()

    def run(self) -> None:
        for line in iter(self.stream.readline, b""):
            self.lines += 1
            self._tail.append(line)
            self._size += len(line)
            while self._size > self.keep and len(self._tail) > 1:
                self._size -= len(self._tail.popleft())

    def text(self) -> str:
        self.join(timeout=30)
        return b"".join(self._tail).decode("utf-8", "replace").strip()


class ChildSource:
    """A child process (pg_dump, pg_basebackup) whose stdout is the backup stream."""

    def __init__(self, argv: list[str], env: dict[str, str], what: str) -> None:
        self.what = what
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            raise BackupError("cannot start %s (%s): is the PostgreSQL client installed?" % (what, exc)) from None
        self.stderr = OutputCollector(self.proc.stderr)
        self.raw_size = 0

    def chunks(self) -> Iterator[bytes]:
        while True:
            data = self.proc.stdout.read(CHUNK)
            if not data:
                break
            self.raw_size += len(data)
            yield data
        status = self.proc.wait()
        if status != 0:
            raise BackupError("%s exited with status %d: %s" % (self.what, status, self.stderr.text()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _through_process(argv: list[str], chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
    """Pipe chunks through a filter process (the zstd binary), feeding it from a thread to avoid deadlock."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        raise BackupError("cannot start %s (%s): install zstd or the zstandard Python module" % (what, exc)) from None
    errors: list[BaseException] = []
    stderr = OutputCollector(proc.stderr)

    def feed() -> None:
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except BaseException as exc:  # noqa: B036 - handed to the reading thread, which re-raises it
            errors.append(exc)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        while True:
            data = proc.stdout.read(CHUNK)
            if not data:
                break
            yield data
        feeder.join()
        status = proc.wait()
        if errors and not isinstance(errors[0], BrokenPipeError):
            raise errors[0]
        if status != 0:
            raise BackupError("%s exited with status %d: %s" % (what, status, stderr.text()))
        if errors:
            raise BackupError("%s stopped reading its input" % what)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def compress_chunks(chunks: Iterable[bytes], settings: StreamSettings) -> Iterator[bytes]:
    """Compress a stream: zstd (Python module when importable, else the zstd binary), gzip or none."""
    if settings.compression == "none":
        yield from chunks
    elif settings.compression == "gzip":
        gz = zlib.compressobj(min(settings.compression_level, 9), zlib.DEFLATED, 31)
        for chunk in chunks:
            out = gz.compress(chunk)
            if out:
                yield out
        yield gz.flush()
    elif HAS_ZSTANDARD:
        threads = settings.compression_threads or -1
        cctx = zstandard.ZstdCompressor(level=settings.compression_level, threads=threads, write_checksum=True)
        zobj = cctx.compressobj()
        for chunk in chunks:
            out = zobj.compress(chunk)
            if out:
                yield out
        yield zobj.flush()
    else:
        argv = ["zstd", "-q", "-c", "-%d" % settings.compression_level, "-T%d" % settings.compression_threads]
        yield from _through_process(argv, chunks, "zstd")


def decompress_chunks(chunks: Iterable[bytes], compression: str) -> Iterator[bytes]:
    if compression == "none":
        yield from chunks
    elif compression == "gzip":
        gz = zlib.decompressobj(31)
        for chunk in chunks:
            yield gz.decompress(chunk)
        yield gz.flush()
        if not gz.eof:
            raise BackupError("the gzip stream is truncated")
    elif HAS_ZSTANDARD:
        # One decompression object per zstd frame: the zstd command may write several frames.
        dctx = zstandard.ZstdDecompressor()
        zobj = dctx.decompressobj()
        in_frame = False
        try:
            for chunk in chunks:
                while chunk:
                    in_frame = True
                    out = zobj.decompress(chunk)
                    if out:
                        yield out
                    chunk = b""
                    if zobj.eof:
                        chunk = zobj.unused_data
                        zobj = dctx.decompressobj()
                        in_frame = False
        except zstandard.ZstdError as exc:
            raise BackupError("the zstd stream is corrupt: %s" % exc) from None
        if in_frame:
            raise BackupError("the zstd stream is truncated")
    else:
        yield from _through_process(["zstd", "-d", "-q", "-c"], chunks, "zstd -d")


class HashingTee:
    """Counts and hashes the bytes passing through (the uploaded bytes, what the manifest records)."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sha256.update(chunk)
            self.size += len(chunk)
            yield chunk


@dataclass
class UploadResult:
    key: str
    size: int
    sha256: str
    parts: int
    part_size: int


@dataclass
class MultipartUploader:
    """Uploads a stream as one S3 object: fixed-size parts, ``workers`` threads, a queue of ``workers`` parts.

    Peak memory is about (2 * workers + 2) * part_size. Any error aborts the upload so no
    partial object or pending upload is left.
    """

    client: Any
    target: S3Target
    key: str
    part_size: int
    workers: int = 4
    _etags: dict[int, str] = field(default_factory=dict)
    _errors: list[BaseException] = field(default_factory=list)

    def _work(self, jobs: queue.Queue, upload_id: str) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            number, body = job
            if self._errors:
                continue
            try:
                response = self.client.upload_part(Bucket=self.target.bucket, Key=self.key, UploadId=upload_id,
                                                   PartNumber=number, Body=body)
                self._etags[number] = response["ETag"]
            except Exception as exc:  # handed to the producer, which aborts the upload
                self._errors.append(exc)

    def upload(self, chunks: Iterable[bytes]) -> UploadResult:
        tee = HashingTee()
        try:
            created = self.client.create_multipart_upload(Bucket=self.target.bucket, Key=self.key,
                                                          **self.target.put_args())
        except Exception as exc:
            raise explain_s3_error(exc, self.target, "starting the upload of %s" % self.key) from None
        upload_id = created["UploadId"]
        jobs: queue.Queue = queue.Queue(maxsize=self.workers)
        threads = [threading.Thread(target=self._work, args=(jobs, upload_id), daemon=True)
                   for dummy in range(self.workers)]
        for thread in threads:
            thread.start()
        number = 0
        try:
            try:
                buffer = bytearray()
                for chunk in tee.wrap(chunks):
                    buffer += chunk
                    while len(buffer) >= self.part_size:
                        number = self._submit(jobs, number, bytes(buffer[:self.part_size]))
                        del buffer[:self.part_size]
                if buffer or number == 0:
                    number = self._submit(jobs, number, bytes(buffer))
            finally:
                for stop_marker in [None] * len(threads):
                    jobs.put(stop_marker)
                for thread in threads:
                    thread.join()
            if self._errors:
                raise explain_s3_error(self._errors[0], self.target, "uploading a part of %s" % self.key)
            parts = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
            try:
                self.client.complete_multipart_upload(Bucket=self.target.bucket, Key=self.key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
            except Exception as exc:
                raise explain_s3_error(exc, self.target, "completing the upload of %s" % self.key) from None
        except BaseException:
            self._abort(upload_id)
            raise
        return UploadResult(self.key, tee.size, tee.sha256.hexdigest(), number, self.part_size)

    def _submit(self, jobs: queue.Queue, number: int, body: bytes) -> int:
        if self._errors:
            raise explain_s3_error(self._errors[0], self.target, "uploading a part of %s" % self.key)
        number += 1
        if number > S3_MAX_PARTS:
            raise BackupError("the backup outgrew %d parts of %d bytes: set a larger part_size"
                              % (S3_MAX_PARTS, self.part_size))
        jobs.put((number, body))
        return number

    def _abort(self, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.target.bucket, Key=self.key, UploadId=upload_id)
        except Exception:  # the original failure is what the user needs to see
            pass


def stream_child_to_s3(client: Any, target: S3Target, key: str, argv: list[str], env: dict[str, str], what: str,
                       settings: StreamSettings, estimated_raw: int) -> dict[str, Any]:
    """Run a dump command and stream its stdout, compressed, into one S3 object; return the manifest file entry."""
    part_size = settings.part_size or choose_part_size(worst_case_size(estimated_raw))
    source = ChildSource(argv, env, what)
    try:
        result = MultipartUploader(client, target, key, part_size, settings.workers).upload(
            compress_chunks(source.chunks(), settings))
    finally:
        source.stop()
    return {"name": key.rsplit("/", 1)[-1], "key": key, "size": result.size, "raw_size": source.raw_size,
            "sha256": result.sha256, "parts": result.parts, "part_size": result.part_size,
            "stderr": source.stderr.text()}


def pg_env(params: dict[str, Any]) -> dict[str, str]:
    """libpq environment for the client tools: the password travels in the environment, never in argv."""
    env = dict(os.environ)
    mapping = {"PGHOST": params.get("login_host") or params.get("login_unix_socket"),
               "PGPORT": params.get("login_port"), "PGUSER": params.get("login_user"),
               "PGPASSWORD": params.get("login_password"), "PGSSLMODE": params.get("ssl_mode"),
               "PGSSLROOTCERT": params.get("ca_cert"), "PGCONNECT_TIMEOUT": params.get("connect_timeout"),
               "PGDATABASE": params.get("login_db")}
    for name, value in mapping.items():
        if value not in (None, ""):
            env[name] = str(value)
    env["PGAPPNAME"] = "muejam.dbops backup"
    return env


def read_server_info(run_sql: Callable[[str], list[tuple]]) -> dict[str, Any]:
    """Version, WAL segment size and databases with their sizes, through any SQL runner."""
    version, version_num, segment = run_sql(
        "SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS num, "
        "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') AS segment")[0]
    databases = run_sql("SELECT datname, pg_database_size(oid) AS size FROM pg_database "
                        "WHERE datallowconn AND NOT datistemplate ORDER BY datname")
    try:
        system_identifier = str(run_sql("SELECT system_identifier FROM pg_control_system()")[0][0])
    except Exception:  # only superusers and pg_monitor may read it; the manifest can do without
        system_identifier = None
    return {"server_version": version, "server_version_num": int(version_num), "wal_segment_size": int(segment),
            "databases": {name: int(size) for name, size in databases}, "system_identifier": system_identifier}


def _suffix(settings: StreamSettings) -> str:
    return {"zstd": ".zst", "gzip": ".gz", "none": ""}[settings.compression]


def plan_backup_files(kind: str, databases: list[str], server: dict[str, Any]) -> list[dict[str, Any]]:
    """What a backup consists of: one entry per object, with the command that produces it."""
    if kind == "base":
        return [{"name": "base.tar", "content": "pg_basebackup-tar", "database": None,
                 "estimate": sum(server["databases"].values())}]
    if databases == ["all"]:
        files = [{"name": "globals.sql", "content": "pg_dumpall-globals", "database": None, "estimate": 0}]
        names = sorted(server["databases"])
    else:
        files = []
        names = databases
    missing = [d for d in names if d not in server["databases"]]
    if missing:
        raise BackupError("database(s) %s do not exist on the server (or do not allow connections)"
                          % ", ".join(missing))
    files += [{"name": "%s.dump" % d, "content": "pg_dump-custom", "database": d,
               "estimate": server["databases"][d]} for d in names]
    return files


def command_for(entry: dict[str, Any], wal_method: str, checkpoint: str, bindir: str) -> tuple[list[str], str]:
    def tool(name: str) -> str:
        return os.path.join(bindir, name) if bindir else name

    if entry["content"] == "pg_basebackup-tar":
        # -D - writes one tar stream to stdout: only possible with one tablespace and WAL fetched (or none).
        return ([tool("pg_basebackup"), "-D", "-", "-F", "t", "-X", wal_method, "-c", checkpoint, "-v",
                 "--no-password"], "pg_basebackup")
    if entry["content"] == "pg_dumpall-globals":
        return [tool("pg_dumpall"), "--globals-only", "--no-password"], "pg_dumpall --globals-only"
    # -Z 0: the stream is compressed once, by us, with zstd (faster and smaller than pg_dump's gzip).
    return ([tool("pg_dump"), "-F", "c", "-Z", "0", "--no-password", "--dbname", entry["database"]],
            "pg_dump of database %s" % entry["database"])


def run_backup(client: Any, target: S3Target, settings: StreamSettings, kind: str, databases: list[str],
               server: dict[str, Any], env: dict[str, str], wal_method: str = "fetch", checkpoint: str = "fast",
               bindir: str = "", labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Take one backup (all its objects), then write its manifest; on any failure remove what was written."""
    check_bucket(client, target)
    plan = plan_backup_files(kind, databases, server)
    started = utc_now()
    label = "base" if kind == "base" else "+".join(databases)
    ident = backup_id(kind, label, started)
    done: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"labels": dict(labels or {})}
    try:
        for entry in plan:
            key = backup_key(target.prefix, ident, entry["name"] + _suffix(settings))
            argv, what = command_for(entry, wal_method, checkpoint, bindir)
            uploaded = stream_child_to_s3(client, target, key, argv, env, what, settings, entry["estimate"])
            stderr = uploaded.pop("stderr")
            if entry["content"] == "pg_basebackup-tar":
                extra.update(parse_basebackup_positions(stderr))
                segment = server["wal_segment_size"]
                extra["start_wal"] = wal_file_name(extra["timeline"], parse_lsn(extra["start_lsn"]), segment)
                extra["stop_wal"] = wal_file_name(extra["timeline"], parse_lsn(extra["stop_lsn"]), segment)
                extra["wal_method"] = wal_method
            uploaded.update(content=entry["content"], database=entry["database"])
            done.append(uploaded)
        manifest = build_manifest(
            ident=ident, kind=kind, databases=databases, start_time=started, end_time=utc_now(), files=done,
            compression=settings.compression, compression_level=settings.compression_level, server=server,
            encryption=target.encryption, extra=extra)
        try:
            client.put_object(Bucket=target.bucket, Key=backup_key(target.prefix, ident, MANIFEST_NAME),
                              Body=manifest_to_bytes(manifest), ContentType="application/json",
                              **target.put_args())
        except Exception as exc:
            raise explain_s3_error(exc, target, "writing the manifest of %s" % ident) from None
    except BaseException:
        _delete_keys(client, target, [f["key"] for f in done], quiet=True)
        raise
    return manifest


def _delete_keys(client: Any, target: S3Target, keys: list[str], quiet: bool = False) -> None:
    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start:start + 1000]]
        try:
            response = client.delete_objects(Bucket=target.bucket, Delete={"Objects": batch, "Quiet": True})
        except Exception as exc:
            if quiet:
                return
            raise explain_s3_error(exc, target, "deleting objects") from None
        if response.get("Errors") and not quiet:
            first = response["Errors"][0]
            raise BackupError("S3 did not delete %s: %s %s"
                              % (first.get("Key"), first.get("Code"), first.get("Message")))


def _list_keys(client: Any, target: S3Target, prefix: str) -> list[dict[str, Any]]:
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix)
        return [obj for page in pages for obj in page.get("Contents", [])]
    except Exception as exc:
        raise explain_s3_error(exc, target, "listing the bucket") from None


def read_catalog(client: Any, target: S3Target) -> dict[str, Any]:
    """Complete backups (those with a manifest), incomplete leftovers, and archived WAL names."""
    objects = _list_keys(client, target, backups_prefix(target.prefix))
    by_id: dict[str, list[dict[str, Any]]] = {}
    base = backups_prefix(target.prefix)
    for obj in objects:
        ident = obj["Key"][len(base):].split("/", 1)[0]
        by_id.setdefault(ident, []).append(obj)
    manifests, incomplete = [], []
    for ident, objs in sorted(by_id.items()):
        manifest_key = backup_key(target.prefix, ident, MANIFEST_NAME)
        if not any(o["Key"] == manifest_key for o in objs):
            incomplete.append({"id": ident, "keys": [o["Key"] for o in objs],
                               "last_modified": max(o["LastModified"] for o in objs).isoformat()})
            continue
        try:
            body = client.get_object(Bucket=target.bucket, Key=manifest_key)["Body"].read()
        except Exception as exc:
            raise explain_s3_error(exc, target, "reading %s" % manifest_key) from None
        manifests.append(parse_manifest(body, manifest_key))
    wal = [wal_name_from_key(o["Key"]) for o in _list_keys(client, target, wal_prefix(target.prefix))]
    return {"backups": manifests, "incomplete": incomplete, "wal": sorted(wal)}


def find_backup(catalog: dict[str, Any], ident: str) -> dict[str, Any]:
    for manifest in catalog["backups"]:
        if manifest["id"] == ident:
            return manifest
    raise BackupError("no complete backup with id %r in the catalog (incomplete backups have no manifest)" % ident)


def apply_retention(client: Any, target: S3Target, keep_days: float, keep_min: int, check_mode: bool,
                    now: Any = None) -> dict[str, Any]:
    """Delete expired backups (manifest first, so a half-deleted backup is never seen as complete) and old WAL."""
    check_bucket(client, target)
    catalog = read_catalog(client, target)
    plan = plan_retention(catalog["backups"], now or utc_now(), keep_days, keep_min)
    kept_bases = [m for m in catalog["backups"] if m["id"] in plan["keep"] and m["kind"] == "base"]
    wal_delete = plan_wal_pruning(catalog["wal"], oldest_needed_wal(kept_bases))
    if not check_mode:
        doomed = [m for m in catalog["backups"] if m["id"] in plan["delete"]]
        _delete_keys(client, target, [backup_key(target.prefix, m["id"], MANIFEST_NAME) for m in doomed])
        _delete_keys(client, target, [f["key"] for m in doomed for f in m["files"]])
        wal_objects = _list_keys(client, target, wal_prefix(target.prefix))
        wal_keys = {wal_name_from_key(o["Key"]): o["Key"] for o in wal_objects}
        _delete_keys(client, target, [wal_keys[name] for name in wal_delete if name in wal_keys])
    return {"keep": plan["keep"], "delete": plan["delete"], "delete_wal": wal_delete}


def _object_chunks(client: Any, target: S3Target, key: str) -> Iterator[bytes]:
    try:
        body = client.get_object(Bucket=target.bucket, Key=key)["Body"]
    except Exception as exc:
        raise explain_s3_error(exc, target, "reading %s" % key) from None
    yield from body.iter_chunks(CHUNK)


def feed_process(chunks: Iterable[bytes], argv: list[str], env: dict[str, str], what: str,
                 drain: bool = False) -> OutputCollector:
    """Write a stream to a process's stdin; raise when it fails. Returns its stdout collector.

    With ``drain``, the rest of the stream is still read when the process stops early
    (``pg_restore --list`` reads only the table of contents) so the whole object gets hashed.
    """
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        raise BackupError("cannot start %s: %s" % (what, exc)) from None
    out, err = OutputCollector(proc.stdout), OutputCollector(proc.stderr)
    try:
        for chunk in chunks:
            proc.stdin.write(chunk)
    except BrokenPipeError:
        if drain:
            _drain(chunks)
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        status = proc.wait()
    if status != 0:
        raise BackupError("%s exited with status %d: %s" % (what, status, err.text()))
    out.join(timeout=30)
    return out


def _drain(chunks: Iterable[bytes]) -> int:
    return sum(len(c) for c in chunks)


def verify_backup(client: Any, target: S3Target, manifest: dict[str, Any], env: dict[str, str],
                  list_archive: bool = True, bindir: str = "") -> dict[str, Any]:
    """Re-read every object: size and SHA-256 against the manifest, a full decompression, and for
    custom-format dumps ``pg_restore --list`` over the stream."""
    problems: list[str] = []
    checked = []
    for entry in manifest["files"]:
        tee = HashingTee()
        entries = None
        try:
            raw = decompress_chunks(tee.wrap(_object_chunks(client, target, entry["key"])), manifest["compression"])
            if list_archive and entry.get("content") == "pg_dump-custom":
                counter = HashingTee()
                listing = feed_process(counter.wrap(raw), [os.path.join(bindir, "pg_restore") if bindir else
                                                           "pg_restore", "--list"], env, "pg_restore --list",
                                       drain=True)
                raw_size = counter.size
                entries = listing.lines
            else:
                raw_size = _drain(raw)
        except BackupError as exc:
            problems.append("%s: %s" % (entry["name"], exc))
            raw_size = None
        digest = tee.sha256.hexdigest()
        if digest != entry["sha256"]:
            problems.append("%s: SHA-256 %s does not match the manifest's %s"
                            % (entry["name"], digest, entry["sha256"]))
        if tee.size != entry["size"]:
            problems.append("%s: %d bytes stored, the manifest says %d" % (entry["name"], tee.size, entry["size"]))
        if raw_size is not None and raw_size != entry["raw_size"]:
            problems.append("%s: %d bytes after decompression, the manifest says %d"
                            % (entry["name"], raw_size, entry["raw_size"]))
        checked.append({"name": entry["name"], "sha256": digest, "size": tee.size, "toc_entries": entries})
    return {"id": manifest["id"], "ok": not problems, "problems": problems, "files": checked}


def restore_logical(client: Any, target: S3Target, manifest: dict[str, Any], database: str, into: str,
                    env: dict[str, str], bindir: str = "") -> None:
    """Stream one database's dump into pg_restore (one transaction: all or nothing)."""
    matches = [f for f in manifest["files"] if f.get("database") == database and f.get("content") == "pg_dump-custom"]
    if not matches:
        raise BackupError("backup %s has no dump of database %r (it has: %s)"
                          % (manifest["id"], database, ", ".join(f["name"] for f in manifest["files"])))
    chunks = decompress_chunks(_object_chunks(client, target, matches[0]["key"]), manifest["compression"])
    pg_restore = os.path.join(bindir, "pg_restore") if bindir else "pg_restore"
    feed_process(chunks, [pg_restore, "--no-password", "--exit-on-error", "--single-transaction", "--dbname", into],
                 env, "pg_restore into %s" % into)


def restore_base(client: Any, target: S3Target, manifest: dict[str, Any], data_dir: str) -> None:
    """Unpack a base backup into an empty (or new) data directory."""
    if manifest["kind"] != "base":
        raise BackupError("backup %s is a %s backup, not a base backup" % (manifest["id"], manifest["kind"]))
    if os.path.isdir(data_dir) and os.listdir(data_dir):
        raise BackupError("%s is not empty: move the old data directory aside first" % data_dir)
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    os.chmod(data_dir, 0o700)
    tar = shutil.which("tar") or "tar"
    entry = manifest["files"][0]
    feed_process(decompress_chunks(_object_chunks(client, target, entry["key"]), manifest["compression"]),
                 [tar, "-x", "-f", "-", "-C", data_dir], dict(os.environ), "tar")


def push_wal(client: Any, target: S3Target, path: str, name: str, settings: StreamSettings) -> str:
    """Archive one WAL file; an identical copy already there is success, a different one is an error."""
    with open(path, "rb") as handle:
        raw = handle.read()
    raw_sha = hashlib.sha256(raw).hexdigest()
    key = wal_key(target.prefix, name, settings.compression)
    try:
        head = client.head_object(Bucket=target.bucket, Key=key)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code not in ("404", "NoSuchKey", "NotFound"):
            raise explain_s3_error(exc, target, "checking %s" % key) from None
        head = None
    if head is not None:
        if head.get("Metadata", {}).get("raw-sha256") == raw_sha:
            return "already archived"
        raise BackupError("%s already exists in the archive with different contents: refusing to overwrite it "
                          "(is another cluster archiving to the same prefix?)" % key)
    body = b"".join(compress_chunks([raw], settings))
    try:
        client.put_object(Bucket=target.bucket, Key=key, Body=body,
                          Metadata={"raw-sha256": raw_sha, "sha256": hashlib.sha256(body).hexdigest()},
                          **target.put_args())
    except Exception as exc:
        raise explain_s3_error(exc, target, "uploading %s" % key) from None
    return "archived"


class WalNotFound(BackupError):
    """The archive has no such WAL file (normal at the end of recovery)."""


def fetch_wal(client: Any, target: S3Target, name: str, dest: str, compression: str) -> None:
    """Fetch, decompress and check one WAL file; write it atomically to ``dest``."""
    key = wal_key(target.prefix, name, compression)
    try:
        response = client.get_object(Bucket=target.bucket, Key=key)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise WalNotFound("%s is not in the archive" % key) from None
        raise explain_s3_error(exc, target, "fetching %s" % key) from None
    body = response["Body"].read()
    raw = b"".join(decompress_chunks([body], compression))
    expected = response.get("Metadata", {}).get("raw-sha256")
    if expected and hashlib.sha256(raw).hexdigest() != expected:
        raise BackupError("%s is corrupt: its SHA-256 does not match the one recorded when it was archived" % key)
    partial = dest + ".dbops-partial"
    with open(partial, "wb") as handle:
        handle.write(raw)
    os.replace(partial, dest)
