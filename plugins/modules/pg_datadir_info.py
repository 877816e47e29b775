#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_datadir_info
short_description: Say what a PostgreSQL data directory holds and whether a replica may be cloned into it
version_added: 0.2.0
description:
  - Reads a PostgreSQL data directory on the host (C(PG_VERSION), C(standby.signal), C(postmaster.pid) and the
    system identifier from C(pg_controldata)) and compares it with the primary a replica should follow.
  - Returns RV(verdict) C(keep) when the directory already holds a standby of that primary, C(clone) when it is
    absent or empty (or when O(force=true)), and C(refuse) when it holds anything else, for example a different
    cluster, a cluster of another major version, or a promoted copy of the primary.
  - Without O(data_directory), reads the default data directory of O(cluster_name) for every major version that
    is installed or has one (RV(candidates)), for a caller that does not know the primary's version yet.
    M(muejam.dbops.pg_replica_access) then judges them on the primary's side before it changes anything.
  - Also lists the PostgreSQL major versions installed on the host (Debian layout, C(/usr/lib/postgresql/<major>)).
  - Needs to read the data directory, so it runs as root or as the cluster's owner.
extends_documentation_fragment:
  - muejam.dbops.attributes
  - muejam.dbops.attributes.info_module
options:
  data_directory:
    description:
      - The data directory to inspect and judge.
      - When omitted, the default data directories of O(cluster_name) are read (RV(candidates)) and no verdict is
        given.
    type: path
  cluster_name:
    description: Cluster name of the default data directories (C(<data_root>/<major>/<cluster_name>)).
    type: str
    default: main
  data_root:
    description: Where the versioned data directories live (Debian layout).
    type: path
    default: /var/lib/postgresql
  expected_system_identifier:
    description:
      - System identifier of the primary (C(SELECT system_identifier FROM pg_control_system())).
        A data directory with another identifier holds a different cluster.
      - When empty, any identifier is accepted.
    type: str
    default: ''
  expected_major:
    description: Major version the cluster must have (the primary's). Not checked when 0.
    type: int
    default: 0
  force:
    description: Answer C(clone) instead of C(refuse) for a directory that holds something else.
    type: bool
    default: false
  pg_lib_root:
    description: Where PostgreSQL's versioned directories are installed (Debian layout).
    type: path
    default: /usr/lib/postgresql
  route_to:
    description:
      - Host name or address of the primary. When set, RV(source_address) is the local address this host uses to
        reach it (the address the primary sees, for its C(pg_hba.conf) entry). No packet is sent.
    type: str
  route_port:
    description: Port used with O(route_to).
    type: int
    default: 5432
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Decide whether the replica's data directory may be cloned into
  muejam.dbops.pg_datadir_info:
    data_directory: /var/lib/postgresql/15/main
    expected_system_identifier: "{{ primary.query_result[0].system_identifier }}"
    expected_major: 15
  become: true
  register: datadir

- name: Refuse to wipe a directory that holds something else
  ansible.builtin.fail:
    msg: "{{ datadir.reason }}"
  when: datadir.verdict == 'refuse'

- name: Read the default data directories of every installed version (judged later on the primary's side)
  muejam.dbops.pg_datadir_info:
    cluster_name: main
    route_to: pg1
  become: true
  register: replica_side
"""

RETURN = r"""
state:
  description:
    - What the directory holds relative to the primary. One of C(absent), C(empty), C(replica) (a standby of this
      primary), C(same_cluster_not_standby), C(other_cluster), C(other_version), C(not_a_cluster).
  returned: when O(data_directory) is set
  type: str
  sample: replica
verdict:
  description: C(keep), C(clone) or C(refuse).
  returned: when O(data_directory) is set
  type: str
  sample: clone
reason:
  description: The verdict as a sentence, with what to do when it is C(refuse).
  returned: when O(data_directory) is set
  type: str
  sample: /var/lib/postgresql/15/main does not exist, the replica will be cloned from the primary
exists:
  description: Whether the directory exists.
  returned: when O(data_directory) is set
  type: bool
entries:
  description: Number of entries in the directory.
  returned: when O(data_directory) is set
  type: int
pg_version:
  description: Major version from C(PG_VERSION), or null.
  returned: when O(data_directory) is set
  type: int
  sample: 15
system_identifier:
  description: The cluster's system identifier from C(pg_controldata), or null.
  returned: when O(data_directory) is set
  type: str
  sample: "7441211716372488212"
cluster_state:
  description: C(Database cluster state) from C(pg_controldata), or null.
  returned: when O(data_directory) is set
  type: str
  sample: in archive recovery
standby_signal:
  description: Whether C(standby.signal) is present.
  returned: when O(data_directory) is set
  type: bool
running:
  description: Whether C(postmaster.pid) names a live process.
  returned: when O(data_directory) is set
  type: bool
source_address:
  description:
    - Local address used to reach O(route_to) (null when O(route_to) is not set). Fails when O(route_to) does
      not resolve or has no route from this host.
  returned: success
  type: str
  sample: 172.18.0.3
candidates:
  description:
    - The data directories read, each with the facts above plus C(path) and C(major) (the version whose default
      directory it is; null for O(data_directory)).
    - Without O(data_directory), one per major version that is installed or has a directory; a version without
      either has no entry (its directory does not exist).
  returned: success
  type: list
  elements: dict
  sample: [{path: /var/lib/postgresql/15/main, major: 15, exists: true, entries: 0, pg_version: null,
            system_identifier: null, cluster_state: null, standby_signal: false, running: false}]
installed_majors:
  description: PostgreSQL major versions installed on the host.
  returned: success
  type: list
  elements: int
  sample: [15]
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.pg_datadir import (
    candidate_datadirs,
    classify,
    controldata_reader,
    decide,
    installed_majors,
    read_datadir_facts,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "data_directory": {"type": "path"},
            "cluster_name": {"type": "str", "default": "main"},
            "data_root": {"type": "path", "default": "/var/lib/postgresql"},
            "expected_system_identifier": {"type": "str", "default": ""},
            "expected_major": {"type": "int", "default": 0},
            "force": {"type": "bool", "default": False},
            "pg_lib_root": {"type": "path", "default": "/usr/lib/postgresql"},
            "route_to": {"type": "str"},
            "route_port": {"type": "int", "default": 5432},
        },
        supports_check_mode=True,
    )
    params = module.params
    majors = installed_majors(params["pg_lib_root"])
    reader = controldata_reader(module, params["pg_lib_root"])
    if params["data_directory"]:
        paths: list[tuple[int | None, str]] = [(None, params["data_directory"].rstrip("/") or "/")]
    else:
        paths = list(candidate_datadirs(params["data_root"], params["cluster_name"], majors))
    candidates = []
    for major, path in paths:
        try:
            candidates.append(dict(read_datadir_facts(path, reader), path=path, major=major))
        except (OSError, ValueError) as exc:
            module.fail_json(msg="Could not read the data directory %s: %s" % (path, exc))
    result: dict = {"changed": False, "candidates": candidates, "installed_majors": majors, "source_address": None}
    if params["data_directory"]:
        facts = {key: value for key, value in candidates[0].items() if key not in ("path", "major")}
        state = classify(facts, params["expected_system_identifier"], params["expected_major"])
        verdict, reason = decide(state, params["force"], candidates[0]["path"])
        result.update(facts, state=state, verdict=verdict, reason=reason)
    if params["route_to"]:
        result["source_address"] = route_source(module, params["route_to"], params["route_port"])
    module.exit_json(**result)


def route_source(module: AnsibleModule, host: str, port: int) -> str:
    """The local address the kernel would use to reach host:port (a UDP connect sends nothing)."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.connect(address)
            return probe.getsockname()[0]
    except OSError as exc:
        module.fail_json(msg="%s cannot reach the primary %s:%d (%s): check the primary's address "
                             "(pg_replica_primary_host) and this host's network. Nothing was changed."
                             % (socket.gethostname(), host, port, exc))
    return ""


if __name__ == "__main__":
    main()
