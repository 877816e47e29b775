"""app_db_settings run as Ansible runs it, on files of this machine: writes, idempotence, check mode, bad input."""

from __future__ import annotations

import grp
import os
import pwd

from dbops_it import run_module

ME = {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def settings(tmp_path, **args):
    return run_module("app_db_settings", {"settings_file": str(tmp_path / "databases.py"),
                                          "settings_content": "DATABASES = {}\n", **ME, **args})


def test_writes_both_files_once_keeping_other_env_lines(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("DB_NAME=muejam\nDB_PRIMARY_HOST=pg1\n")
    first = settings(tmp_path, env_file=str(env_file), env={"DB_PRIMARY_HOST": "pg2"})
    assert first.result["changed"] is True, first.result
    assert sorted(first.result["changed_files"]) == sorted([str(tmp_path / "databases.py"), str(env_file)])
    assert env_file.read_text() == "DB_NAME=muejam\nDB_PRIMARY_HOST=pg2\n"
    assert (tmp_path / "databases.py").read_text() == "DATABASES = {}\n"
    assert oct(os.stat(env_file).st_mode & 0o777) == "0o640"
    assert oct(os.stat(tmp_path / "databases.py").st_mode & 0o777) == "0o644"

    again = settings(tmp_path, env_file=str(env_file), env={"DB_PRIMARY_HOST": "pg2"})
    assert again.result["changed"] is False, again.result
    assert again.result["changed_files"] == []


def test_a_mode_change_alone_is_a_change(tmp_path):
    settings(tmp_path)
    os.chmod(tmp_path / "databases.py", 0o600)
    run = settings(tmp_path)
    assert run.result["changed_files"] == [str(tmp_path / "databases.py")]
    assert oct(os.stat(tmp_path / "databases.py").st_mode & 0o777) == "0o644"


def test_check_mode_predicts_with_a_diff_and_writes_nothing(tmp_path):
    run = settings(tmp_path, env_file=str(tmp_path / "app.env"), env={"DB_PRIMARY_HOST": "pg2"},
                   _ansible_check_mode=True)
    assert run.result["changed"] is True, run.result
    assert {d["after_header"] for d in run.result["diff"]} == {str(tmp_path / "databases.py"),
                                                               str(tmp_path / "app.env")}
    assert list(tmp_path.iterdir()) == []


def test_bad_input_is_refused_and_nothing_is_written(tmp_path):
    cases = [
        ({"env": {"DB_PRIMARY_HOST": "pg2"}}, "env needs env_file"),
        ({"env_file": str(tmp_path / "app.env"), "env": {"DB-HOST": "pg2"}}, "Not a variable name: DB-HOST"),
        ({"owner": "no-such-user-dbops"}, "Bad owner, group or mode"),
        ({"settings_mode": "rw-r--r--"}, "Bad owner, group or mode"),
    ]
    for args, message in cases:
        run = settings(tmp_path, **args)
        assert run.failed, (args, run.result)
        assert message in run.result["msg"], run.result
        assert "Nothing was changed" in run.result["msg"]
        assert list(tmp_path.iterdir()) == [], args
