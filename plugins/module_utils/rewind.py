# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_rewind of a server whose WAL went past the new primary's branch point, as one module step.

The rules are pure functions (unit-tested): which control-file states pg_rewind accepts, what its output
means. :class:`Rewind` does the steps on the host with pg_standby's code (ClusterHost: commands as postgres,
files written only when they differ, systemctl), the passfile and conninfo of standby.py (a password with
``:`` or ``\\`` escaped; values quoted), and the cluster state read by pg_datadir rather than parsed again.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.masking import scrub
from ansible_collections.muejam.dbops.plugins.module_utils.postgres import format_conninfo
from ansible_collections.muejam.dbops.plugins.module_utils.promotion import CONTROL_TIMELINE_SQL
from ansible_collections.muejam.dbops.plugins.module_utils.standby import passfile_line
from ansible_collections.muejam.dbops.plugins.module_utils.standby_setup import ClusterHost

# pg_rewind needs the target cleanly shut down; a standby stopped cleanly says "shut down in recovery".
CLEAN_STATES = ("shut down", "shut down in recovery")


def needs_crash_recovery(cluster_state: str | None) -> bool:
    """True when the control file says the server did not stop cleanly (crashed, killed, in production)."""
    return (cluster_state or "").strip() not in CLEAN_STATES


def rewind_verdict(rc: int, output: str) -> str:
    """C(rewound), C(not_needed) (the timelines did not diverge) or C(failed), from pg_rewind's exit and output."""
    if rc != 0:
        return "failed"
    return "not_needed" if "no rewind required" in output else "rewound"


def source_conninfo(host: str, port: int, user: str, passfile: str) -> str:
    """pg_rewind's --source-server: a normal connection to database postgres, the password in the passfile."""
    return format_conninfo([("host", host), ("port", port), ("user", user), ("dbname", "postgres"),
                            ("passfile", passfile)])


class Rewind(ClusterHost):
    """One run of pg_rewind: a clean shutdown first (crash recovery in standby mode when needed), the
    passfile, pg_rewind, then standby.signal; on failure the data directory is kept, or moved aside."""

    def __init__(self, module: Any) -> None:
        super().__init__(module, module.params["pg_version"])

    def converge(self) -> None:
        params = self.params
        facts = self.read_facts()
        if facts["pg_version"] != params["pg_version"]:
            self.fail("%s holds no PostgreSQL %d cluster (PG_VERSION: %s): nothing to rewind. Nothing was changed."
                      % (self.datadir, params["pg_version"], facts["pg_version"]))
        if self.is_masked():
            self.actions.append("unmasked " + self.service)
            if not self.module.check_mode:
                self.systemctl("unmask", self.service)
        if facts["running"]:
            self.stop()
        elif needs_crash_recovery(facts["cluster_state"]):
            self.recover_read_only(facts["cluster_state"])
        self.write_file(params["passfile"], passfile_line(params["source_host"], params["source_port"],
                                                          params["rewind_user"], params["rewind_password"], "*"),
                        0o600, "the pg_rewind passfile")
        if self.module.check_mode:
            self.actions.append("run pg_rewind from %s:%d" % (params["source_host"], params["source_port"]))
            self.exit(verdict=None)
        verdict, output = self.rewind()
        moved = None
        if verdict == "failed":
            if params["on_failure"] != "move_aside":
                self.fail("pg_rewind could not repair %s: %s. The data directory is untouched; re-clone it "
                          "(muejam.dbops.pg_replica with pg_replica_force_reclone=true) once you have kept what you "
                          "need from it." % (self.datadir, output), verdict=verdict, output=output)
            moved = "%s.diverged-%s" % (self.datadir, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
            os.rename(self.datadir, moved)
            self.actions.append("moved the data directory aside to %s for a re-clone (pg_rewind failed)" % moved)
        else:
            self.write_file(os.path.join(self.datadir, "standby.signal"), "", 0o600, "standby.signal")
        self.exit(verdict=verdict, output=output, moved_aside=moved)

    def stop(self) -> None:
        self.actions.append("stopped " + self.service)
        if not self.module.check_mode:
            self.systemctl("stop", self.service)

    def recover_read_only(self, state: str | None) -> None:
        """Finish crash recovery in standby mode (it cannot accept writes), then stop cleanly."""
        self.actions.append("crash recovery in standby mode (cluster state: %s)" % state)
        self.write_file(os.path.join(self.datadir, "standby.signal"), "", 0o600, "standby.signal")
        if self.module.check_mode:
            return
        self.systemctl("start", self.service)
        deadline = time.monotonic() + self.params["recovery_timeout"]
        while self.run([os.path.join(self.bindir, "pg_isready"), "-q", "-p", str(self.params["port"])],
                       as_postgres=True, check=False)[0] != 0:
            if time.monotonic() > deadline:
                timeout = self.params["recovery_timeout"]
                self.fail("%s did not finish crash recovery within %d s: check its log (journalctl -u %s). It runs "
                          "in standby mode and cannot accept writes." % (self.service, timeout, self.service))
            time.sleep(0.5)
        self.systemctl("stop", self.service)

    def source_psql(self, sql: str) -> str:
        """One statement on the source through psql, with pg_rewind's own conninfo and passfile."""
        params = self.params
        conninfo = source_conninfo(params["source_host"], params["source_port"], params["rewind_user"],
                                   params["passfile"])
        rc, out, err = self.run([os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                 "-d", conninfo, "-c", sql], as_postgres=True, check=False, env={"LC_ALL": "C"})
        if rc != 0:
            self.fail("cannot run %s on the new primary %s as %s: %s. pg_rewind was not run; nothing was changed "
                      "on the data directory." % (sql.split()[0], params["source_host"], params["rewind_user"],
                                                  scrub(err.strip(), params["rewind_password"])))
        return out.strip()

    def checkpoint_source(self) -> None:
        """Make the source's control file carry its new timeline before pg_rewind reads it (see
        promotion.checkpoint_new_timeline: without it pg_rewind before 16 says "no rewind required" for a server
        that did diverge)."""
        current, checkpointed = self.source_psql(CONTROL_TIMELINE_SQL).split("|")
        if int(checkpointed) < int(current):
            self.source_psql("CHECKPOINT")
            self.actions.append("checkpointed %s (its control file still named timeline %s)"
                                % (self.params["source_host"], checkpointed))

    def rewind(self) -> tuple[str, str]:
        params = self.params
        self.checkpoint_source()
        rc, out, err = self.run([os.path.join(self.bindir, "pg_rewind"), "--target-pgdata=%s" % self.datadir,
                                 "--source-server=%s" % source_conninfo(params["source_host"], params["source_port"],
                                                                        params["rewind_user"], params["passfile"]),
                                 "--progress"], as_postgres=True, check=False, env={"LC_ALL": "C"})
        output = scrub(" / ".join((err + out).strip().splitlines()[-3:]), params["rewind_password"])
        verdict = rewind_verdict(rc, err + out)
        if verdict != "not_needed":
            self.actions.append("pg_rewind from %s: %s" % (params["source_host"], verdict))
        return verdict, output

    def exit(self, **result) -> None:
        changed = bool(self.actions)
        self.module.exit_json(changed=changed, actions=self.actions, seconds=self.seconds,
                              msg="; ".join(self.actions) or "nothing to do", **result)
