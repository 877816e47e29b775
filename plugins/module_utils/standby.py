# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files a streaming standby is made of, and what a change to them requires.

Pure functions, so the module (pg_standby) does one round trip per replica and the rules are
unit-tested without a server: the passfile line, primary_conninfo, the two conf.d files the
collection owns, and whether a change needs a restart, a reload or nothing.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.muejam.dbops.plugins.module_utils.postgres import format_conninfo

# conf.d files owned by the collection: settings that need a restart, and the upstream (a reload
# applies primary_conninfo and primary_slot_name since PostgreSQL 13).
RESTART_CONF = "50-pg_replica.conf"
UPSTREAM_CONF = "51-pg_replica-upstream.conf"
# Left by role pg_restore on a server restored from S3 (dbops.detached): removed when it becomes a standby.
DETACHED_CONF = "70-dbops-detached.conf"
HEADER = "# Managed by muejam.dbops (pg_replica): %s. Changes here are overwritten.\n"


def passfile_escape(value: Any) -> str:
    """A field of a libpq passfile: backslash and colon escaped."""
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def passfile_line(host: str, port: int, user: str, password: str, database: str = "replication") -> str:
    """host:port:database:user:password: with C(replication), the entry pg_basebackup and the WAL receiver read;
    pg_rewind connects to a normal database (C(*) matches any)."""
    return ":".join(passfile_escape(part) for part in (host, port, database, user, password)) + "\n"


def primary_conninfo(host: str, port: int, user: str, passfile: str, application_name: str) -> str:
    """primary_conninfo without a password: the password lives in the passfile (mode 0600)."""
    return format_conninfo([("host", host), ("port", port), ("user", user), ("passfile", passfile),
                            ("application_name", application_name)])


def conf_quote(value: Any) -> str:
    """A postgresql.conf string value."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "'" + str(value).replace("'", "''") + "'"


def restart_conf(settings: dict[str, Any]) -> str:
    """The settings that need a restart, one per line, sorted so the file is stable."""
    lines = [HEADER % "settings that need a restart"]
    lines += ["%s = %s\n" % (name, conf_quote(settings[name])) for name in sorted(settings)]
    return "".join(lines)


def upstream_conf(conninfo: str, slot_name: str, retry_interval: str = "1s") -> str:
    """primary_conninfo, primary_slot_name and how soon a lost upstream is tried again (a reload applies them).

    wal_retrieve_retry_interval (default 5s) is also how long a standby whose primary died may wait
    before it tries the new upstream after a failover: 1s keeps the repoint short.
    """
    return (HEADER % "upstream of this standby; the password is in the passfile"
            + "primary_conninfo = %s\n" % conf_quote(conninfo)
            + "primary_slot_name = %s\n" % conf_quote(slot_name)
            + "wal_retrieve_retry_interval = %s\n" % conf_quote(retry_interval))


def service_action(cloned: bool, restart_changed: bool, reload_changed: bool, running: bool) -> str | None:
    """What to do with the server after the files were written: start, restart, reload or nothing."""
    if not running:
        return "start"
    if cloned or restart_changed:
        return "restart"
    if reload_changed:
        return "reload"
    return None


# What initdb writes into postgresql.conf besides the distribution's sample (PostgreSQL 13 to 17):
# the values it would pick on a host with enough shared memory. The locale, time zone and text
# search settings are taken from the primary by the caller (the standby holds the primary's data).
INITDB_SETTINGS = {
    "max_connections": "100",
    "shared_buffers": "128MB",
    "dynamic_shared_memory_type": "posix",
    "max_wal_size": "1GB",
    "min_wal_size": "80MB",
}


def initial_postgresql_conf(sample: str, settings: dict[str, Any]) -> str:
    """A first postgresql.conf for a cloned data directory: the sample, then initdb's choices.

    pg_createcluster then integrates the directory into Debian's layout (data_directory, port,
    sockets, ssl, include_dir 'conf.d', ...) as it does for a cluster it created, without an
    initdb whose data directory would be thrown away.
    """
    merged = dict(INITDB_SETTINGS)
    merged.update({name: value for name, value in settings.items() if value not in (None, "")})
    lines = ["\n# Written by muejam.dbops (pg_standby) in place of initdb, for a cloned standby:\n"]
    lines += ["%s = %s\n" % (name, conf_quote(merged[name])) for name in sorted(merged)]
    return sample.rstrip("\n") + "\n" + "".join(lines)


def initial_pg_hba_conf(sample: str, major: int) -> str:
    """pg_hba.conf as Debian's initdb writes it: peer locally, passwords over TCP (md5 before 14)."""
    host_method = "scram-sha-256" if major >= 14 else "md5"
    text = sample.replace("@remove-line-for-nolocal@", "").replace("@authcomment@", "")
    return text.replace("@authmethodlocal@", "peer").replace("@authmethodhost@", host_method)
