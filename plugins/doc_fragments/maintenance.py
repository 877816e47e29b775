# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options pg_vacuum and pg_reindex share: the databases, lock waits and the time window."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  databases:
    description: Databases to work in. Default every database that accepts connections, templates excluded.
    type: list
    elements: str
    default: []
  lock_timeout_ms:
    description:
      - C(lock_timeout) of the maintenance session in milliseconds. A statement that would wait longer for a
        lock gives up, so no writer queues behind it for longer than this.
    type: int
    default: 1000
  retries:
    description: How many more times a statement that found its table locked is tried before it is skipped.
    type: int
    default: 3
  retry_delay:
    description: Seconds between those attempts.
    type: float
    default: 2.0
  window_minutes:
    description:
      - Minutes from the start of the task after which no new statement starts (one that runs is not
        interrupted). The rest is reported as not started. Unset means no limit.
    type: float
  not_after:
    description:
      - A UTC time (ISO 8601, for example C(2026-12-06T02:30:00Z)) after which no new statement starts; with
        O(window_minutes) the earlier of the two applies. The role sets it once for every task of a host.
    type: str
  report_target:
    description: Name of this server in RV(checks) (the caller's host name); default O(login_host) or C(localhost).
    type: str
"""
