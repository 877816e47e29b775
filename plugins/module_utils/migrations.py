# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Schema migrations through the application's own command (Django's ``manage.py``), as plain Python.

The parsers read Django's output formats (``showmigrations``, ``migrate``, ``migrate --plan``); the
decisions (the plan to a target, what a rollback undoes and how) are pure functions of those, tested
without a server. Running the commands is :func:`run_status`, :func:`run_migrate` and :func:`run_reverse`
over a ``run(argv) -> (rc, stdout, stderr)`` callable (the module's ``run_command``).
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

Runner = Callable[[list], tuple]

_SETTING = re.compile(r"^\d+(ms|s|min|h)?$")
_APPLYING = re.compile(r"^\s*(Applying|Unapplying) (\S+?)\.\.\.(.*)$")
_SHOW_APP = re.compile(r"^(\S+)$")
_SHOW_ROW = re.compile(r"^ \[([ X-])\] (\S+)")
DEFAULT_RETRY_PATTERN = r"lock timeout|could not obtain lock|deadlock detected|LockNotAvailable"


class MigrationError(Exception):
    """A refusal or a failed command; ``details`` go into the module's result."""

    def __init__(self, msg: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.details = details or {}


def parse_showmigrations(text: str) -> list[dict[str, Any]]:
    """[{app, name, applied}] in the order Django lists them ('[-]', half of a squash, is not applied)."""
    rows: list[dict[str, Any]] = []
    app = None
    for line in text.splitlines():
        row = _SHOW_ROW.match(line)
        if row and app:
            rows.append({"app": app, "name": row.group(2), "applied": row.group(1) == "X"})
        elif _SHOW_APP.match(line):
            app = line.strip()
    return rows


def label(row: dict[str, Any]) -> str:
    return "%s.%s" % (row["app"], row["name"])


def applied_state(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{app: its last applied migration, or 'zero'}: what ``migrate <app> <target>`` takes to come back here."""
    state: dict[str, str] = {}
    for row in rows:
        state.setdefault(row["app"], "zero")
        if row["applied"]:
            state[row["app"]] = row["name"]
    return state


def pending(rows: list[dict[str, Any]], target: str = "") -> list[str]:
    """The migrations ``migrate`` (or ``migrate <app> <name>``) would apply, in order.

    ``target`` is '' (everything) or '<app>.<name prefix>'; a target that is unknown, ambiguous or already
    behind what is applied raises MigrationError (reversing is the rollback's job, not a migration's)."""
    if not target:
        return [label(r) for r in rows if not r["applied"]]
    app, dummy, prefix = target.partition(".")
    names = [r for r in rows if r["app"] == app]
    if not names:
        known = sorted({r["app"] for r in rows})
        raise MigrationError("unknown migration target %s: the application has no app %r (apps: %s). Nothing was "
                             "changed." % (target, app, ", ".join(known) or "none"))
    matches = [r for r in names if prefix and r["name"].startswith(prefix)]
    if len(matches) != 1:
        raise MigrationError("unknown migration target %s: %s (%s has %s). Nothing was changed." % (
            target, "no migration matches" if not matches else "more than one migration matches", app,
            ", ".join(r["name"] for r in names)))
    position = names.index(matches[0])
    later_applied = [label(r) for r in names[position + 1:] if r["applied"]]
    if later_applied:
        raise MigrationError("migration target %s is behind what is applied (%s): this role applies migrations; "
                             "to reverse them run the application's migrate command to that target. Nothing was "
                             "changed." % (target, ", ".join(later_applied)))
    return [label(r) for r in names[:position + 1] if not r["applied"]]


def pgoptions(lock_timeout: str, statement_timeout: str, existing: str = "") -> str:
    """PGOPTIONS for the migration's session: libpq reads it, so it reaches Django's connection unchanged."""
    for name, value in (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout)):
        if not _SETTING.match(value):
            raise MigrationError("%s %r is not a duration such as 5s, 500ms or 30min. Nothing was changed."
                                 % (name, value))
    options = "-c lock_timeout=%s -c statement_timeout=%s" % (lock_timeout, statement_timeout)
    return ("%s %s" % (existing, options)).strip()


def parse_migrate_output(stdout: str) -> dict[str, Any]:
    """What a ``migrate`` run did: migrations applied and unapplied (each ending in OK) and the one it was
    running when it stopped (a line without OK), if any."""
    done: dict[str, list[str]] = {"Applying": [], "Unapplying": []}
    interrupted = None
    for line in stdout.splitlines():
        step = _APPLYING.match(line)
        if not step:
            continue
        if step.group(3).strip().startswith("OK"):
            done[step.group(1)].append(step.group(2))
        else:
            interrupted = step.group(2)
    return {"applied": done["Applying"], "unapplied": done["Unapplying"], "interrupted": interrupted}


def parse_plan(stdout: str) -> list[dict[str, Any]]:
    """``migrate ... --plan``: [{migration, irreversible}]; Django marks an operation it cannot undo
    '-> IRREVERSIBLE'."""
    plan: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if line.startswith("Planned operations") or not line.strip():
            continue
        if not line.startswith(" ") and "." in line:
            plan.append({"migration": line.strip(), "irreversible": False})
        elif plan and "IRREVERSIBLE" in line:
            plan[-1]["irreversible"] = True
    return plan


ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception)\w*: ")


def last_error(stdout: str, stderr: str) -> str:
    """Why a command failed: the last exception line (Django's ``django.db.utils.ProgrammingError: ...`` or
    ``CommandError: ...``) with the lines after it (PostgreSQL's LINE/DETAIL/HINT, the caret line left out),
    else the last non-empty line of stderr, else of stdout."""
    for text in (stderr, stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "^"]
        starts = [i for i, line in enumerate(lines) if ERROR_LINE.match(line)]
        if starts:
            return " ".join(lines[starts[-1]:starts[-1] + 4])[:500]
        if lines:
            return lines[-1][:500]
    return "no output"


def rollback_targets(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    """{app: target} that puts every app whose state moved back where it was before the run."""
    return {app: before.get(app, "zero") for app in sorted(after) if after[app] != before.get(app, "zero")}


def decide_rollback(applied_now: list[str], irreversible: list[str], restore_allowed: bool) -> dict[str, str]:
    """How to undo a run: nothing, the application's reverse migrations, or the pre-migration backup.

    Reverse migrations keep every row written since the backup, so they win whenever all the applied ones
    can be reversed; one irreversible migration (a dropped column, raw SQL without a reverse) means the backup."""
    if not applied_now:
        return {"method": "none", "reason": "no migration of this run was applied: the schema is as it was"}
    if not irreversible:
        return {"method": "reverse",
                "reason": "every migration this run applied (%s) has a reverse" % ", ".join(applied_now)}
    if restore_allowed:
        return {"method": "restore",
                "reason": "%s cannot be reversed: the pre-migration backup is restored" % ", ".join(irreversible)}
    return {"method": "refuse", "reason": "%s cannot be reversed and restoring the backup is turned off: the "
                                          "schema is left as the migration left it" % ", ".join(irreversible)}


def run_status(run: Runner, command: list[str], target: str = "", with_sql: bool = False) -> dict[str, Any]:
    rc, out, err = run(command + ["showmigrations"])
    if rc != 0:
        raise MigrationError("showmigrations failed (rc %d): %s. Check the command, its directory and the "
                             "application's database settings. Nothing was changed." % (rc, last_error(out, err)))
    rows = parse_showmigrations(out)
    if not rows:
        raise MigrationError("showmigrations listed no migration: is %s the application's manage command? "
                             "Nothing was changed." % " ".join(command))
    plan = pending(rows, target)
    sql: dict[str, str] = {}
    for name in plan if with_sql else []:
        app, dummy, migration = name.partition(".")
        rc, out, err = run(command + ["sqlmigrate", app, migration])
        sql[name] = out if rc == 0 else ""
    return {"migrations": rows, "applied": [label(r) for r in rows if r["applied"]], "pending": plan,
            "state": applied_state(rows), "sql": sql}


def run_migrate(run: Runner, command: list[str], target: str, retries: int, retry_delay: float,
                retry_pattern: str, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """``migrate`` (to ``target``), retried while it fails on a lock (each attempt waited at most lock_timeout:
    an atomic migration that timed out left nothing behind). MigrationError names the failing migration."""
    argv = command + ["migrate"] + (list(target.split(".", 1)) if target else [])
    applied: list[str] = []
    attempts = 0
    retryable = re.compile(retry_pattern, re.IGNORECASE)
    while True:
        attempts += 1
        rc, out, err = run(argv)
        outcome = parse_migrate_output(out)
        applied += outcome["applied"]
        if rc == 0:
            return {"applied_now": applied, "attempts": attempts, "output": out}
        reason = last_error(out, err)
        lock = bool(retryable.search(err) or retryable.search(out))
        if not lock or attempts > retries:
            failed = outcome["interrupted"] or "(before the first migration)"
            raise MigrationError("migration %s failed after %d attempt(s)%s: %s" % (
                failed, attempts, " on a lock (lock_timeout)" if lock else "", reason),
                {"applied_now": applied, "attempts": attempts, "failed_migration": outcome["interrupted"],
                 "lock_timeout": lock, "output": out[-4000:], "error": reason})
        sleep(retry_delay)


def run_reverse_plan(run: Runner, command: list[str], before: dict[str, str]) -> dict[str, Any]:
    """The reverse migrations back to ``before``: targets, and the ones Django says it cannot undo."""
    current = run_status(run, command)["state"]
    targets = rollback_targets(before, current)
    to_unapply: list[str] = []
    irreversible: list[str] = []
    for app, target in targets.items():
        rc, out, err = run(command + ["migrate", app, target, "--plan"])
        if rc != 0:
            raise MigrationError("migrate %s %s --plan failed: %s" % (app, target, last_error(out, err)))
        for step in parse_plan(out):
            to_unapply.append(step["migration"])
            if step["irreversible"]:
                irreversible.append(step["migration"])
    return {"targets": targets, "to_unapply": to_unapply, "irreversible": irreversible}


def run_reverse(run: Runner, command: list[str], before: dict[str, str]) -> dict[str, Any]:
    plan = run_reverse_plan(run, command, before)
    if plan["irreversible"]:
        raise MigrationError("cannot reverse %s: Django marks it irreversible. Nothing was reversed."
                             % ", ".join(plan["irreversible"]), plan)
    unapplied: list[str] = []
    for app, target in plan["targets"].items():
        rc, out, err = run(command + ["migrate", app, target])
        unapplied += parse_migrate_output(out)["unapplied"]
        if rc != 0:
            raise MigrationError("reversing %s to %s failed: %s" % (app, target, last_error(out, err)),
                                 dict(plan, unapplied=unapplied))
    return dict(plan, unapplied=unapplied)
