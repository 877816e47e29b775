#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_cache_warm
short_description: Warm a Redis Cluster cache - SET keys with a TTL on the masters that own them, rate-limited
version_added: 0.6.0
description:
  - Sets each of O(items) with C(SET key value EX ttl) on the master serving the key's slot, in pipelined
    batches of O(batch_size), no faster than O(rate) keys a second, so that warming a cold cache does not
    become the next load spike.
  - The runbook's cache warming runs the application's own code; use that when the application has a warm
    command (the C(muejam.dbops.cache_warm) playbook runs it). This module is the fallback - keys and
    values read from the database with a SQL query, for instance.
  - By default a key that already exists is left alone (C(NX)), so a warm under live traffic never puts an
    older value over the one the application just wrote; O(overwrite=true) sets every key.
  - Keys whose slot no master serves are skipped and counted; a key the master refuses (C(MOVED) while slots
    move, C(OOM) at C(maxmemory)) is counted with its reason and the other keys still go.
extends_documentation_fragment:
  - muejam.dbops.redis
  - muejam.dbops.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module counts the keys it would set and their masters, and sets nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: With O(overwrite=false) a second run sets only keys that expired or were deleted meanwhile.
options:
  items:
    description: The keys to set, each with its value and optionally its own TTL.
    type: list
    elements: dict
    required: true
    suboptions:
      key:
        description: The key.
        type: str
        required: true
      value:
        description: The value, as the application stores it (a JSON text, for instance).
        type: str
        required: true
      ttl:
        description: Seconds to live for this key (default O(ttl)).
        type: int
  ttl:
    description: Seconds to live for every key without its own; a warmed key must expire like the application's own.
    type: int
    default: 3600
  rate:
    description: At most this many keys a second; V(0) for no limit.
    type: float
    default: 500
  batch_size:
    description: Keys per pipelined round trip.
    type: int
    default: 100
  overwrite:
    description: Set keys that already exist too (without C(NX)).
    type: bool
    default: false
seealso:
  - module: muejam.dbops.redis_cache_flush
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Read the most viewed stories
  community.postgresql.postgresql_query:
    login_db: muejam_library
    query: >-
      SELECT 'story:' || id AS key, json_build_object('id', id, 'title', title, 'views', views)::text AS value
        FROM stories ORDER BY views DESC LIMIT 100
  register: popular

- name: Warm them, 200 keys a second
  muejam.dbops.redis_cache_warm:
    login_host: 127.0.0.1
    login_password: "{{ vault_redis_password }}"
    items: "{{ popular.query_result }}"
    ttl: 300
    rate: 200
"""

RETURN = r"""
keys:
  description: Keys given.
  returned: success
  type: int
warmed:
  description: Keys set (in check mode, that would be set).
  returned: success
  type: int
existing:
  description: Keys left alone because they exist already (C(NX)).
  returned: success
  type: int
uncovered:
  description: Keys skipped because no master serves their slot.
  returned: success
  type: int
refused:
  description: Keys a master refused (see RV(errors)).
  returned: success
  type: int
errors:
  description: The first reasons a key was refused (at most five).
  returned: success
  type: list
  elements: str
batches:
  description: Pipelined batches sent.
  returned: success
  type: int
seconds:
  description: Time the warm took.
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cache import warm_keys
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    redis_argument_spec,
    run_in_session,
)


def main() -> None:
    argument_spec = redis_argument_spec()
    argument_spec.update(
        items={"type": "list", "elements": "dict", "required": True,
               "options": {"key": {"type": "str", "required": True, "no_log": False},
                           "value": {"type": "str", "required": True}, "ttl": {"type": "int"}}},
        ttl={"type": "int", "default": 3600}, rate={"type": "float", "default": 500},
        batch_size={"type": "int", "default": 100}, overwrite={"type": "bool", "default": False})
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if p["ttl"] <= 0 or any(item["ttl"] is not None and item["ttl"] <= 0 for item in p["items"]):
        module.fail_json(msg="ttl must be a positive number of seconds: a warmed key without an expiry never "
                             "leaves the cache (set ttl to the application's own cache TTL)")
    if p["rate"] < 0 or p["batch_size"] < 1:
        module.fail_json(msg="rate must be 0 (no limit) or more, and batch_size at least 1")
    run_in_session(module, lambda session: warm_keys(session, p["items"], p, module.check_mode))


if __name__ == "__main__":
    main()
