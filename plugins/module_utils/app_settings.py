# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""KEY=value lines of an application's environment file (module app_db_settings), as pure functions."""

from __future__ import annotations

import re


def set_env_lines(text: str, env: dict[str, str]) -> str:
    """text with each KEY=value of env set: the first KEY= line replaced, later ones dropped, absent ones appended.

    Comments and every other line stay as they are. Values are written as given (no quoting added).
    """
    lines = text.splitlines()
    seen: set[str] = set()
    out: list[str] = []
    for line in lines:
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=", line)
        key = match.group(1) if match else None
        if key in env:
            if key not in seen:
                out.append("%s=%s" % (key, env[key]))
                seen.add(key)
            continue
        out.append(line)
    out += ["%s=%s" % (key, value) for key, value in env.items() if key not in seen]
    return "\n".join(out) + "\n" if out else ""


def valid_env_key(key: str) -> bool:
    return re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) is not None
