# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to keep secrets out of messages, for PostgreSQL, Redis and S3 code alike."""

from __future__ import annotations

import re

MASK = "********"

_CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"((?:postgres(?:ql)?|rediss?)://[^:/@\s]*:)[^@\s]+@")


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret, and any password in a conninfo string or URI, masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _CONNINFO_PASSWORD.sub(r"\1" + MASK, text)
    return _URI_PASSWORD.sub(r"\1" + MASK + "@", text)
