# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every Redis module of the collection."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of one node of the cluster, the entry node.
      - The module reads the cluster's topology from it and reaches every other node at the
        address the cluster announces for it (the address shown by C(CLUSTER NODES)), so those
        addresses must be reachable from the host that runs the module.
    type: str
    default: localhost
    aliases: [host]
  login_port:
    description: Client port of the entry node.
    type: int
    default: 6379
    aliases: [port]
  login_user:
    description:
      - ACL user to authenticate as (Redis 6 or later), on every node.
      - When set, slot migrations authenticate on the target node with C(MIGRATE ... AUTH2 user password).
      - When unset, the default user is used, with O(login_password) if given.
    type: str
    aliases: [user]
  login_password:
    description:
      - Password of O(login_user), or of the default user (C(requirepass)) when O(login_user) is unset.
      - Never logged and never part of any message the module returns.
    type: str
    aliases: [password]
  tls:
    description: Connect to the nodes over TLS.
    type: bool
    default: false
  validate_certs:
    description: With O(tls=true), verify the nodes' certificates.
    type: bool
    default: true
  ca_certs:
    description: With O(tls=true), path of the CA certificates file to verify the nodes' certificates with.
    type: path
  client_cert:
    description: With O(tls=true), path of a client certificate, for nodes that require one (C(tls-auth-clients)).
    type: path
  client_key:
    description: With O(tls=true), path of the private key of O(client_cert).
    type: path
  socket_timeout:
    description:
      - Seconds to wait when connecting to a node and for a reply, before the node is reported unreachable.
    type: float
    default: 10.0
requirements:
  - redis-py (the C(redis) Python library) 3.5 or later on the host that runs the module
    (Debian package C(python3-redis)).
notes:
  - The nodes must run Redis 6 or later for O(login_user); Redis 7 is what the collection is tested with.
"""
