"""The rewind step (module pg_rewind, pg_hba through pg_replica_access) on a really diverged old primary.

pg2 is promoted while pg1 stays writable and takes more rows (the divergence a failover of an unreachable
primary leaves). pg_rewind then connects as a superuser whose password holds ``:`` and ``\\``, the two
characters a libpq passfile must escape. Runs on every suite (pg_rewind of 13, 15 and 17).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dbops_it import LAB_PASSWORD, ROOT, run_module

PASSWORD = "it:re\\wind:pass\\"


def sh(pg_pair, host: str, script: str) -> str:
    return subprocess.run(["docker", "exec", "%s-%s" % (pg_pair.prefix, host), "sh", "-c", script],
                          capture_output=True, text=True, check=True).stdout


def rewind(pg_pair) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"),
                           "tests/integration/playbooks/rewind.yml", "-e", "dbops_lab_prefix=" + pg_pair.prefix,
                           "-e", "rewind_password=" + PASSWORD, "--limit", "pg1,pg2", "-v"],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def test_a_diverged_old_primary_is_rewound_with_a_password_holding_colon_and_backslash(pg_pair):
    version = pg_pair.version
    # The rewinder exists on both sides before the promotion (it replicates), with the awkward password.
    pg_pair.sql("pg1", "CREATE ROLE it_rewinder LOGIN SUPERUSER PASSWORD %s" % quote(PASSWORD))
    pg_pair.sql("pg1", "CREATE TABLE it_common (n int); INSERT INTO it_common VALUES (1)")
    pg_pair.wait_for(lambda: pg_pair.sql("pg2", "SELECT count(*) FROM pg_tables WHERE tablename = 'it_common'")
                     [0][0] == 1, what="pg2 to replay the common table")
    promoted = run_module("pg_promote", pg_pair.conn_args("pg2"))
    assert promoted.result.get("promoted") is True, promoted.result
    # pg_promote checkpoints the new timeline before it returns: pg_rewind before 16 reads the source's timeline
    # from its control file and, until that checkpoint, answers "no rewind required" (seen in CI on 15).
    assert pg_pair.sql("pg2", "SELECT timeline_id FROM pg_control_checkpoint()")[0][0] == 2
    pg_pair.sql("pg1", "CREATE TABLE it_diverged AS SELECT generate_series(1, 1000) AS n")
    pg_pair.sql("pg1", "CHECKPOINT")
    pg_pair.sql("pg2", "CREATE TABLE it_new_timeline (n int); INSERT INTO it_new_timeline VALUES (2)")

    done = rewind(pg_pair)
    out = done.stdout
    assert done.returncode == 0, out[-4000:]
    assert "pg_rewind from pg2: rewound" in out, out[-4000:]
    assert PASSWORD not in out and "re\\\\wind" not in out
    # The new primary's line for it: database postgres, this host's /32, written by pg_replica_access.
    hba = sh(pg_pair, "pg2", "cat /etc/postgresql/%d/main/pg_hba.conf" % version)
    assert [line for line in hba.splitlines() if "pg1-rewind" in line and line.split()[1:3] == ["postgres",
                                                                                                "it_rewinder"]]
    # pg1 is stopped, marked as a standby, and its control file is pg2's: the checkpoint it will start from and
    # the point it must replay to before it is consistent are on pg2's timeline 2 (its own was 1). It is not
    # started here: started without an upstream it cannot reach that point (the role's next step, pg_replica,
    # gives it one).
    assert sh(pg_pair, "pg1", "test -f /var/lib/postgresql/%d/main/standby.signal && echo yes" % version).strip() \
        == "yes"
    control = sh(pg_pair, "pg1", "LC_ALL=C /usr/lib/postgresql/%d/bin/pg_controldata /var/lib/postgresql/%d/main"
                 % (version, version))
    fields = dict(line.split(":", 1) for line in control.splitlines() if ":" in line)
    assert fields["Database cluster state"].strip() == "in archive recovery"  # as pg_rewind leaves it
    assert fields["Latest checkpoint's TimeLineID"].strip() == "2"
    assert fields["Min recovery ending loc's timeline"].strip() == "2"
    passfile = sh(pg_pair, "pg1", "stat -c '%U %a' /var/lib/postgresql/.pgpass_pg_rewind").split()
    assert passfile == ["postgres", "600"]
    assert LAB_PASSWORD not in out


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
