# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every PostgreSQL module of the collection."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or address of the PostgreSQL server.
      - When empty, the module connects through the Unix socket in O(login_unix_socket), which is the
        right choice when the task runs on the database host itself (usually with C(become_user=postgres)
        so that peer authentication applies).
    type: str
    default: ''
    aliases: [host]
  login_port:
    description: Port of the PostgreSQL server (also selects the Unix socket file).
    type: int
    default: 5432
    aliases: [port]
  login_user:
    description: The role to connect as.
    type: str
    default: postgres
    aliases: [user]
  login_password:
    description:
      - Password of O(login_user). Never logged and never part of any message the module returns.
      - When empty, libpq's own mechanisms apply (peer authentication, C(~/.pgpass), E(PGPASSWORD)).
    type: str
    default: ''
    aliases: [password]
  login_db:
    description: Database to connect to.
    type: str
    default: postgres
    aliases: [db, database]
  login_unix_socket:
    description: Directory of the Unix socket, used when O(login_host) is empty.
    type: str
    default: /var/run/postgresql
  ssl_mode:
    description: libpq C(sslmode) for the connection.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: Path of a CA certificate file used with O(ssl_mode=verify-ca) or O(ssl_mode=verify-full).
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description: Seconds to wait for the connection before failing with a message that the server is unreachable.
    type: int
    default: 10
requirements:
  - psycopg2 >= 2.8 on the host that runs the module (Debian package C(python3-psycopg2)).
"""
