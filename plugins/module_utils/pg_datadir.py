# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a PostgreSQL data directory holds, and whether a replica may be cloned into it.

The decision is a pure function (:func:`decide`) over facts read from disk
(:func:`read_datadir_facts`), so it can be tested without a server. :func:`judge_replica` makes the
same decision on the primary's side, from the facts pg_datadir_info read on the replica, before
pg_replica_access changes anything (one round trip fewer than reading the primary first). A data directory is only
ever wiped when it is empty, when it is known to be a copy of the wanted primary that must be
re-cloned, or when the user forces it: everything else is refused.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

# The three answers a caller acts on.
KEEP = "keep"
CLONE = "clone"
REFUSE = "refuse"

# What the directory holds.
ABSENT = "absent"
EMPTY = "empty"
REPLICA = "replica"
SAME_CLUSTER_NOT_STANDBY = "same_cluster_not_standby"
OTHER_CLUSTER = "other_cluster"
OTHER_VERSION = "other_version"
NOT_A_CLUSTER = "not_a_cluster"

_CONTROLDATA_LINE = re.compile(r"^([^:]+):\s*(.*)$")


def parse_controldata(text: str) -> dict[str, str]:
    """pg_controldata output as a dict of its labels (e.g. 'Database system identifier') to values."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        match = _CONTROLDATA_LINE.match(line.strip())
        if match:
            result[match.group(1).strip()] = match.group(2).strip()
    return result


def controldata_reader(module: Any, pg_lib_root: str) -> Callable[[str, int], str]:
    """A controldata(datadir, major) for read_datadir_facts: pg_controldata's output, failing the module on error."""

    def controldata(path: str, major: int) -> str:
        binary = os.path.join(pg_lib_root, str(major), "bin", "pg_controldata")
        if not os.path.exists(binary):
            return ""
        rc, out, err = module.run_command([binary, "-D", path], environ_update={"LC_ALL": "C", "LANG": "C"})
        if rc != 0:
            module.fail_json(msg="pg_controldata could not read %s: %s" % (path, err.strip()))
        return out

    return controldata


def installed_majors(root: str = "/usr/lib/postgresql") -> list[int]:
    """Major versions of PostgreSQL installed the Debian way (/usr/lib/postgresql/<major>/bin/postgres)."""
    majors = []
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name.isdigit() and os.path.exists(os.path.join(root, name, "bin", "postgres")):
                majors.append(int(name))
    return sorted(majors)


def candidate_datadirs(data_root: str, cluster_name: str, majors: list[int]) -> list[tuple[int, str]]:
    """(major, path) of the cluster's default data directory (Debian layout) for every major version that is
    installed or has such a directory on disk, so the primary's side can pick the one for its own version."""
    found = set(majors)
    if os.path.isdir(data_root):
        for name in os.listdir(data_root):
            if name.isdigit() and os.path.isdir(os.path.join(data_root, name, cluster_name)):
                found.add(int(name))
    return [(major, os.path.join(data_root, str(major), cluster_name)) for major in sorted(found)]


def postmaster_running(datadir: str) -> bool:
    """True when postmaster.pid names a live process."""
    try:
        with open(os.path.join(datadir, "postmaster.pid"), encoding="utf-8") as handle:
            pid = int(handle.readline().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_datadir_facts(datadir: str, controldata: Callable[[str, int], str] | None) -> dict[str, Any]:
    """Facts about a data directory read from disk; controldata(datadir, major) returns pg_controldata's output."""
    facts: dict[str, Any] = {
        "exists": os.path.isdir(datadir),
        "entries": 0,
        "pg_version": None,
        "system_identifier": None,
        "cluster_state": None,
        "standby_signal": False,
        "running": False,
    }
    if not facts["exists"]:
        return facts
    entries = os.listdir(datadir)
    facts["entries"] = len(entries)
    facts["standby_signal"] = "standby.signal" in entries
    facts["running"] = postmaster_running(datadir)
    if "PG_VERSION" in entries:
        with open(os.path.join(datadir, "PG_VERSION"), encoding="utf-8") as handle:
            facts["pg_version"] = int(handle.read().strip().split(".")[0])
        if controldata is not None:
            parsed = parse_controldata(controldata(datadir, facts["pg_version"]))
            facts["system_identifier"] = parsed.get("Database system identifier")
            facts["cluster_state"] = parsed.get("Database cluster state")
    return facts


def classify(facts: dict[str, Any], expected_system_identifier: str, expected_major: int) -> str:
    """What the directory holds, relative to the wanted primary."""
    if not facts["exists"]:
        return ABSENT
    if facts["entries"] == 0:
        return EMPTY
    if facts["pg_version"] is None:
        return NOT_A_CLUSTER
    if expected_major and facts["pg_version"] != expected_major:
        return OTHER_VERSION
    if not facts["system_identifier"]:
        return NOT_A_CLUSTER
    if expected_system_identifier and str(facts["system_identifier"]) != str(expected_system_identifier):
        return OTHER_CLUSTER
    if facts["standby_signal"]:
        return REPLICA
    return SAME_CLUSTER_NOT_STANDBY


def decide(state: str, force: bool, datadir: str) -> tuple[str, str]:
    """(verdict, reason): keep the directory, clone into it, or refuse to touch it."""
    if state == ABSENT:
        return CLONE, "%s does not exist: the replica will be cloned from the primary" % datadir
    if state == EMPTY:
        return CLONE, "%s is empty: the replica will be cloned from the primary" % datadir
    if state == REPLICA:
        return KEEP, "%s already holds a standby of this primary: it is kept" % datadir
    described = {
        SAME_CLUSTER_NOT_STANDBY: "a copy of the primary's cluster that is not a standby (no standby.signal: "
                                  "a promoted server or a former primary)",
        OTHER_CLUSTER: "a different PostgreSQL cluster (its system identifier is not the primary's)",
        OTHER_VERSION: "a cluster of another PostgreSQL major version",
        NOT_A_CLUSTER: "files that are not a PostgreSQL cluster",
    }[state]
    if force:
        return CLONE, ("%s holds %s; because force is set it will be moved aside (renamed, not deleted) and the "
                       "replica cloned" % (datadir, described))
    return REFUSE, ("%s holds %s. Refusing to replace it: check that this is the right host, move the data away, "
                    "or set the force variable (pg_replica_force_reclone=true) to replace it." % (datadir, described))


def judge_replica(info: dict[str, Any], primary_major: int, primary_system_identifier: str, force: bool,
                  replica: str, primary: str) -> tuple[str, str]:
    """(verdict, reason) for a replica, judged on the primary's side from what pg_datadir_info read on it.

    info holds pg_datadir_info's ``installed_majors`` and ``candidates`` (facts plus ``path`` and ``major``;
    ``major`` is None for a data directory the user named, which is then the one judged).
    """
    installed = [int(major) for major in info.get("installed_majors") or []]
    if installed and primary_major not in installed:
        return REFUSE, ("Version mismatch: the primary %s runs PostgreSQL %d but %s has PostgreSQL %s installed. "
                        "A streaming replica needs the primary's major version: install PostgreSQL %d on it "
                        "(or upgrade the primary first)."
                        % (primary, primary_major, replica, ", ".join(str(m) for m in installed), primary_major))
    candidates = info.get("candidates") or []
    chosen = ([c for c in candidates if c.get("major") is None]
              or [c for c in candidates if c.get("major") is not None and int(c["major"]) == primary_major])
    if not chosen:
        return CLONE, ("%s has no data directory for PostgreSQL %d yet: the replica will be cloned from the primary"
                       % (replica, primary_major))
    facts = chosen[0]
    return decide(classify(facts, primary_system_identifier, primary_major), force, facts["path"])
