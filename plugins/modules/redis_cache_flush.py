#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_cache_flush
short_description: Empty every master of a Redis Cluster (FLUSHALL ASYNC), refusing while a master is down
version_added: 0.6.0
description:
  - Reads the cluster through the node at O(login_host):O(login_port) and sends C(FLUSHALL ASYNC) to
    every master; replicas follow through replication. The runbook's C(redis-cli FLUSHALL) reaches one
    node only, and C(FLUSHDB) one database of one node - on a cluster most keys would survive.
  - C(ASYNC) frees the memory in a background thread, so the masters keep answering (a synchronous
    flush of a large keyspace blocks a node for seconds).
  - Refuses, flushing nothing, while a master holding slots is failed or unreachable (its keys would
    come back with it), while slots are uncovered or open, or while the nodes disagree about slots.
  - Reports the keys of every node before and after. The application may write keys again right after
    the flush (it fills the cache on misses); those are counted in RV(keys_after).
  - The module does not ask for a confirmation; the playbook C(muejam.dbops.redis_cache_flush) does.
extends_documentation_fragment:
  - muejam.dbops.redis
  - muejam.dbops.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module reports the masters and keys it would flush and flushes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run flushes again (an empty cluster stays empty) and reports changed.
options:
  wait_seconds:
    description: Seconds to wait for every node, replicas included, to report no key after the flush.
    type: float
    default: 5
seealso:
  - module: muejam.dbops.redis_cluster_info
  - module: muejam.dbops.redis_cache_warm
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Flush the cache cluster
  muejam.dbops.redis_cache_flush:
    login_host: 127.0.0.1
    login_password: "{{ vault_redis_password }}"
  register: flush

- name: Keys before and after
  ansible.builtin.debug:
    msg: "{{ flush.keys_before_total }} keys before, {{ flush.keys_after_total }} after"
"""

RETURN = r"""
masters:
  description: The masters the flush goes to.
  returned: success
  type: list
  elements: str
  sample: ["10.0.0.11:6379", "10.0.0.12:6379", "10.0.0.13:6379"]
flushed:
  description: The masters that answered OK to C(FLUSHALL ASYNC) (empty in check mode).
  returned: success
  type: list
  elements: str
keys_before:
  description: C(DBSIZE) of every node before, by address (null for a node that did not answer).
  returned: success
  type: dict
  sample: {"10.0.0.11:6379": 1200, "10.0.0.14:6379": 1200}
keys_before_total:
  description: Keys on the masters before.
  returned: success
  type: int
keys_after:
  description: C(DBSIZE) of every node after the flush (in check mode, the same as before).
  returned: success
  type: dict
keys_after_total:
  description: Keys on the masters after (written by clients since the flush, when not 0).
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.redis_cache import flush_cluster
from ansible_collections.muejam.dbops.plugins.module_utils.redis_conn import (
    redis_argument_spec,
    run_in_session,
)


def main() -> None:
    argument_spec = redis_argument_spec()
    argument_spec.update(wait_seconds={"type": "float", "default": 5})
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_in_session(module, lambda session: flush_cluster(session, module.check_mode, module.params["wait_seconds"]))


if __name__ == "__main__":
    main()
