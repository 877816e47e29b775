#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_migrations
short_description: List, apply and reverse an application's schema migrations through its own manage command
version_added: 0.6.0
description:
  - Runs the application's migration command (Django's C(manage.py); O(command)) on the application host and
    reads Django's output formats, so it works with a real Django project as with the lab's stand-in.
  - O(action=status) runs C(showmigrations) (and C(sqlmigrate) for each pending migration with O(sql)); it only
    reads, in check mode too. An unknown O(target) fails here, before anything is changed.
  - O(action=migrate) runs C(migrate) (to O(target)) with C(lock_timeout) and C(statement_timeout) set for its
    session through C(PGOPTIONS), which libpq (and so Django) reads, and retries while it fails on a lock.
  - O(action=reverse_plan) reads what reversing to O(before) would undo (C(migrate <app> <target> --plan)) and
    which of those Django marks irreversible; O(action=reverse) does it, and refuses, reversing nothing, when one
    of them is irreversible.
extends_documentation_fragment:
  - muejam.dbops.attributes
options:
  action:
    description: What to do.
    type: str
    choices: [status, migrate, reverse_plan, reverse]
    default: status
  command:
    description: The manage command as an argument list, run in O(chdir), for example
      C([/srv/app/venv/bin/python, manage.py]).
    type: list
    elements: str
    default: [python3, manage.py]
  chdir:
    description: Directory to run O(command) in (the release of the application whose migrations are meant).
    type: path
    required: true
  environment:
    description: Extra environment for the command (for example C(DJANGO_SETTINGS_MODULE)).
    type: dict
    default: {}
  target:
    description:
      - With O(action=status) or O(action=migrate), C(<app>.<migration>) (a prefix of its name is enough, as
        for Django) to migrate up to; empty means every pending migration. A target behind what is applied is
        refused.
    type: str
    default: ""
  sql:
    description: With O(action=status), return the SQL of each pending migration (C(sqlmigrate)) in RV(sql).
    type: bool
    default: false
  before:
    description: With O(action=reverse_plan) or O(action=reverse), the state to return to, as RV(state) of an earlier
      O(action=status) gave it (C({app -> last applied migration or zero})).
    type: dict
    default: {}
  restore_allowed:
    description: With O(action=reverse_plan), whether a pre-migration backup may be restored when a migration
      cannot be reversed; it decides RV(rollback.method).
    type: bool
    default: false
  lock_timeout:
    description: C(lock_timeout) of the migration's session; a DDL waiting longer for its lock fails instead of
      queueing every writer behind it.
    type: str
    default: 5s
  statement_timeout:
    description: C(statement_timeout) of the migration's session.
    type: str
    default: 30min
  retries:
    description: With O(action=migrate), how many more times to run C(migrate) after it failed on a lock.
    type: int
    default: 2
  retry_delay:
    description: Seconds between those attempts.
    type: float
    default: 5
  retry_pattern:
    description: Regular expression of the command's output that marks a lock failure worth retrying.
    type: str
    default: lock timeout|could not obtain lock|deadlock detected|LockNotAvailable
attributes:
  check_mode:
    support: full
    details:
      - O(action=status) and O(action=reverse_plan) run in check mode too. O(action=migrate) and
        O(action=reverse) report what they would apply or unapply and run nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - O(action=migrate) with nothing pending runs C(migrate) once and reports C(changed=false).
author:
  - muejam.dbops developers (@muejam)
"""

EXAMPLES = r"""
- name: List the pending migrations of the new release
  muejam.dbops.app_migrations:
    chdir: /srv/muejam/releases/2.4.0
    command: [/srv/muejam/venv/bin/python, manage.py]
    sql: true
  register: migrations

- name: Apply them, never waiting more than 5 s for a lock
  muejam.dbops.app_migrations:
    action: migrate
    chdir: /srv/muejam/releases/2.4.0
    command: [/srv/muejam/venv/bin/python, manage.py]
    lock_timeout: 5s

- name: Put the schema back where it was
  muejam.dbops.app_migrations:
    action: reverse
    chdir: /srv/muejam/releases/2.4.0
    before: "{{ migrations.state }}"
"""

RETURN = r"""
migrations:
  description: With O(action=status), every migration C(showmigrations) lists.
  returned: success and action is status
  type: list
  elements: dict
  contains:
    app:
      description: The app.
      type: str
    name:
      description: The migration.
      type: str
    applied:
      description: Whether it is applied.
      type: bool
applied:
  description: With O(action=status), the applied migrations as C(app.name).
  returned: success and action is status
  type: list
  elements: str
pending:
  description: With O(action=status) or O(action=migrate), the migrations C(migrate) (to O(target)) would apply.
  returned: success and action is status or migrate
  type: list
  elements: str
  sample: [stories.0002_story_word_count]
state:
  description: With O(action=status), C({app -> last applied migration or zero}), the O(before) of a later reverse.
  returned: success and action is status
  type: dict
sql:
  description: With O(sql), the SQL of each pending migration.
  returned: success and action is status
  type: dict
applied_now:
  description: With O(action=migrate), the migrations this run applied (also when it failed).
  returned: action is migrate
  type: list
  elements: str
attempts:
  description: With O(action=migrate), how many times C(migrate) ran.
  returned: action is migrate
  type: int
failed_migration:
  description: The migration C(migrate) was applying when it failed.
  returned: failure of action migrate
  type: str
lock_timeout:
  description: Whether the failure was a lock the migration did not get within O(lock_timeout).
  returned: failure of action migrate
  type: bool
error:
  description: The line of the command's output that says why it failed.
  returned: failure of action migrate
  type: str
targets:
  description: With O(action=reverse_plan) or O(action=reverse), C({app -> target}) of the reverse migrations.
  returned: action is reverse_plan or reverse
  type: dict
to_unapply:
  description: The migrations reversing would undo, newest first.
  returned: action is reverse_plan or reverse
  type: list
  elements: str
irreversible:
  description: Those of RV(to_unapply) Django marks irreversible.
  returned: action is reverse_plan or reverse
  type: list
  elements: str
rollback:
  description: With O(action=reverse_plan), how to undo the run, with the reason.
  returned: action is reverse_plan
  type: dict
  contains:
    method:
      description: C(none) (nothing to undo), C(reverse) (every migration has a reverse), C(restore) (one
        cannot be reversed, restore the backup) or C(refuse) (one cannot be reversed and no restore is allowed).
      type: str
    reason:
      description: Why, in words.
      type: str
unapplied:
  description: With O(action=reverse), the migrations it undid.
  returned: action is reverse
  type: list
  elements: str
output:
  description: The output of C(migrate) (its last 4000 characters on a failure).
  returned: action is migrate
  type: str
msg:
  description: What happened, in words.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.muejam.dbops.plugins.module_utils.migrations import (
    DEFAULT_RETRY_PATTERN,
    MigrationError,
    decide_rollback,
    pgoptions,
    run_migrate,
    run_reverse,
    run_reverse_plan,
    run_status,
)


def act(module: AnsibleModule, run) -> dict:
    params = module.params
    action, command = params["action"], params["command"]
    if action == "status":
        status = run_status(run, command, params["target"], params["sql"])
        return dict(status, changed=False, msg="%d applied, %d pending%s" % (
            len(status["applied"]), len(status["pending"]),
            (": " + ", ".join(status["pending"])) if status["pending"] else ""))
    if action in ("reverse_plan", "reverse") and (module.check_mode or action == "reverse_plan"):
        plan = run_reverse_plan(run, command, params["before"])
        plan["rollback"] = decide_rollback(plan["to_unapply"], plan["irreversible"], params["restore_allowed"])
        return dict(plan, changed=bool(plan["to_unapply"]) and action == "reverse", msg="reversing would undo %s%s" % (
            ", ".join(plan["to_unapply"]) or "nothing",
            "; irreversible: " + ", ".join(plan["irreversible"]) if plan["irreversible"] else ""))
    if action == "reverse":
        done = run_reverse(run, command, params["before"])
        return dict(done, changed=bool(done["unapplied"]), msg="unapplied %s" % (", ".join(done["unapplied"])
                                                                                 or "nothing"))
    plan = run_status(run, command, params["target"])["pending"]
    if module.check_mode or not plan:
        return {"changed": bool(plan), "pending": plan, "applied_now": [], "attempts": 0, "output": "",
                "msg": ("would apply " + ", ".join(plan)) if plan else "no migration to apply"}
    done = run_migrate(run, command, params["target"], params["retries"], params["retry_delay"],
                       params["retry_pattern"])
    return dict(done, changed=bool(done["applied_now"]), pending=plan,
                msg="applied %s in %d attempt(s)" % (", ".join(done["applied_now"]) or "nothing", done["attempts"]))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "choices": ["status", "migrate", "reverse_plan", "reverse"], "default": "status"},
            "command": {"type": "list", "elements": "str", "default": ["python3", "manage.py"]},
            "chdir": {"type": "path", "required": True},
            "environment": {"type": "dict", "default": {}},
            "target": {"type": "str", "default": ""},
            "sql": {"type": "bool", "default": False},
            "before": {"type": "dict", "default": {}},
            "restore_allowed": {"type": "bool", "default": False},
            "lock_timeout": {"type": "str", "default": "5s"},
            "statement_timeout": {"type": "str", "default": "30min"},
            "retries": {"type": "int", "default": 2},
            "retry_delay": {"type": "float", "default": 5},
            "retry_pattern": {"type": "str", "default": DEFAULT_RETRY_PATTERN},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isdir(params["chdir"]):
        module.fail_json(msg="chdir %s is not a directory on this host: name the application's release directory. "
                             "Nothing was changed." % params["chdir"])
    try:
        env = {str(k): str(v) for k, v in params["environment"].items()}
        env["PGOPTIONS"] = pgoptions(params["lock_timeout"], params["statement_timeout"],
                                     env.get("PGOPTIONS", os.environ.get("PGOPTIONS", "")))

        def run(argv):
            return module.run_command(argv, cwd=params["chdir"], environ_update=env)

        result = act(module, run)
    except MigrationError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
