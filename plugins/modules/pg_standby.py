#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_standby
short_description: Make this host a streaming standby of a PostgreSQL primary, in one step
version_added: 0.3.0
description:
  - The replica side of M(muejam.dbops.pg_replica) in one round trip (Debian layout, run as root).
  - Reads the data directory first (like M(muejam.dbops.pg_datadir_info)) and refuses, changing nothing, when it
    holds anything but a standby of the expected primary, unless O(force=true).
  - Writes the replication passfile (mode 0600), clones with C(pg_basebackup) when the directory is absent or
    empty (or forced; a forced directory is moved aside, never deleted), leaves C(standby.signal), and writes two
    C(conf.d) files it owns, one with the settings that need a restart and one with C(primary_conninfo) and
    C(primary_slot_name), which a reload applies.
  - Then starts, restarts or reloads the server only as much as the changes need, and waits until its WAL
    receiver streams. A second run on a healthy standby changes nothing.
  - The password reaches C(pg_basebackup) and the WAL receiver through the passfile, never a command line.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  major:
    description: PostgreSQL major version of the primary; it must be installed on this host.
    type: int
    required: true
  cluster_name:
    description: Debian cluster name (C(/etc/postgresql/<major>/<cluster_name>)).
    type: str
    default: main
  data_directory:
    description: The standby's data directory. Default C(/var/lib/postgresql/<major>/<cluster_name>).
    type: path
  port:
    description: Port of the standby (to check that it streams).
    type: int
    default: 5432
  primary_host:
    description: Address of the primary (C(primary_conninfo), C(pg_basebackup)).
    type: str
    required: true
  primary_port:
    description: Port of the primary.
    type: int
    default: 5432
  replication_user:
    description: Role with the REPLICATION attribute on the primary.
    type: str
    default: replicator
  replication_password:
    description: Its password, written only to O(passfile).
    type: str
    required: true
  passfile:
    description: The libpq passfile (mode 0600, owned by postgres).
    type: path
    default: /var/lib/postgresql/.pgpass_pg_replica
  application_name:
    description: Name the standby announces (C(pg_stat_replication.application_name)).
    type: str
    required: true
  slot_name:
    description: Physical replication slot on the primary (it must exist; M(muejam.dbops.pg_replica) creates it).
    type: str
    required: true
  expected_system_identifier:
    description: System identifier of the primary; a data directory with another one holds a different cluster.
    type: str
    required: true
  force:
    description:
      - Clone even when the data directory holds something else. The old directory is renamed to
        C(<data_directory>.replaced-<timestamp>), not deleted.
    type: bool
    default: false
  settings:
    description: Settings that need a restart (for example C(listen_addresses), C(hot_standby), C(wal_keep_size)).
    type: dict
    default: {}
  wal_retrieve_retry_interval:
    description:
      - How soon the standby tries its upstream again after losing it (written with the upstream, applied by a
        reload). Also bounds how long a standby waits before following a new primary after a failover.
    type: str
    default: 1s
  basebackup_extra_args:
    description: Extra arguments for C(pg_basebackup) (for example C(--max-rate=100M)).
    type: list
    elements: str
    default: []
  wait_seconds:
    description: How long to wait (see O(wait_until)). C(0) does not wait.
    type: int
    default: 300
  wait_until:
    description:
      - C(streaming) waits until the WAL receiver streams.
      - C(running) returns once the server runs (its C(postmaster.pid) names a live process) and leaves the wait for
        streaming to the caller, for example M(muejam.dbops.pg_replication_status) with O(ignore:wait_for) on the
        primary, which sees the slot and the lag as well. A start that fails is reported at once either way.
    type: str
    choices: [streaming, running]
    default: streaming
  initial_settings:
    description:
      - Settings for the first C(postgresql.conf), used only when this host has no configuration for the cluster
        yet (a new replica). Pass the primary's locale, time zone and text search settings
        (C(lc_messages), C(lc_monetary), C(lc_numeric), C(lc_time), C(timezone), C(log_timezone), C(datestyle),
        C(default_text_search_config)), and C(max_connections) at least as high as the primary's.
      - The rest is what C(initdb) would choose (C(shared_buffers=128MB), ...); C(pg_createcluster) adds Debian's own.
    type: dict
    default: {}
  pg_lib_root:
    description: Where PostgreSQL's versioned directories are installed (Debian layout).
    type: path
    default: /usr/lib/postgresql
  pg_share_root:
    description: Where the configuration samples of each major version are (C(<pg_share_root>/<major>/*.sample)).
    type: path
    default: /usr/share/postgresql
notes:
  - Needs C(pg_createcluster), C(runuser) and systemd (C(postgresql@<major>-<cluster>)), as on Debian.
  - A new replica gets its configuration without an C(initdb). The samples are written into the cloned directory
    and C(pg_createcluster) integrates it.
  - The copy is flushed to disk by the module (every file, then every directory, as C(pg_basebackup) does without
    C(--no-sync)) while C(pg_createcluster) runs, and the server starts only after that. A copy that cannot be
    flushed is moved aside (C(<data_directory>.unsynced-<time>)) and the module fails.
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Follow the primary
  muejam.dbops.pg_standby:
    major: 15
    primary_host: pg1
    replication_password: "{{ vault_replication_password }}"
    application_name: pg2
    slot_name: pg2
    expected_system_identifier: "{{ primary.system_identifier }}"
    settings:
      listen_addresses: "*"
      hot_standby: true
  become: true
"""

RETURN = r"""
state:
  description: What the data directory held before the run (see M(muejam.dbops.pg_datadir_info)).
  returned: always
  type: str
  sample: replica
verdict:
  description: C(keep), C(clone) or C(refuse).
  returned: always
  type: str
  sample: keep
actions:
  description: What was done (in check mode, what would be done), in order.
  returned: success
  type: list
  elements: str
  sample: ["wrote 51-pg_replica-upstream.conf", "reloaded"]
cloned:
  description: Whether the data directory was cloned from the primary.
  returned: success
  type: bool
moved_aside:
  description: Where a forced, replaced data directory was moved (null when none was).
  returned: success
  type: str
receiver_status:
  description:
    - Status of the WAL receiver at the end (C(streaming) when healthy); with O(wait_until=running), C(running) once
      the server runs. Null in check mode or without waiting.
  returned: success
  type: str
  sample: streaming
seconds:
  description:
    - Wall time spent in each command the module ran (C(pg_basebackup), C(systemctl start), C(psql), ...), and in
      the wait of O(wait_until) (C(wait until running) or C(wait until streaming), polls included).
  returned: always
  type: dict
  sample: {"pg_basebackup": 41.2, "systemctl start": 0.9, "psql": 0.4}
msg:
  description: What happened, in words.
  returned: always
  type: str
"""

import os
import pwd
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.pg_datadir import (
    ABSENT,
    CLONE,
    EMPTY,
    REFUSE,
    classify,
    controldata_reader,
    decide,
    flush_tree,
    installed_majors,
    postmaster_running,
    read_datadir_facts,
    read_text,
    write_atomically,
)
from ansible_collections.muejam.dbops.plugins.module_utils.standby import (
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


class Standby:
    """One run of the module: read, decide, act (unless check mode), report."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        major, cluster = self.params["major"], self.params["cluster_name"]
        self.bindir = os.path.join(self.params["pg_lib_root"], str(major), "bin")
        self.datadir = (self.params["data_directory"] or "/var/lib/postgresql/%d/%s" % (major, cluster)).rstrip("/")
        self.confdir = "/etc/postgresql/%d/%s" % (major, cluster)
        self.service = "postgresql@%d-%s" % (major, cluster)
        self.actions: list[str] = []
        self.seconds: dict[str, float] = {}  # time spent per command, returned for progress reports and tuning
        self.state_before = ABSENT

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

    def running(self) -> bool:
        rc, unused_out, unused_err = self.systemctl("is-active", "--quiet", self.service, check=False)
        return rc == 0 or postmaster_running(self.datadir)

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
        os.makedirs(self.datadir, mode=0o700)
        os.chown(self.datadir, *self.postgres_ids())
        os.chmod(self.datadir, 0o700)
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
        major = self.params["major"]
        sharedir = os.path.join(self.params["pg_share_root"], str(major))
        postgres = self.postgres_ids()
        settings = self.params["initial_settings"]
        for name, render in (("postgresql.conf", lambda text: initial_postgresql_conf(text, settings)),
                             ("pg_hba.conf", lambda text: initial_pg_hba_conf(text, major)),
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

    def main(self) -> None:
        params = self.params
        major = params["major"]
        installed = installed_majors(params["pg_lib_root"])
        if major not in installed:
            self.fail("PostgreSQL %d is not installed on this host (installed: %s): install postgresql-%d first. "
                      "Nothing was changed." % (major, ", ".join(map(str, installed)) or "none", major))
        try:
            facts = read_datadir_facts(self.datadir, controldata_reader(self.module, params["pg_lib_root"]))
        except (OSError, ValueError) as exc:
            self.fail("Could not read the data directory %s: %s. Nothing was changed." % (self.datadir, exc))
        state = classify(facts, params["expected_system_identifier"], major)
        self.state_before = state
        verdict, reason = decide(state, params["force"], self.datadir)
        if verdict == REFUSE:
            self.fail(reason + " Nothing was changed.", state=state, verdict=verdict)

        passfile = passfile_line(params["primary_host"], params["primary_port"], params["replication_user"],
                                 params["replication_password"])
        conninfo = primary_conninfo(params["primary_host"], params["primary_port"], params["replication_user"],
                                    params["passfile"], params["application_name"])
        conf_d = os.path.join(self.confdir, "conf.d")
        running_before = self.running()

        self.write_file(params["passfile"], passfile, 0o600, "the replication passfile")
        moved = None
        cloned = verdict == CLONE
        if cloned:
            if self.module.check_mode:
                self.actions.append("clone the primary with pg_basebackup (%s)" % reason)
            else:
                moved = self.clone()
        signal = os.path.join(self.datadir, "standby.signal")
        if not os.path.exists(signal) and not (cloned and self.module.check_mode):
            self.write_file(signal, "", 0o600, "standby.signal")
        restart_changed = self.write_file(os.path.join(conf_d, RESTART_CONF), restart_conf(params["settings"]),
                                          0o644, RESTART_CONF)
        reload_changed = self.write_file(os.path.join(conf_d, UPSTREAM_CONF),
                                         upstream_conf(conninfo, params["slot_name"],
                                                       params["wal_retrieve_retry_interval"]), 0o644, UPSTREAM_CONF)
        running = running_before and not cloned
        action = service_action(cloned, restart_changed, reload_changed, running)
        rc, unused_out, unused_err = self.systemctl("is-enabled", "--quiet", self.service, check=False)
        if rc != 0:
            self.actions.append("enabled " + self.service)
            if not self.module.check_mode:
                self.systemctl("enable", self.service)
        if action:
            self.actions.append({"start": "started", "restart": "restarted", "reload": "reloaded"}[action])
            if not self.module.check_mode:
                if action == "start" and params["wait_seconds"] > 0:
                    # Debian's pg_ctlcluster holds a start for about 2 s of its own probes (a 0.5 s sleep,
                    # then three psql connections 0.5 s apart) after the server is up. The wait below (the
                    # WAL receiver streaming, or the postmaster running) is the stronger proof, so the job is
                    # queued and not waited for; systemd marks the unit active when pg_ctlcluster returns.
                    self.systemctl(action, "--no-block", self.service)
                else:
                    self.systemctl(action, self.service)

        status = None
        if not self.module.check_mode and params["wait_seconds"] > 0:
            waiting = time.monotonic()
            status = self.wait_until_ready()
            self.seconds["wait until %s" % params["wait_until"]] = round(time.monotonic() - waiting, 2)
            if status not in ("streaming", "running"):
                if params["wait_until"] == "running":
                    self.fail("%s did not start within %d s. Check the standby's log (journalctl -u %s and "
                              "/var/log/postgresql)." % (self.service, params["wait_seconds"], self.service),
                              state=state, verdict=verdict, cloned=cloned, moved_aside=moved)
                self.fail("%s did not start streaming from %s:%d within %d s (WAL receiver: %s). Check the "
                          "primary's pg_hba.conf, the slot %s and the standby's log (journalctl -u %s)."
                          % (self.service, params["primary_host"], params["primary_port"], params["wait_seconds"],
                             status or "not running", params["slot_name"], self.service),
                          state=state, verdict=verdict, cloned=cloned, moved_aside=moved)
        changed = bool(self.actions)
        msg = "; ".join(self.actions) if changed else "already a standby of %s, nothing to do" % params["primary_host"]
        self.module.exit_json(changed=changed, state=state, verdict=verdict, reason=reason, actions=self.actions,
                              cloned=cloned, moved_aside=moved, receiver_status=status, seconds=self.seconds, msg=msg)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "major": {"type": "int", "required": True},
            "cluster_name": {"type": "str", "default": "main"},
            "data_directory": {"type": "path"},
            "port": {"type": "int", "default": 5432},
            "primary_host": {"type": "str", "required": True},
            "primary_port": {"type": "int", "default": 5432},
            "replication_user": {"type": "str", "default": "replicator"},
            "replication_password": {"type": "str", "required": True, "no_log": True},
            "passfile": {"type": "path", "default": "/var/lib/postgresql/.pgpass_pg_replica"},
            "application_name": {"type": "str", "required": True},
            "slot_name": {"type": "str", "required": True},
            "expected_system_identifier": {"type": "str", "required": True},
            "force": {"type": "bool", "default": False},
            "settings": {"type": "dict", "default": {}},
            "wal_retrieve_retry_interval": {"type": "str", "default": "1s"},
            "basebackup_extra_args": {"type": "list", "elements": "str", "default": []},
            "wait_seconds": {"type": "int", "default": 300},
            "wait_until": {"type": "str", "default": "streaming", "choices": ["streaming", "running"]},
            "pg_lib_root": {"type": "path", "default": "/usr/lib/postgresql"},
            "pg_share_root": {"type": "path", "default": "/usr/share/postgresql"},
            "initial_settings": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    Standby(module).main()


if __name__ == "__main__":
    main()
