#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: log_cleanup
short_description: Delete log files older than N days, never one a process has open
version_added: 0.5.0
description:
  - Deletes regular files under O(paths) (recursively, symlinks not followed) whose names match O(patterns)
    and whose modification time is older than O(age_days) (current, rotated and compressed logs alike).
  - A file that any process has open (read from C(/proc/<pid>/fd)) is kept and reported, whatever its age; a
    server writing to a deleted log keeps its disk space and loses the lines. Run it as root. Where root may not
    read another user's descriptors (no C(CAP_SYS_PTRACE), as in containers), they are read as that user; a
    process that cannot be read either way (a non-dumpable daemon) makes every old file owned by its user stay,
    reported in RV(kept_unknown).
  - In check mode it lists the files it would delete and deletes nothing.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.action
options:
  paths:
    description: Directories to clean, for example C(/var/log/postgresql) and C(/var/log/redis).
    type: list
    elements: path
    required: true
  age_days:
    description: Files last modified longer ago than this many days are deleted (at least 1).
    type: float
    default: 30
  patterns:
    description: Shell patterns of file names to consider; other files are left alone.
    type: list
    elements: str
    default: ["*.log", "*.log.*", "*.log-*", "*.csv", "*.json", "*.gz", "*.xz", "*.bz2", "*.zst"]
  keep:
    description:
      - Files never deleted whatever their age, for example a server's current log. Needed for servers that
        open their log for each line instead of holding it open (C(redis-server) does), which the open-file
        check cannot see between two lines.
    type: list
    elements: path
    default: []
  report_target:
    description: Name of this host in RV(checks); default C(localhost).
    type: str
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Delete PostgreSQL logs older than 30 days
  muejam.dbops.log_cleanup:
    paths: [/var/log/postgresql]
    age_days: 30
  become: true
"""

RETURN = r"""
deleted:
  description: The files deleted (in check mode, those that would be), with C(path), C(bytes) and C(age_days).
  returned: success
  type: list
  elements: dict
kept_open:
  description: Old files kept because a process has them open.
  returned: success
  type: list
  elements: dict
kept_named:
  description: Old files kept because O(keep) names them.
  returned: success
  type: list
  elements: dict
kept_unknown:
  description: Old files kept because a process of their owner could not be inspected, with C(reason).
  returned: success
  type: list
  elements: dict
unreadable_processes:
  description: Pids whose open files could not be read, as root nor as their owner.
  returned: success
  type: list
  elements: int
missing_paths:
  description: Directories of O(paths) that do not exist.
  returned: success
  type: list
  elements: str
bytes_freed:
  description: Total size of RV(deleted).
  returned: success
  type: int
checks:
  description: The result as a check of the collection's report (see muejam.dbops.health_report).
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.log_files import (
    DEFAULT_PATTERNS,
    LogCleanupError,
    clean_logs,
    cleanup_checks,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "age_days": {"type": "float", "default": 30},
            "patterns": {"type": "list", "elements": "str", "default": DEFAULT_PATTERNS},
            "keep": {"type": "list", "elements": "path", "default": []},
            "report_target": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = clean_logs(params["paths"], params["patterns"], params["age_days"], module.check_mode,
                            keep=params["keep"])
    except LogCleanupError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(checks=cleanup_checks(result, params["report_target"] or "localhost", params["age_days"],
                                           module.check_mode), **result)


if __name__ == "__main__":
    main()
