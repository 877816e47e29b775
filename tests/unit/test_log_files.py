"""Log cleanup on a real file system, with a real process holding a log open (read through /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.muejam.dbops.plugins.module_utils.log_files import (
    DEFAULT_PATTERNS,
    LogCleanupError,
    clean_logs,
    cleanup_checks,
)

DAY = 86400


def write(path, age_days, text="line\n"):
    """A log file owned by nobody, as a server's logs are owned by its own user (a file owned by a user with a
    process whose descriptors cannot be read would be kept, whatever its age)."""
    path.write_text(text)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
    when = time.time() - age_days * DAY
    os.utime(path, (when, when))
    return path


@pytest.fixture()
def logs(tmp_path):
    (tmp_path / "sub").mkdir()
    files = {
        "old": write(tmp_path / "postgresql-15-main.log.1", 40),
        "old_gz": write(tmp_path / "sub" / "postgresql-15-main.log.2.gz", 45),
        "new": write(tmp_path / "postgresql-15-main.log.3.gz", 5),
        "open": write(tmp_path / "postgresql-15-main.log", 40),
        "other": write(tmp_path / "notes.txt", 90),
    }
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'a'); time.sleep(60)",
                               str(files["open"])])
    for _attempt in range(50):
        if any(os.path.realpath("/proc/%d/fd/%s" % (holder.pid, fd)) == str(files["open"])
               for fd in os.listdir("/proc/%d/fd" % holder.pid)):
            break
        time.sleep(0.1)
    yield files
    holder.kill()
    holder.wait()


def test_check_mode_lists_and_deletes_nothing(logs, tmp_path):
    result = clean_logs([str(tmp_path)], DEFAULT_PATTERNS, 30, check_mode=True)
    assert sorted(d["path"] for d in result["deleted"]) == sorted([str(logs["old"]), str(logs["old_gz"])])
    assert all(path.exists() for path in logs.values())
    assert [k["path"] for k in result["kept_open"]] == [str(logs["open"])]


def test_old_files_go_new_open_and_unmatched_ones_stay(logs, tmp_path):
    result = clean_logs([str(tmp_path), str(tmp_path / "missing")], DEFAULT_PATTERNS, 30, check_mode=False)
    assert not logs["old"].exists() and not logs["old_gz"].exists()
    assert logs["new"].exists() and logs["open"].exists() and logs["other"].exists()
    assert result["bytes_freed"] == 10 and result["missing_paths"] == [str(tmp_path / "missing")]
    [check] = cleanup_checks(result, "pg1", 30, False)
    assert check["value"] == "deleted 2 file(s), 0.0 MB"
    assert "a process has open: %s" % logs["open"] in check["reason"]
    again = clean_logs([str(tmp_path)], DEFAULT_PATTERNS, 30, check_mode=False)
    assert again["deleted"] == [] and again["changed"] is False


def test_an_age_under_a_day_is_refused(tmp_path):
    with pytest.raises(LogCleanupError, match="at least 1"):
        clean_logs([str(tmp_path)], DEFAULT_PATTERNS, 0.5, check_mode=False)


def test_a_file_named_in_keep_stays_whatever_its_age(tmp_path):
    """redis-server opens its log for each line: between two lines no process has it open, so it is kept by name."""
    current = write(tmp_path / "redis-server.log", 40)
    rotated = write(tmp_path / "redis-server.log.1", 40)
    result = clean_logs([str(tmp_path)], DEFAULT_PATTERNS, 30, check_mode=False, keep=[str(current)])
    assert current.exists() and not rotated.exists()
    assert [k["path"] for k in result["kept_named"]] == [str(current)]
    assert "named in keep: %s" % current in cleanup_checks(result, "redis1", 30, False)[0]["reason"]
