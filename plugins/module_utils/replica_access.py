# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a primary needs so that replicas can stream from it: pure logic, unit-tested.

- :func:`plan_hba` edits ``pg_hba.conf`` text: one ``host replication <user> <address> <method>``
  line per replica, marked with a comment naming the replica, replaced when the replica's address
  changed, appended at the end otherwise. Lines it does not own are never touched.
- :func:`scram_matches` tells whether a stored SCRAM-SHA-256 verifier belongs to a password, so
  the password is only set again when it differs (RFC 5802 / RFC 7677, as PostgreSQL stores it).
- :func:`too_wide` tells an address that would let every address connect (``0.0.0.0/0``), refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import unicodedata
from typing import Any

MARKER = "muejam.dbops.pg_replica"
_SCRAM = re.compile(r"^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$")


def hba_line(user: str, source: str, method: str, name: str, database: str = "replication") -> str:
    """The pg_hba.conf line for one replica (database C(replication) to stream; C(postgres) for pg_rewind)."""
    return "host\t%s\t%s\t%s\t%s\t# %s %s" % (database, user, source, method, MARKER, name)


def _owner(line: str) -> str | None:
    """Name of the replica a line was written for (by this module or the older role), or None."""
    match = re.search(r"#\s*%s\s+(\S+)\s*$" % re.escape(MARKER), line)
    return match.group(1) if match else None


def _fields(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def too_wide(source: str) -> bool:
    """Whether a pg_hba.conf address matches every address (0.0.0.0/0, ::/0) or stands for none (0.0.0.0/32)."""
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False  # PostgreSQL judges it (pg_hba_file_rules) and the file is put back
    return network.prefixlen == 0 or network.network_address.is_unspecified


def plan_hba(text: str, replicas: list[dict[str, str]], user: str, method: str) -> tuple[str, list[str]]:
    """(new text, changes) so that every replica has its line; text is returned as is when nothing changes."""
    lines = text.splitlines()
    changes: list[str] = []
    for replica in replicas:
        wanted = hba_line(user, replica["source"], method, replica["name"], replica.get("database") or "replication")
        wanted_fields = _fields(wanted)
        owned = [i for i, line in enumerate(lines) if _owner(line) == replica["name"]]
        if any(_fields(lines[i]) == wanted_fields for i in owned):
            continue
        if any(_fields(line) == wanted_fields for line in lines if not line.lstrip().startswith("#")):
            continue  # the same rule exists already, written by someone else: leave it
        if owned:
            changes.append("pg_hba.conf: %s now allowed from %s (was: %s)"
                           % (replica["name"], replica["source"], " ".join(_fields(lines[owned[0]]))))
            lines[owned[0]] = wanted
        else:
            changes.append("pg_hba.conf: %s allowed to %s from %s" % (
                replica["name"], "replicate" if (replica.get("database") or "replication") == "replication"
                else "connect to " + replica["database"], replica["source"]))
            lines.append(wanted)
    if not changes:
        return text, []
    return "\n".join(lines) + "\n", changes


def _normalize(password: str) -> bytes:
    """SASLprep as PostgreSQL applies it, for the common cases (NFKC); ASCII passes unchanged."""
    if password.isascii():
        return password.encode()
    return unicodedata.normalize("NFKC", password).encode()


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether PostgreSQL's stored SCRAM-SHA-256 verifier was made from this password."""
    match = _SCRAM.match(verifier or "")
    if not match:
        return False
    iterations, salt, stored_key, server_key = match.groups()
    salted = hashlib.pbkdf2_hmac("sha256", _normalize(password), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return (hmac.compare_digest(base64.b64encode(hashlib.sha256(client_key).digest()).decode(), stored_key)
            and hmac.compare_digest(base64.b64encode(server).decode(), server_key))


def role_changes(row: dict[str, Any] | None, password: str) -> list[str]:
    """What ALTER/CREATE the replication role needs: [] when it exists with LOGIN, REPLICATION and this password."""
    if row is None:
        return ["create"]
    changes = []
    if not row["rolcanlogin"] or not row["rolreplication"]:
        changes.append("attributes")
    if not scram_matches(row["rolpassword"], password):
        changes.append("password")
    return changes
