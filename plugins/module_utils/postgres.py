# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connecting to PostgreSQL: one argument spec, one connect function, one place for error messages.

Every PostgreSQL module of the collection starts from :func:`postgres_argument_spec` and
connects with :func:`connect`, so that options, defaults and failure messages are the same
everywhere (the options are documented in the ``muejam.dbops.postgres`` doc fragment).
"""

from __future__ import annotations

import re
import traceback
from typing import Any
from urllib.parse import urlsplit

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.muejam.dbops.plugins.module_utils.masking import scrub

PSYCOPG2_IMPORT_ERROR: str | None = None
try:
    import psycopg2
    import psycopg2.extras

    HAS_PSYCOPG2 = True
except ImportError:
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()

_SECRET_KEYS = frozenset({"password", "sslpassword"})


class PostgresError(Exception):
    """A failure the user can act on; the message never contains a secret."""


def postgres_argument_spec() -> dict[str, dict[str, Any]]:
    """Return the connection options every PostgreSQL module accepts."""
    return {
        "login_host": {"type": "str", "default": "", "aliases": ["host"]},
        "login_port": {"type": "int", "default": 5432, "aliases": ["port"]},
        "login_user": {"type": "str", "default": "postgres", "aliases": ["user"]},
        "login_password": {"type": "str", "default": "", "no_log": True, "aliases": ["password"]},
        "login_db": {"type": "str", "default": "postgres", "aliases": ["db", "database"]},
        "login_unix_socket": {"type": "str", "default": "/var/run/postgresql"},
        "ssl_mode": {
            "type": "str",
            "default": "prefer",
            "choices": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        },
        "ca_cert": {"type": "path", "aliases": ["ssl_rootcert"]},
        "connect_timeout": {"type": "int", "default": 10},
    }


def connection_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Map module parameters to psycopg2.connect() keyword arguments."""
    kwargs: dict[str, Any] = {
        "host": params["login_host"] or params["login_unix_socket"],
        "port": params["login_port"],
        "user": params["login_user"],
        "dbname": params["login_db"],
        "sslmode": params["ssl_mode"],
        "connect_timeout": params["connect_timeout"],
        "application_name": "muejam.dbops",
    }
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if params.get("ca_cert"):
        kwargs["sslrootcert"] = params["ca_cert"]
    return kwargs


def describe_target(params: dict[str, Any]) -> str:
    """Say where a connection goes, for messages (no secrets)."""
    if params["login_host"]:
        where = "%s:%s" % (params["login_host"], params["login_port"])
    else:
        where = "the Unix socket in %s (port %s)" % (params["login_unix_socket"], params["login_port"])
    return "database '%s' as user '%s' on %s" % (params["login_db"], params["login_user"], where)


def explain_connect_error(text: str, params: dict[str, Any]) -> str:
    """Turn a libpq connection error into a message that says what to check."""
    target = describe_target(params)
    detail = scrub(text.strip(), params.get("login_password") or "")
    lowered = detail.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        hint = "Authentication failed: check login_user/login_password and the server's pg_hba.conf."
    elif "peer authentication failed" in lowered:
        hint = ("Peer authentication failed: run the task as the matching OS user (become_user: postgres) "
                "or connect over TCP with a password.")
    elif "does not exist" in lowered and "database" in lowered:
        hint = "The database does not exist: check login_db."
    elif "role" in lowered and "does not exist" in lowered:
        hint = "The role does not exist on the server: check login_user."
    elif "no pg_hba.conf entry" in lowered:
        hint = "The server's pg_hba.conf has no entry for this client: add one for this address and user."
    elif any(s in lowered for s in ("could not connect", "connection refused", "timeout expired",
                                    "could not translate host name", "no route to host",
                                    "name or service not known", "network is unreachable")):
        hint = ("The server is unreachable: check login_host/login_port, that PostgreSQL is running "
                "and listening there, and any firewall in between.")
    else:
        hint = "Could not connect."
    return "%s (connecting to %s): %s" % (hint, target, detail)


def connect(params: dict[str, Any], autocommit: bool = True) -> Any:
    """Open a connection or raise PostgresError with a message that says what to do."""
    if not HAS_PSYCOPG2:
        raise PostgresError("psycopg2 is not installed on the host running this module")
    try:
        conn = psycopg2.connect(**connection_kwargs(params))
    except psycopg2.Error as exc:
        raise PostgresError(explain_connect_error(str(exc), params)) from None
    conn.autocommit = autocommit
    return conn


def query(conn: Any, sql: str, args: tuple | dict | None = None) -> list[dict[str, Any]]:
    """Run a statement and return its rows as dictionaries."""
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, args)
            if cur.description is None:
                return []
            return [dict(row) for row in cur.fetchall()]
    except psycopg2.Error as exc:
        first_line = " ".join(sql.split())[:80]
        raise PostgresError("query failed (%s...): %s" % (first_line, scrub(str(exc).strip()))) from None


def query_one(conn: Any, sql: str, args: tuple | dict | None = None) -> dict[str, Any]:
    """Run a statement that returns exactly one row."""
    rows = query(conn, sql, args)
    return rows[0] if rows else {}


def server_major_version(conn: Any) -> int:
    """Major version of the connected server (13, 15, 17...)."""
    return int(conn.server_version) // 10000


_CONNINFO_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)")


def parse_conninfo(conninfo: str) -> dict[str, str]:
    """Parse a libpq connection string (key=value form or postgresql:// URI) into a dict."""
    conninfo = conninfo.strip()
    if conninfo.startswith(("postgresql://", "postgres://")):
        return _parse_conninfo_uri(conninfo)
    result: dict[str, str] = {}
    pos = 0
    while pos < len(conninfo):
        match = _CONNINFO_TOKEN.match(conninfo, pos)
        if not match:
            if conninfo[pos:].strip():
                raise ValueError("cannot parse connection string near %r" % scrub(conninfo[pos:pos + 20]))
            break
        key, raw = match.group(1), match.group(2)
        if raw.startswith("'"):
            raw = raw[1:-1]
        result[key] = re.sub(r"\\(.)", r"\1", raw)
        pos = match.end()
    return result


def _parse_conninfo_uri(uri: str) -> dict[str, str]:
    parts = urlsplit(uri)
    result: dict[str, str] = {}
    if parts.hostname:
        result["host"] = parts.hostname
    if parts.port:
        result["port"] = str(parts.port)
    if parts.username:
        result["user"] = parts.username
    if parts.password:
        result["password"] = parts.password
    if parts.path.strip("/"):
        result["dbname"] = parts.path.strip("/")
    for item in filter(None, parts.query.split("&")):
        key, dummy, value = item.partition("=")
        result[key] = value
    return result


def conninfo_quote(value: Any) -> str:
    """A libpq conninfo value: as it is, or in single quotes with backslash and quote escaped when it holds
    whitespace, a quote or a backslash, or is empty."""
    text = str(value)
    if text and not re.search(r"[\s'\\]", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def format_conninfo(params) -> str:
    """A key=value connection string from a dict or from (key, value) pairs, each value quoted as libpq requires."""
    pairs = params.items() if isinstance(params, dict) else params
    return " ".join("%s=%s" % (key, conninfo_quote(value)) for key, value in pairs)


def mask_conninfo(conninfo: str) -> str:
    """A connection string with its secrets (password, sslpassword) removed, safe to show."""
    try:
        params = parse_conninfo(conninfo)
    except ValueError:
        return scrub(conninfo)
    return format_conninfo({k: v for k, v in params.items() if k not in _SECRET_KEYS})


def run_postgres(module: Any, work: Any) -> None:
    """Exit the module with work(params, check_mode)'s result, or fail with a PostgresError's message.

    The PostgreSQL twin of redis_conn.run_in_session: psycopg2 must be importable, and an error the user can act
    on becomes a clear failure."""
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib("psycopg2"))
    try:
        result = work(module.params, module.check_mode)
    except PostgresError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)
