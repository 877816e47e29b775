# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File helpers for modules that write configuration or data directories on the managed host:
compare-and-replace without a half-written file, directories created with the right owner, and
flushing a tree to disk. Nothing here knows PostgreSQL or the application."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor


def read_text(path: str) -> str | None:
    """A file's text, or None when it does not exist (the other half of write_atomically's callers' compare)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomically(path: str, text: str, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Replace path with text through a temporary file in the same directory (never half written)."""
    handle, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".dbops-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def flush_tree(root: str, workers: int = 4) -> int:
    """fsync every file, then every directory, of a data directory and the directory holding it (what
    pg_basebackup does unless --no-sync, and PostgreSQL's own fsync_pgdata): pg_wal and tablespace
    links are followed. Files are flushed a few at a time, which lets the disk order the writes.
    A file that went away meanwhile is skipped (pg_createcluster moves the configuration files out), and
    so is anything but files and directories; any other error is raised. Returns how many files were
    flushed."""
    files: list[str] = []
    directories: list[str] = []
    seen: set[str] = set()
    for top, subdirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            subdirs[:] = []
            continue
        seen.add(real)
        directories.append(top)
        files.extend(os.path.join(top, name) for name in names)

    def flush(path: str, flags: int = os.O_RDONLY) -> int:
        try:
            mode = os.stat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return 0  # a pipe or socket: nothing to flush, and opening a pipe would wait for a writer
            handle = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return 0
            raise
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        return 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        flushed = sum(pool.map(flush, files))
    for directory in directories[::-1] + [os.path.dirname(os.path.abspath(root))]:
        flush(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    return flushed


def make_dirs_owned(path: str, mode: int, owner: tuple[int, int], parent_mode: int = 0o755) -> list[str]:
    """Create ``path`` and every missing directory above it, each owned by ``owner`` (``path`` with
    ``mode``, the ones above with ``parent_mode``), as Debian's pg_createcluster does; os.makedirs would
    leave the missing parents owned by root, where a later restore or pg_createcluster running as the
    owner cannot write. Existing directories are left as they are. Returns the directories created."""
    missing: list[str] = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for directory in reversed(missing):
        os.mkdir(directory, mode if directory == os.path.abspath(path) else parent_mode)
        os.chown(directory, *owner)
        os.chmod(directory, mode if directory == os.path.abspath(path) else parent_mode)
    return list(reversed(missing))
