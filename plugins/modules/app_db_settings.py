#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_db_settings
short_description: Write an application's database settings file and its environment's database lines in one step
version_added: 0.4.0
description:
  - The application side of M(muejam.dbops.pg_replica) and the failover (role C(muejam.dbops.pg_failover)) in one
    round trip, where C(template) and C(lineinfile) took three.
  - Writes O(settings_content) (for example a rendered Django C(DATABASES) file) to O(settings_file), and sets the
    C(KEY=value) lines of O(env) in O(env_file), keeping every other line. Each file is replaced atomically and only
    when its content, mode or owner differs, so a handler restarts the application only after a real change.
extends_documentation_fragment:
  - muejam.dbops.attributes
options:
  settings_file:
    description: The settings file to write. Without it (and O(settings_content)) only O(env) is set.
    type: path
  settings_content:
    description: Its whole content; required with O(settings_file).
    type: str
  settings_mode:
    description: Mode of O(settings_file).
    type: str
    default: "0644"
  env_file:
    description: The application's environment file; created when missing. Required when O(env) is not empty.
    type: path
  env:
    description: C(KEY=value) lines to set in O(env_file) (for example C(DB_PRIMARY_HOST)).
    type: dict
    default: {}
  env_mode:
    description: Mode of O(env_file).
    type: str
    default: "0640"
  owner:
    description: Owner of both files.
    type: str
    default: root
  group:
    description: Group of both files.
    type: str
    default: root
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reports which files would change and writes nothing.
  diff_mode:
    support: full
  idempotent:
    support: full
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: Point the application at the new primary and list its replicas
  muejam.dbops.app_db_settings:
    settings_file: /etc/muejam/databases.py
    settings_content: "{{ lookup('ansible.builtin.template', 'databases.py.j2') }}"
    env_file: /etc/muejam/app.env
    env:
      DB_PRIMARY_HOST: pg2
  become: true
  notify: Restart the application
"""

RETURN = r"""
changed_files:
  description: The files that were (in check mode, would be) written or had their mode or owner changed.
  returned: always
  type: list
  elements: str
  sample: ["/etc/muejam/app.env"]
msg:
  description: What happened, in words.
  returned: always
  type: str
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.app_settings import set_env_lines, valid_env_key
from ansible_collections.muejam.dbops.plugins.module_utils.files import read_text, write_atomically


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "settings_file": {"type": "path"},
            "settings_content": {"type": "str"},
            "settings_mode": {"type": "str", "default": "0644"},
            "env_file": {"type": "path"},
            "env": {"type": "dict", "default": {}},
            "env_mode": {"type": "str", "default": "0640"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
        },
        supports_check_mode=True,
        required_together=[["settings_file", "settings_content"]],
        required_one_of=[["settings_file", "env"]],
    )
    params = module.params
    if params["env"] and not params["env_file"]:
        module.fail_json(msg="env needs env_file (the file to set %s in). Nothing was changed."
                             % ", ".join(params["env"]))
    bad = [key for key in params["env"] if not valid_env_key(key)]
    if bad:
        module.fail_json(msg="Not a variable name: %s. Nothing was changed." % ", ".join(bad))
    try:
        owner = (pwd.getpwnam(params["owner"]).pw_uid, grp.getgrnam(params["group"]).gr_gid)
        modes = {name: int(params[name], 8) for name in ("settings_mode", "env_mode")}
    except (KeyError, ValueError) as exc:
        module.fail_json(msg="Bad owner, group or mode (%s). Nothing was changed." % exc)

    # (path, text before, text wanted, mode); each file is read once.
    wanted = []
    if params["settings_file"]:
        wanted.append((params["settings_file"], read_text(params["settings_file"]), params["settings_content"],
                       modes["settings_mode"]))
    if params["env_file"] and params["env"]:
        env_before = read_text(params["env_file"])
        env = {key: str(value) for key, value in params["env"].items()}
        wanted.append((params["env_file"], env_before, set_env_lines(env_before or "", env), modes["env_mode"]))

    changed_files, diffs = [], []
    for path, before, content, mode in wanted:
        try:
            info = os.stat(path)
            same_meta = (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (mode, owner[0], owner[1])
        except FileNotFoundError:
            same_meta = False
        if before == content and same_meta:
            continue
        changed_files.append(path)
        diffs.append({"before_header": path, "after_header": path, "before": before or "", "after": content})
        if module.check_mode:
            continue
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            write_atomically(path, content, mode, owner=owner)
        except OSError as exc:
            module.fail_json(msg="Could not write %s: %s" % (path, exc), changed_files=changed_files[:-1])
    msg = ("wrote " + ", ".join(changed_files)) if changed_files else "the application's settings are up to date"
    module.exit_json(changed=bool(changed_files), changed_files=changed_files, diff=diffs, msg=msg)


if __name__ == "__main__":
    main()
