"""pg_backup_s3 against the runbook's baseline, on the same database and the same lab S3 endpoint, in one run.

    .venv/bin/python benchmarks/backup/bench.py --sizes-mb 300,1200 [--keep-lab]

For each size a database ``bench`` of random text and numbers is (re)built on a lab primary
(lab/lab.py, prefix dbops-bench-backup, hosts pg1 and s3). Then, on this host, with the same
PostgreSQL 15 client tools and the same endpoint:
  baseline: ``pg_dump bench | gzip > file`` then boto3 ``upload_file`` of the file (the runbook's
            ``aws s3 cp`` step; boto3's transfer manager is what the AWS CLI uses underneath)
  module:   muejam.dbops.pg_backup_s3 mode=backup kind=logical, run as Ansible runs it
Printed: wall times and their ratio, the module's peak RSS (VmHWM of the module process, sampled),
and local disk used (the baseline's file; for the module, files left in its TMPDIR and the smallest
free space of the temp filesystem during the run compared with before). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
import psycopg2

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "dbops-bench-backup"
PASSWORD = "lab-superuser-secret"
KEY, SECRET = "bench-access", "bench-secret"
WORDS = [
    "order", "invoice", "customer", "shipped", "pending", "refund", "story", "chapter", "author", "library",
    "reader", "comment", "review", "draft", "published", "archived", "premium", "trial", "renewal", "cancelled",
    "payment", "card", "transfer",
]


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def build_database(host: str, size_mb: int) -> int:
    conn = psycopg2.connect(host=host, user="postgres", password=PASSWORD, dbname="postgres")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP DATABASE IF EXISTS bench")
    cur.execute("CREATE DATABASE bench")
    conn.close()
    conn = psycopg2.connect(host=host, user="postgres", password=PASSWORD, dbname="bench")
    conn.autocommit = True
    cur = conn.cursor()
    words = "ARRAY[%s]" % ",".join("'%s'" % w for w in WORDS)
    cur.execute("CREATE TABLE facts (id bigint, amount numeric(12,2), qty int, at timestamptz, ref text, note text)")
    batch = 200_000
    start = 0
    while True:
        cur.execute("SELECT pg_database_size('bench')")
        size = cur.fetchone()[0]
        if size >= size_mb * 1024 * 1024:
            return size
        cur.execute(
            "INSERT INTO facts SELECT g, round((random() * 100000)::numeric, 2), (random() * 1000)::int, "
            "now() - random() * interval '900 days', md5(random()::text), "
            "concat_ws(' ', w[1 + (random() * %d)::int %% %d], w[1 + (random() * %d)::int %% %d], "
            "(random() * 1e6)::int, w[1 + (random() * %d)::int %% %d], substr(md5(random()::text), 1, 10), "
            "w[1 + (random() * %d)::int %% %d]) "
            "FROM generate_series(%d, %d) g, (SELECT %s AS w) words"
            % ((len(WORDS), len(WORDS)) * 4 + (start, start + batch - 1, words)))
        start += batch


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop = pid, 0, False

    def run(self) -> None:
        while not self.stop:
            try:
                for line in Path("/proc/%d/status" % self.pid).read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.1)


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def run_module(args: dict, tmpdir: str) -> tuple[dict, float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".collections"), "TMPDIR": tmpdir}
    before = free_bytes(tmpdir)
    lowest = [before]
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "ansible_collections.muejam.dbops.plugins.modules.pg_backup_s3"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmpdir)
    rss = PeakRss(proc.pid)
    rss.start()
    done = threading.Event()

    def watch_disk() -> None:
        while not done.is_set():
            lowest[0] = min(lowest[0], free_bytes(tmpdir))
            time.sleep(0.2)

    threading.Thread(target=watch_disk, daemon=True).start()
    out, err = proc.communicate(json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    elapsed = time.monotonic() - start
    done.set()
    rss.stop = True
    result = json.loads(out[out.find(b"{"):])
    if result.get("failed"):
        raise SystemExit("module failed: %s" % result.get("msg"))
    return result, elapsed, rss.peak_kb, before - lowest[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", default="300,1200")
    parser.add_argument("--keep-lab", action="store_true")
    opts = parser.parse_args()
    addresses = json.loads(sh([sys.executable, str(ROOT / "lab" / "lab.py"), "up", "--prefix", PREFIX,
                               "--hosts", "pg1,s3"], cwd=ROOT).stdout)
    try:
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
               "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections")}
        sh([str(Path(sys.executable).parent / "ansible-playbook"), "lab/replication.yml", "-e",
            "dbops_lab_prefix=" + PREFIX, "--limit", "pg1"], cwd=ROOT, env=env)
        endpoint = "http://%s:9000" % addresses["s3"]
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
        s3.create_bucket(Bucket="bench")
        rows = []
        for size_mb in [int(s) for s in opts.sizes_mb.split(",")]:
            db_size = build_database(addresses["pg1"], size_mb)
            with tempfile.TemporaryDirectory(prefix="dbops-bench-") as tmp:
                pg = {**os.environ, "PGPASSWORD": PASSWORD, "PGHOST": addresses["pg1"], "PGUSER": "postgres"}
                dump = Path(tmp) / "bench.sql.gz"
                start = time.monotonic()
                subprocess.run("pg_dump bench | gzip > %s" % dump, shell=True, check=True, env=pg)
                dumped = time.monotonic() - start
                s3.upload_file(str(dump), "bench", "baseline/bench.sql.gz")
                baseline = time.monotonic() - start
                baseline_disk = dump.stat().st_size
                dump.unlink()
                args = {"bucket": "bench", "prefix": "module", "endpoint_url": endpoint, "region": "us-east-1",
                        "access_key": KEY, "secret_key": SECRET, "login_host": addresses["pg1"],
                        "login_password": PASSWORD, "databases": ["bench"]}
                result, elapsed, peak_kb, disk_drop = run_module(args, tmp)
                left = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
            manifest = result["backup"]
            entry = manifest["files"][0]
            rows.append({"db_mb": db_size // 2**20, "dump_raw_mb": manifest["raw_size"] // 2**20,
                         "baseline_s": round(baseline, 1), "baseline_dump_s": round(dumped, 1),
                         "baseline_gz_mb": baseline_disk // 2**20, "module_s": round(elapsed, 1),
                         "module_zst_mb": manifest["size"] // 2**20, "ratio": round(elapsed / baseline, 2),
                         "module_peak_rss_mb": round(peak_kb / 1024, 1),
                         "baseline_local_disk_mb": baseline_disk // 2**20, "module_files_left_bytes": left,
                         "module_max_free_space_drop_mb": disk_drop // 2**20,
                         "parts": entry["parts"], "part_size_mb": entry["part_size"] // 2**20})
            print(json.dumps(rows[-1]), flush=True)
        print("\n| database MB | baseline s | module s | time ratio | module peak RSS MB | baseline disk MB "
              "| module disk |\n|---|---|---|---|---|---|---|")
        for r in rows:
            print("| %(db_mb)d | %(baseline_s)s | %(module_s)s | %(ratio)s | %(module_peak_rss_mb)s | "
                  "%(baseline_local_disk_mb)d | %(module_files_left_bytes)d bytes |" % r)
    finally:
        if not opts.keep_lab:
            sh([sys.executable, str(ROOT / "lab" / "lab.py"), "down", "--prefix", PREFIX], cwd=ROOT)


if __name__ == "__main__":
    main()
