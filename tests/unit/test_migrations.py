"""Schema migrations: Django's output formats parsed, the plan to a target and the rollback decided (no server).

The samples are Django's formats (showmigrations, migrate, migrate --plan), which the lab's manage.py
stand-in also prints; the fake runner below replays a command's outputs, it stands in for no server."""

from __future__ import annotations

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.migrations import (
    DEFAULT_RETRY_PATTERN,
    MigrationError,
    applied_state,
    decide_rollback,
    last_error,
    parse_migrate_output,
    parse_plan,
    parse_showmigrations,
    pending,
    pgoptions,
    rollback_targets,
    run_migrate,
    run_reverse,
)

SHOW = """admin
 [X] 0001_initial
 [X] 0002_logentry_remove_auto_add
stories
 [X] 0001_initial
 [ ] 0002_story_word_count
 [ ] 0003_stories_created_idx
sessions
 (no migrations)
"""


def test_showmigrations_parsed_in_order():
    rows = parse_showmigrations(SHOW)
    assert [(r["app"], r["name"], r["applied"]) for r in rows] == [
        ("admin", "0001_initial", True), ("admin", "0002_logentry_remove_auto_add", True),
        ("stories", "0001_initial", True), ("stories", "0002_story_word_count", False),
        ("stories", "0003_stories_created_idx", False)]
    assert applied_state(rows) == {"admin": "0002_logentry_remove_auto_add", "stories": "0001_initial"}


def test_half_applied_squash_is_not_applied():
    rows = parse_showmigrations("app\n [-] 0001_squashed_0004\n")
    assert rows == [{"app": "app", "name": "0001_squashed_0004", "applied": False}]
    assert applied_state(rows) == {"app": "zero"}


def test_pending_all_and_to_a_target_prefix():
    rows = parse_showmigrations(SHOW)
    assert pending(rows) == ["stories.0002_story_word_count", "stories.0003_stories_created_idx"]
    assert pending(rows, "stories.0002") == ["stories.0002_story_word_count"]
    assert pending(rows, "stories.0001") == []


@pytest.mark.parametrize("target, words", [
    ("stories.0099", "no migration matches"),
    ("stories.000", "more than one migration matches"),
    ("blog.0001", "no app 'blog'"),
])
def test_unknown_target_refused(target, words):
    with pytest.raises(MigrationError) as err:
        pending(parse_showmigrations(SHOW), target)
    assert words in str(err.value) and "Nothing was changed" in str(err.value)


def test_target_behind_applied_refused():
    rows = parse_showmigrations("stories\n [X] 0001_initial\n [X] 0002_x\n")
    with pytest.raises(MigrationError, match="behind what is applied \\(stories.0002_x\\)"):
        pending(rows, "stories.0001")


def test_pgoptions_appends_and_checks_durations():
    assert pgoptions("5s", "30min") == "-c lock_timeout=5s -c statement_timeout=30min"
    assert pgoptions("500ms", "0", "-c search_path=app") == (
        "-c search_path=app -c lock_timeout=500ms -c statement_timeout=0")
    with pytest.raises(MigrationError, match="lock_timeout '5 s; DROP'"):
        pgoptions("5 s; DROP", "1min")


def test_migrate_output_names_the_interrupted_migration():
    out = ("Operations to perform:\n  Apply all migrations: stories\nRunning migrations:\n"
           "  Applying stories.0002_story_word_count... OK\n  Applying stories.0003_bad...")
    assert parse_migrate_output(out) == {"applied": ["stories.0002_story_word_count"], "unapplied": [],
                                         "interrupted": "stories.0003_bad"}
    back = "Running migrations:\n  Rendering model states... DONE\n  Unapplying stories.0003_x... OK\n"
    assert parse_migrate_output(back)["unapplied"] == ["stories.0003_x"]


def test_plan_marks_irreversible():
    out = ("Planned operations:\nstories.0004_drop_views\n    Raw SQL operation -> IRREVERSIBLE\n"
           "stories.0003_rename\n    Undo Rename field title on story to headline\n")
    assert parse_plan(out) == [{"migration": "stories.0004_drop_views", "irreversible": True},
                               {"migration": "stories.0003_rename", "irreversible": False}]
    assert parse_plan("Planned operations:\n  No planned migration operations.\n") == []


def test_rollback_targets_only_apps_that_moved():
    before = {"admin": "0002_x", "stories": "0001_initial", "new": "zero"}
    after = {"admin": "0002_x", "stories": "0003_y", "new": "0001_initial", "other": "0001_initial"}
    assert rollback_targets(before, after) == {"new": "zero", "other": "zero", "stories": "0001_initial"}


def test_decide_rollback():
    assert decide_rollback([], [], True)["method"] == "none"
    assert decide_rollback(["stories.0002"], [], True)["method"] == "reverse"
    assert decide_rollback(["stories.0002"], ["stories.0002"], True)["method"] == "restore"
    refused = decide_rollback(["stories.0002"], ["stories.0002"], False)
    assert refused["method"] == "refuse" and "stories.0002 cannot be reversed" in refused["reason"]


class Replay:
    """Answers each argv with the next scripted (rc, stdout, stderr) and records the calls."""

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def __call__(self, argv):
        self.calls.append(argv)
        return self.answers.pop(0)


LOCK = "django.db.utils.OperationalError: canceling statement due to lock timeout"


def test_migrate_retries_on_lock_then_names_the_migration():
    attempt = (1, "Running migrations:\n  Applying stories.0004_views_default...", LOCK)
    run = Replay([attempt, attempt, attempt])
    slept = []
    with pytest.raises(MigrationError) as err:
        run_migrate(run, ["python3", "manage.py"], "", 2, 1.5, DEFAULT_RETRY_PATTERN, slept.append)
    assert len(run.calls) == 3 and slept == [1.5, 1.5]
    assert "stories.0004_views_default failed after 3 attempt(s) on a lock" in str(err.value)
    assert err.value.details["lock_timeout"] is True and err.value.details["applied_now"] == []


def test_migrate_does_not_retry_a_broken_migration():
    run = Replay([(1, "  Applying stories.0002_a... OK\n  Applying stories.0003_bad...",
                   'django.db.utils.UndefinedColumn: column "nope" does not exist')])
    with pytest.raises(MigrationError) as err:
        run_migrate(run, ["m"], "stories.0003", 5, 0, DEFAULT_RETRY_PATTERN, lambda s: None)
    assert run.calls == [["m", "migrate", "stories", "0003"]]
    assert err.value.details["failed_migration"] == "stories.0003_bad"
    assert err.value.details["applied_now"] == ["stories.0002_a"]


def test_reverse_refuses_irreversible_and_runs_nothing():
    run = Replay([(0, "stories\n [X] 0001_initial\n [X] 0002_drop\n", ""),
                  (0, "Planned operations:\nstories.0002_drop\n    Raw SQL operation -> IRREVERSIBLE\n", "")])
    with pytest.raises(MigrationError, match="cannot reverse stories.0002_drop"):
        run_reverse(run, ["m"], {"stories": "0001_initial"})
    assert [c[1:] for c in run.calls] == [["showmigrations"], ["migrate", "stories", "0001_initial", "--plan"]]


def test_reverse_unapplies_back_to_before():
    run = Replay([(0, "stories\n [X] 0001_initial\n [X] 0002_a\n", ""),
                  (0, "Planned operations:\nstories.0002_a\n    Undo Raw SQL operation\n", ""),
                  (0, "Running migrations:\n  Unapplying stories.0002_a... OK\n", "")])
    done = run_reverse(run, ["m"], {"stories": "0001_initial"})
    assert done["unapplied"] == ["stories.0002_a"] and done["targets"] == {"stories": "0001_initial"}


def test_last_error_is_the_exception_line_with_its_detail():
    stderr = ("Traceback (most recent call last):\n  File \"manage.py\", line 22, in <module>\n    main()\n"
              "django.db.utils.ProgrammingError: column \"no_such_column\" does not exist\n"
              "LINE 1: UPDATE stories SET summary = no_such_column\n"
              "                                     ^\n")
    assert last_error("  Applying stories.0004_half_broken...", stderr) == (
        'django.db.utils.ProgrammingError: column "no_such_column" does not exist '
        "LINE 1: UPDATE stories SET summary = no_such_column")
    assert last_error("", "\nCommandError: Cannot find a migration matching '0099'\n") == (
        "CommandError: Cannot find a migration matching '0099'")
    assert last_error("only stdout\n", "") == "only stdout"
    assert last_error("", "") == "no output"
