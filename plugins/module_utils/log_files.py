# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Log retention: which files under the log directories are old enough to go, and never one a process has open.

A server writing to a deleted log keeps the space and loses the lines, so a file any process holds open (seen
through ``/proc/<pid>/fd``) is kept whatever its age.
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from typing import Any

DEFAULT_PATTERNS = ["*.log", "*.log.*", "*.log-*", "*.csv", "*.json", "*.gz", "*.xz", "*.bz2", "*.zst"]


class LogCleanupError(Exception):
    """A failure the user can act on."""


def _fds_of(pid: str, proc: str) -> list[tuple[int, int]] | None:
    """(device, inode) of one process's open files; None when they cannot be read (permission)."""
    fd_dir = os.path.join(proc, pid, "fd")
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        return []
    except PermissionError:
        return None
    seen = []
    for fd in fds:
        try:
            st = os.stat(os.path.join(fd_dir, fd))
        except PermissionError:
            return None
        except OSError:
            continue
        seen.append((st.st_dev, st.st_ino))
    return seen


def _fds_as_owner(uid: int, pids: list[str], proc: str) -> dict[str, list[tuple[int, int]] | None]:
    """Read processes' open files as their owner, in a child process. Root without CAP_SYS_PTRACE (a container,
    a hardened host) cannot read another user's /proc/<pid>/fd, but the process's own user can."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(os.stat(os.path.join(proc, pids[0])).st_gid)
            os.setuid(uid)
            found = {pid: _fds_of(pid, proc) for pid in pids}
        except OSError:
            found = {}
        os.write(write_end, json.dumps(found).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(child, 0)
    found = json.loads(b"".join(chunks) or b"{}")
    return {pid: ([tuple(pair) for pair in found[pid]] if found.get(pid) is not None else None) for pid in pids}


def open_files(proc: str = "/proc") -> tuple[set[tuple[int, int]], list[tuple[int, int]]]:
    """(device, inode) of every file a process has open, and (pid, uid) of the processes whose descriptors could
    not be read, as root nor as their owner (a non-dumpable daemon)."""
    seen: set[tuple[int, int]] = set()
    by_owner: dict[int, list[str]] = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        found = _fds_of(pid, proc)
        if found is None:
            try:
                by_owner.setdefault(os.stat(os.path.join(proc, pid)).st_uid, []).append(pid)
            except FileNotFoundError:
                continue
        else:
            seen.update(found)
    unreadable: list[tuple[int, int]] = []
    for uid, pids in by_owner.items():
        results = _fds_as_owner(uid, pids, proc) if os.geteuid() == 0 else dict.fromkeys(pids)
        for pid, found in results.items():
            if found is None and os.path.exists(os.path.join(proc, pid)):
                unreadable.append((int(pid), uid))
            elif found:
                seen.update(found)
    return seen, unreadable


def matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def old_files(paths: list[str], patterns: list[str], age_days: float, now: float) -> tuple[list[dict], list[str]]:
    """Regular files (symlinks not followed) under paths whose modification time is older than age_days; and the
    paths that do not exist."""
    limit = now - age_days * 86400.0
    found, missing = [], []
    for root in paths:
        if not os.path.isdir(root):
            missing.append(root)
            continue
        for directory, _dirs, names in os.walk(root):
            for name in sorted(names):
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if not os.path.isfile(path) or os.path.islink(path) or not matches(name, patterns):
                    continue
                if st.st_mtime < limit:
                    found.append({"path": path, "bytes": st.st_size, "age_days": round((now - st.st_mtime) / 86400, 1),
                                  "key": (st.st_dev, st.st_ino), "uid": st.st_uid})
    return found, missing


def clean_logs(paths: list[str], patterns: list[str], age_days: float, check_mode: bool,
               now: float | None = None, proc: str = "/proc", keep: list[str] | None = None) -> dict[str, Any]:
    """Delete (or list, in check mode) the old files that no process has open and that keep does not name (a
    server's current log that it opens for each line, as redis-server does, is open only for that moment)."""
    if age_days < 1:
        raise LogCleanupError("age_days must be at least 1 (got %s): a shorter limit deletes the logs of today's "
                              "incident" % age_days)
    held, unreadable = open_files(proc)
    hidden_uids = {uid for _pid, uid in unreadable}
    candidates, missing = old_files(paths, patterns, age_days, now if now is not None else time.time())
    kept = {os.path.realpath(path) for path in keep or []}
    deleted, kept_open, kept_unknown, kept_named = [], [], [], []
    for item in candidates:
        key, uid = item.pop("key"), item.pop("uid")
        if os.path.realpath(item["path"]) in kept:
            kept_named.append(item)
            continue
        if key in held:
            kept_open.append(item)
            continue
        if uid in hidden_uids:
            # a process whose open files cannot be read runs as the file's owner: it may be the one writing it
            kept_unknown.append(dict(item, reason="process(es) %s of its owner (uid %s) cannot be inspected" % (
                ", ".join(str(p) for p, u in unreadable if u == uid), uid)))
            continue
        if not check_mode:
            try:
                os.unlink(item["path"])
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise LogCleanupError("cannot delete %s: %s (deleted before it: %d files)"
                                      % (item["path"], exc.strerror, len(deleted))) from None
        deleted.append(item)
    return {"changed": bool(deleted), "deleted": deleted, "kept_open": kept_open, "kept_unknown": kept_unknown,
            "kept_named": kept_named,
            "missing_paths": missing, "unreadable_processes": [p for p, _u in unreadable],
            "bytes_freed": sum(d["bytes"] for d in deleted)}


def cleanup_checks(result: dict[str, Any], host: str, age_days: float, check_mode: bool) -> list[dict[str, Any]]:
    """The cleanup as one report check."""
    verb = "would delete" if check_mode else "deleted"
    kept = (("kept_open", "a process has open", ", ", "%(path)s"),
            ("kept_unknown", "whose owner runs a process whose open files cannot be read", "; ",
             "%(path)s (%(reason)s)"),
            ("kept_named", "named in keep", ", ", "%(path)s"))
    reason = ["kept %d old file(s) %s: %s" % (len(result[key]), why, sep.join(shown % k for k in result[key][:5]))
              for key, why, sep, shown in kept if result[key]]
    if result["missing_paths"]:
        reason.append("no such directory: %s" % ", ".join(result["missing_paths"]))
    return [{"check": "log cleanup", "target": host, "status": "ok",
             "value": "%s %d file(s), %.1f MB" % (verb, len(result["deleted"]), result["bytes_freed"] / 1048576.0),
             "unit": "", "threshold": "older than %g days" % age_days, "reason": "; ".join(reason),
             "critical": False, "runbook": "", "playbook": ""}]
