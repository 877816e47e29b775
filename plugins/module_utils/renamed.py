# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Variables renamed for one name per concept: the old names stay accepted for one release, with a warning."""

from __future__ import annotations

from typing import Any

COLLECTION = "muejam.dbops"
REMOVED_IN = "0.5.0"
ARGUMENT_SPEC = {
    "renamed": {"type": "list", "elements": "dict", "required": True, "options": {
        "old": {"type": "str", "required": True},
        "new": {"type": "str", "required": True},
        "given": {"type": "bool", "required": True},
    }},
}


def deprecations(renamed: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One deprecation per old name that was given: what to set instead, and the release that drops it."""
    return [{"msg": "%s is deprecated: set %s instead (same meaning); %s stops reading %s in %s."
                    % (item["old"], item["new"], COLLECTION, item["old"], REMOVED_IN),
             "version": REMOVED_IN, "collection_name": COLLECTION}
            for item in renamed if item["given"]]
