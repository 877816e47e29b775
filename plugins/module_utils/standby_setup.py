# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replica side of pg_standby, one run: read the data directory, decide (pg_datadir.decide), then
passfile, clone, configuration, service, and the wait until it streams. The file contents come from the
pure functions of standby.py; this file does the I/O through the module (run_command, check mode)."""

from __future__ import annotations

import os
import pwd
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.files import (
    flush_tree,
    make_dirs_owned,
    read_text,
    write_atomically,
)
from ansible_collections.muejam.dbops.plugins.module_utils.pg_datadir import (
    ABSENT,
    CLONE,
    EMPTY,
    REFUSE,
    classify,
    controldata_reader,
    decide,
    installed_majors,
    postmaster_running,
    read_datadir_facts,
)
from ansible_collections.muejam.dbops.plugins.module_utils.standby import (
    DETACHED_CONF,
    RESTART_CONF,
    UPSTREAM_CONF,
    initial_pg_hba_conf,
    initial_postgresql_conf,
    passfile_line,
    primary_conninfo,
    restart_conf,
    service_action,
    upstream_conf,
)


def cluster_host_argument_spec(**extra: dict) -> dict:
    """The options of a module working on a Debian cluster of this host (pg_standby, pg_rewind), plus ``extra``."""
    spec = {
        "pg_version": {"type": "int", "required": True},
        "cluster_name": {"type": "str", "default": "main"},
        "data_directory": {"type": "path"},
        "port": {"type": "int", "default": 5432},
        "pg_lib_root": {"type": "path", "default": "/usr/lib/postgresql"},
    }
    spec.update(extra)
    return spec


class ClusterHost:
    """A Debian cluster on this host, worked on by a module run as root: its paths, commands (as postgres when
    asked), files written only when they differ, systemctl; the actions and time per command for the result.
    Shared by pg_standby (Standby) and pg_rewind (module_utils/rewind.py)."""

    def __init__(self, module: Any, major: int) -> None:
        self.module = module
        self.params = module.params
        cluster = self.params["cluster_name"]
        self.bindir = os.path.join(self.params["pg_lib_root"], str(major), "bin")
        self.datadir = (self.params["data_directory"] or "/var/lib/postgresql/%d/%s" % (major, cluster)).rstrip("/")
        self.confdir = "/etc/postgresql/%d/%s" % (major, cluster)
        self.service = "postgresql@%d-%s" % (major, cluster)
        self.actions: list[str] = []
        self.seconds: dict[str, float] = {}  # time spent per command, returned for progress reports and tuning

    def fail(self, msg: str, **extra) -> None:
        self.module.fail_json(msg=msg, actions=self.actions, seconds=self.seconds, **extra)

    def run(self, argv: list[str], as_postgres: bool = False, env: dict | None = None, check: bool = True):
        step = os.path.basename(argv[0]) + (" " + argv[1] if argv[0] == "systemctl" else "")
        if as_postgres:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        began = time.monotonic()
        rc, out, err = self.module.run_command(argv, environ_update=env or {})
        self.seconds[step] = round(self.seconds.get(step, 0.0) + time.monotonic() - began, 2)
        if check and rc != 0:
            self.fail("%s failed (exit %d): %s" % (" ".join(argv[:6]), rc, (err or out).strip()[-2000:]))
        return rc, out, err

    def write_file(self, path: str, content: str, mode: int, label: str) -> bool:
        """Write content if it differs (atomically, owned by postgres); True when it changed."""
        if read_text(path) == content:
            return False
        self.actions.append("wrote " + label)
        if self.module.check_mode:
            return True
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, content, mode, owner=self.postgres_ids())
        return True

    @staticmethod
    def postgres_ids() -> tuple[int, int]:
        entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid

    def systemctl(self, *args: str, check: bool = True):
        return self.run(["systemctl", *args], check=check)

    def read_facts(self) -> dict[str, Any]:
        """What the data directory holds (pg_datadir.read_datadir_facts); fails, nothing changed, when unreadable."""
        try:
            return read_datadir_facts(self.datadir, controldata_reader(self.module, self.params["pg_lib_root"]))
        except (OSError, ValueError) as exc:
            self.fail("Could not read the data directory %s: %s. Nothing was changed." % (self.datadir, exc))
            raise  # fail_json exits; this line is never reached

    def is_masked(self) -> bool:
        unused_rc, out, unused_err = self.systemctl("is-enabled", self.service, check=False)
        return out.strip() == "masked"

    def running(self) -> bool:
        rc, unused_out, unused_err = self.systemctl("is-active", "--quiet", self.service, check=False)
        return rc == 0 or postmaster_running(self.datadir)


class Standby(ClusterHost):
    """One run of pg_standby: read, decide, act (unless check mode), report."""

    def __init__(self, module: Any) -> None:
        super().__init__(module, module.params["pg_version"])
        self.state_before = ABSENT

    def clone(self) -> str | None:
        """Replace the data directory with a copy of the primary; returns where a forced directory went."""
        moved = None
        self.systemctl("stop", self.service)
        if self.state_before not in (ABSENT, EMPTY):
            # Only reached with force: the old directory is kept, renamed, never deleted.
            moved = "%s.replaced-%s" % (self.datadir, time.strftime("%Y%m%dT%H%M%S"))
            os.rename(self.datadir, moved)
            self.actions.append("moved the old data directory to " + moved)
        # What is left is absent or empty (decide() allows nothing else without force).
        if os.path.isdir(self.datadir):
            shutil.rmtree(self.datadir)
        # Missing parents (/var/lib/postgresql/<major> on a host without a cluster) are the postgres
        # user's too, as pg_createcluster makes them: a later restore or pg_createcluster writes there.
        make_dirs_owned(self.datadir, 0o700, self.postgres_ids())
        params = self.params
        self.actions.append("cloned the primary with pg_basebackup")
        self.run([os.path.join(self.bindir, "pg_basebackup"),
                  "--host=%s" % params["primary_host"], "--port=%d" % params["primary_port"],
                  "--username=%s" % params["replication_user"], "--no-password",
                  "--pgdata=%s" % self.datadir, "--wal-method=stream", "--slot=%s" % params["slot_name"],
                  "--checkpoint=fast", "--no-sync"] + params["basebackup_extra_args"],
                 as_postgres=True, env={"PGPASSFILE": params["passfile"], "PGAPPNAME": params["application_name"]})
        # pg_basebackup's own flush to disk (--no-sync skips it) is done here instead, while pg_createcluster
        # writes the configuration: both take about as long, so one hides the other. The server is
        # started only after every file of the copy is on disk, as it would be without --no-sync.
        with ThreadPoolExecutor(max_workers=1) as pool:
            flushing = pool.submit(self.flush_copy)
            if not os.path.exists(os.path.join(self.confdir, "postgresql.conf")):
                self.create_configuration()
            error = flushing.exception()
        if error is not None:
            unsynced = "%s.unsynced-%s" % (self.datadir, time.strftime("%Y%m%dT%H%M%S"))
            os.rename(self.datadir, unsynced)
            self.fail("Could not write the copy of the primary to disk (%s). It was moved to %s and the server was "
                      "not started; check the disk, then run again to clone anew." % (error, unsynced),
                      moved_aside=moved)
        return moved

    def flush_copy(self) -> None:
        began = time.monotonic()
        flush_tree(self.datadir)
        self.seconds["flush the copy to disk"] = round(time.monotonic() - began, 2)

    def create_configuration(self) -> None:
        """Debian's configuration for the cloned directory, without an initdb (about 1.2 s saved).

        The clone of a Debian primary holds no postgresql.conf, pg_hba.conf or pg_ident.conf (they live
        in /etc): the distribution's samples are written into it as initdb would, and pg_createcluster
        integrates the existing directory (it moves them to /etc/postgresql/<major>/<cluster> and sets
        data_directory, port, sockets, ssl and conf.d). Files the clone brought along are kept.
        """
        major = self.params["pg_version"]
        sharedir = os.path.join(self.params["pg_share_root"], str(major))
        postgres = self.postgres_ids()
        settings = self.params["initial_settings"]
        for name, render in (("postgresql.conf", lambda text: initial_postgresql_conf(text, settings)),
                             ("pg_hba.conf", lambda text: self.params.get("hba_content")
                              or initial_pg_hba_conf(text, major)),
                             ("pg_ident.conf", lambda text: text)):
            target = os.path.join(self.datadir, name)
            if os.path.exists(target):
                continue
            try:
                with open(os.path.join(sharedir, name + ".sample"), encoding="utf-8") as handle:
                    sample = handle.read()
            except OSError as exc:
                self.fail("Cannot read the sample %s of PostgreSQL %d (%s): is postgresql-%d complete?"
                          % (name, major, exc, major))
            write_atomically(target, render(sample), 0o600, owner=postgres)
        self.actions.append("created the cluster configuration (pg_createcluster, from the clone)")
        self.run(["pg_createcluster", "--port", str(self.params["port"]), "--datadir", self.datadir, str(major),
                  self.params["cluster_name"]])

    def receiver_status(self) -> str | None:
        argv = [os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-p", str(self.params["port"]),
                "-d", "postgres", "-c", "SELECT status FROM pg_stat_wal_receiver"]
        rc, out, unused_err = self.run(argv, as_postgres=True, env={"PGCONNECT_TIMEOUT": "3"}, check=False)
        if rc != 0:
            return None
        return out.strip() or None

    def wait_until_ready(self) -> str | None:
        """Poll the WAL receiver until it streams (or, with wait_until=running, until the server runs); give up
        early when the service stopped or failed. Returns the WAL receiver's status, or 'running'."""
        began = time.monotonic()
        deadline = began + self.params["wait_seconds"]
        while True:
            if self.params["wait_until"] == "running":
                if postmaster_running(self.datadir):
                    return "running"
                status = None
            else:
                status = self.receiver_status()
                if status == "streaming":
                    return status
            if time.monotonic() >= deadline:
                return status
            unused_rc, out, unused_err = self.systemctl("is-active", self.service, check=False)
            # A queued start shows "inactive" for a moment before systemd runs it.
            if out.strip() == "failed" or (out.strip() == "inactive" and time.monotonic() - began > 3):
                return status
            time.sleep(0.1)

    def converge(self) -> None:
        """Read, decide, act (unless check mode), wait, exit_json."""
        state, verdict, reason = self.judge()
        params = self.params
        running_before = self.running()
        self.write_file(params["passfile"], passfile_line(params["primary_host"], params["primary_port"],
                                                          params["replication_user"], params["replication_password"]),
                        0o600, "the replication passfile")
        moved = None
        cloned = verdict == CLONE
        if cloned:
            if self.module.check_mode:
                self.actions.append("clone the primary with pg_basebackup (%s)" % reason)
            else:
                moved = self.clone()
        restart_changed, reload_changed = self.write_configuration(cloned)
        self.apply_service(service_action(cloned, restart_changed, reload_changed, running_before and not cloned))
        status = None
        if not self.module.check_mode and params["wait_seconds"] > 0:
            status = self.wait(state=state, verdict=verdict, cloned=cloned, moved_aside=moved)
        changed = bool(self.actions)
        msg = "; ".join(self.actions) if changed else "already a standby of %s, nothing to do" % params["primary_host"]
        self.module.exit_json(changed=changed, state=state, verdict=verdict, reason=reason, actions=self.actions,
                              cloned=cloned, moved_aside=moved, receiver_status=status, seconds=self.seconds, msg=msg)

    def judge(self) -> tuple[str, str, str]:
        """(state, verdict, reason) of the data directory; fails (nothing changed) on a refusal."""
        params = self.params
        major = params["pg_version"]
        installed = installed_majors(params["pg_lib_root"])
        if major not in installed:
            self.fail("PostgreSQL %d is not installed on this host (installed: %s): install postgresql-%d first. "
                      "Nothing was changed." % (major, ", ".join(map(str, installed)) or "none", major))
        facts = self.read_facts()
        state = classify(facts, params["expected_system_identifier"], major)
        self.state_before = state
        verdict, reason = decide(state, params["force"], self.datadir)
        if verdict == REFUSE:
            self.fail(reason + " Nothing was changed.", state=state, verdict=verdict)
        return state, verdict, reason

    def write_configuration(self, cloned: bool) -> tuple[bool, bool]:
        """standby.signal and the two conf.d files; (restart settings changed, upstream changed)."""
        params = self.params
        conf_d = os.path.join(self.confdir, "conf.d")
        signal = os.path.join(self.datadir, "standby.signal")
        if not os.path.exists(signal) and not (cloned and self.module.check_mode):
            self.write_file(signal, "", 0o600, "standby.signal")
        conninfo = primary_conninfo(params["primary_host"], params["primary_port"], params["replication_user"],
                                    params["passfile"], params["application_name"])
        detached = os.path.join(conf_d, DETACHED_CONF)
        if os.path.exists(detached):  # a server restored by pg_restore rejoins the cluster as this standby
            self.actions.append("removed " + DETACHED_CONF)
            if not self.module.check_mode:
                os.unlink(detached)
        restart_changed = self.write_file(os.path.join(conf_d, RESTART_CONF), restart_conf(params["settings"]),
                                          0o644, RESTART_CONF)
        reload_changed = self.write_file(os.path.join(conf_d, UPSTREAM_CONF),
                                         upstream_conf(conninfo, params["slot_name"],
                                                       params["wal_retrieve_retry_interval"]), 0o644, UPSTREAM_CONF)
        return restart_changed, reload_changed

    def apply_service(self, action: str | None) -> None:
        """Enable the service, then start, restart or reload it as the changes need."""
        rc, unused_out, unused_err = self.systemctl("is-enabled", "--quiet", self.service, check=False)
        if rc != 0:
            self.actions.append("enabled " + self.service)
            if not self.module.check_mode:
                self.systemctl("enable", self.service)
        if not action:
            return
        self.actions.append({"start": "started", "restart": "restarted", "reload": "reloaded"}[action])
        if self.module.check_mode:
            return
        if action == "start" and self.params["wait_seconds"] > 0:
            # Debian's pg_ctlcluster holds a start for about 2 s of its own probes (a 0.5 s sleep,
            # then three psql connections 0.5 s apart) after the server is up. The wait (the
            # WAL receiver streaming, or the postmaster running) is the stronger proof, so the job is
            # queued and not waited for; systemd marks the unit active when pg_ctlcluster returns.
            self.systemctl(action, "--no-block", self.service)
        else:
            self.systemctl(action, self.service)

    def wait(self, **report) -> str | None:
        """Wait until the server streams (or runs); fails with what to check when it does not in time."""
        params = self.params
        waiting = time.monotonic()
        status = self.wait_until_ready()
        self.seconds["wait until %s" % params["wait_until"]] = round(time.monotonic() - waiting, 2)
        if status in ("streaming", "running"):
            return status
        if params["wait_until"] == "running":
            self.fail("%s did not start within %d s. Check the standby's log (journalctl -u %s and "
                      "/var/log/postgresql)." % (self.service, params["wait_seconds"], self.service), **report)
        self.fail("%s did not start streaming from %s:%d within %d s (WAL receiver: %s). Check the "
                  "primary's pg_hba.conf, the slot %s and the standby's log (journalctl -u %s)."
                  % (self.service, params["primary_host"], params["primary_port"], params["wait_seconds"],
                     status or "not running", params["slot_name"], self.service), **report)
        return status
