#!/usr/bin/env python
"""Wall time of playbooks/add_replica.yml against a raw pg_basebackup + start, on the same data, in one run.

    .venv/bin/python benchmarks/add_replica/bench.py [--gb 1.0] [--suite bookworm] [--keep]

Starts a lab of its own (prefix dbops-bench-ar: pg1 primary, pg2 and pg3 empty hosts), fills the
primary with at least --gb GB of text-and-numbers rows (random words from a vocabulary, random
numbers and dates: it compresses like real data, unlike pgbench's blank-padded filler), then:

  baseline  on pg3: pg_basebackup -X stream -C -S <slot> -R, start, wait until the WAL receiver streams
            (the cluster's configuration is created before the clock starts);
  role      on pg2: ansible-playbook playbooks/add_replica.yml -e replica=pg2 (everything the role does,
            fact gathering and its own checks included), which ends when the replica streams.

Both are measured --rounds times (default 3), alternating which goes first, each from the same
starting state (pg3: configuration, empty data directory; pg2: PostgreSQL installed, no cluster, and
no role, pg_hba line or slot for it on the primary), after a sync: what the reset or the other side's
copy left for the disk to write is not charged to the next side. Prints every round, the medians and their ratio
role/baseline. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "dbops-bench-ar"
VERSIONS = {"bullseye": 13, "bookworm": 15, "trixie": 17}
PASSWORD = "lab-superuser-secret"  # inventories/lab/group_vars/all.yml

FILL_SQL = """
CREATE TABLE IF NOT EXISTS bench_vocabulary (id int PRIMARY KEY, word text NOT NULL);
INSERT INTO bench_vocabulary
SELECT g, string_agg(substr('etaoinshrdlucmfwypvbgkjqxz', 1 + (random() * random() * 25)::int, 1), '')
  FROM generate_series(1, 4000) AS g, generate_series(1, 2 + mod(g, 9)) AS l
 GROUP BY g
ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS bench_paragraphs (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO bench_paragraphs
SELECT r.p, string_agg(v.word, ' ' ORDER BY r.s)
  FROM (SELECT p, s, 1 + (random() * 3999)::int AS word_id
          FROM generate_series(1, 4000) AS p, generate_series(1, 220) AS s) AS r
  JOIN bench_vocabulary AS v ON v.id = r.word_id
 GROUP BY r.p
ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS bench_documents (
    id bigint PRIMARY KEY, author text, title text, body text, score numeric(12, 4), views bigint,
    published timestamptz);
"""

# Each row: a random window of a random paragraph (random words), random numbers and dates.
BATCH_SQL = """
INSERT INTO bench_documents
SELECT g,
       split_part(t.body, ' ', (1 + mod(g, 50))::int) || ' ' || split_part(t.body, ' ', (2 + mod(g, 97))::int),
       substr(t.body, 1 + (random() * 200)::int, 40 + (random() * 40)::int),
       substr(b.body, 1 + (random() * 400)::int, 500 + (random() * 300)::int)
         || ' ' || (random() * 1e9)::bigint || ' ' || round((random() * 1e4)::numeric, 2),
       round((random() * 100000)::numeric, 4), (random() * 1e7)::bigint,
       now() - random() * interval '3650 days'
  FROM generate_series(%(start)s::bigint, %(end)s::bigint) AS g
  JOIN bench_paragraphs AS b ON b.id = 1 + mod(g * 7919, 4000)
  JOIN bench_paragraphs AS t ON t.id = 1 + mod(g * 104729 + 13, 4000)
ON CONFLICT DO NOTHING
"""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        sys.exit("failed (%s): %s\n%s%s" % (proc.returncode, " ".join(cmd), proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def sh(host: str, script: str, user: str = "root") -> str:
    return run(["docker", "exec", "-u", user, "%s-%s" % (PREFIX, host), "bash", "-c", script]).stdout


def psql(host: str, sql: str, db: str = "muejam_library") -> str:
    return run(["docker", "exec", "-i", "-u", "postgres", "%s-%s" % (PREFIX, host),
                "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", db], input=sql).stdout.strip()


def ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1"}


def fill(gb: float) -> int:
    psql("pg1", FILL_SQL)
    target = int(gb * 1024 ** 3)
    start, batch = 1, 200_000
    while True:
        size = int(psql("pg1", "SELECT pg_database_size(current_database())"))
        if size >= target:
            return size
        print("  data: %.2f GB of %.2f GB" % (size / 1024 ** 3, gb), flush=True)
        psql("pg1", BATCH_SQL % {"start": start, "end": start + batch - 1})
        start += batch


def wait_streaming(host: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psql(host, "SELECT status FROM pg_stat_wal_receiver", db="postgres") == "streaming":
                return
        except SystemExit:
            pass
        time.sleep(0.2)
    sys.exit("%s did not start streaming within %ss" % (host, timeout))


def reset_baseline(version: int) -> None:
    """pg3 back to 'configuration ready, no data', and no bench_raw slot on the primary."""
    datadir = "/var/lib/postgresql/%d/main" % version
    sh("pg3", "[ -f /etc/postgresql/%d/main/postgresql.conf ] || pg_createcluster %d main >/dev/null; "
              "systemctl stop postgresql@%d-main; rm -rf %s && install -d -o postgres -g postgres -m 700 %s && "
              "echo \"listen_addresses = '*'\" > /etc/postgresql/%d/main/conf.d/50-bench.conf"
       % (version, version, version, datadir, datadir, version))
    psql("pg1", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'bench_raw'",
         db="postgres")


def reset_role(version: int) -> None:
    """pg2 back to 'PostgreSQL installed, no cluster', and the primary without its role, pg_hba line and slot."""
    sh("pg2", "pg_dropcluster --stop %d main 2>/dev/null; rm -rf /var/lib/postgresql/%d/main "
              "/var/lib/postgresql/.pgpass_pg_replica; true" % (version, version))
    sh("pg1", "sed -i '/# muejam.dbops.pg_replica /d' /etc/postgresql/%d/main/pg_hba.conf" % version)
    psql("pg1", "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pg2'; "
                "SELECT pg_reload_conf(); DROP ROLE IF EXISTS replicator", db="postgres")


def settle() -> None:
    """Write back what the reset (or the other side's copy) left dirty, so neither side starts by paying for it."""
    sh("pg1", "sync")


def baseline(version: int) -> float:
    datadir = "/var/lib/postgresql/%d/main" % version
    reset_baseline(version)
    pgpass = "pg1:5432:replication:postgres:%s" % PASSWORD
    sh("pg3", "umask 077; echo '%s' > ~/.pgpass_bench" % pgpass, user="postgres")
    settle()
    began = time.monotonic()
    sh("pg3", "PGPASSFILE=~/.pgpass_bench PGAPPNAME=pg3 /usr/lib/postgresql/%d/bin/pg_basebackup -h pg1 -U postgres "
              "-w -D %s -X stream -C -S bench_raw -R --checkpoint=fast" % (version, datadir), user="postgres")
    sh("pg3", "systemctl start postgresql@%d-main" % version)
    wait_streaming("pg3")
    return time.monotonic() - began


def role(version: int, workdir: Path) -> float:
    reset_role(version)
    varsfile = workdir / "vars.json"
    varsfile.write_text(json.dumps({"pg_replica_replication_password": "bench-replication-secret"}))
    varsfile.chmod(0o600)
    settle()
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/add_replica.yml",
           "-e", "dbops_lab_prefix=" + PREFIX,
           "-e", "@" + str(varsfile), "-e", "replica=pg2", "-e", "add_replica_app_group=none"]
    began = time.monotonic()
    run(cmd, cwd=ROOT, env=ansible_env())
    return time.monotonic() - began


def floor() -> float:
    """floor.yml: the ansible-playbook start-up and four module round trips placed like the role's, doing nothing."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "benchmarks/add_replica/floor.yml",
           "-e", "dbops_lab_prefix=" + PREFIX, "-e", "replica=pg2"]
    began = time.monotonic()
    run(cmd, cwd=ROOT, env=ansible_env())
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--suite", default="bookworm", choices=sorted(VERSIONS))
    parser.add_argument("--rounds", type=int, default=3,
                        help="measure both this many times, alternating which goes first (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the lab containers afterwards")
    args = parser.parse_args()
    version = VERSIONS[args.suite]
    lab = [sys.executable, str(ROOT / "lab" / "lab.py")]
    run(lab + ["down", "--prefix", PREFIX])  # a kept lab from an earlier run would hold the baseline's slot
    try:
        run(lab + ["up", "--suite", args.suite, "--prefix", PREFIX, "--hosts", "pg1,pg2,pg3"])
        with tempfile.TemporaryDirectory() as tmp:
            run([str(Path(sys.executable).parent / "ansible-playbook"), "lab/provision.yml", "--limit", "pg1",
                 "-e", "dbops_lab_prefix=" + PREFIX],
                cwd=ROOT, env=ansible_env())
            began = time.monotonic()
            size = fill(args.gb)
            print("data: %.2f GB on the primary (filled in %.0f s)" % (size / 1024 ** 3, time.monotonic() - began))
            psql("pg1", "CHECKPOINT", db="postgres")
            # The first copy after the fill may meet the primary's write-back; alternating the order
            # gives neither side that advantage every time.
            raws, roles, floors = [], [], []
            for number in range(args.rounds):
                order = ("baseline", "role") if number % 2 == 0 else ("role", "baseline")
                for which in order:
                    if which == "baseline":
                        raws.append(baseline(version))
                    else:
                        roles.append(role(version, Path(tmp)))
                floors.append(floor())
                print("round %d (%s first): baseline %.1f s, role %.1f s, ratio %.2f; Ansible's floor %.1f s"
                      % (number + 1, order[0], raws[-1], roles[-1], roles[-1] / raws[-1], floors[-1]), flush=True)
            raw, with_role, bare = statistics.median(raws), statistics.median(roles), statistics.median(floors)
            print("baseline pg_basebackup + start + streaming (median of %d): %.1f s" % (args.rounds, raw))
            print("role (playbooks/add_replica.yml) (median of %d):          %.1f s" % (args.rounds, with_role))
            print("ratio role/baseline: %.2f (the role adds %.0f%%)" % (with_role / raw, 100 * (with_role / raw - 1)))
            print("Ansible's floor (floor.yml: start-up and four module round trips that do nothing) (median): %.1f s"
                  % bare)
            print("the role without that floor: %.1f s, %.2f of the baseline"
                  % (with_role - bare, (with_role - bare) / raw))
    finally:
        if not args.keep:
            run(lab + ["down", "--prefix", PREFIX])


if __name__ == "__main__":
    main()
