"""The environment-file edit of app_db_settings (module_utils/app_settings)."""

from ansible_collections.muejam.dbops.plugins.module_utils.app_settings import set_env_lines, valid_env_key


def test_replaces_the_key_and_keeps_every_other_line():
    text = "# the app\nDB_NAME=muejam\nDB_PRIMARY_HOST=pg1\nDB_USER=app\n"
    expected = "# the app\nDB_NAME=muejam\nDB_PRIMARY_HOST=pg2\nDB_USER=app\n"
    assert set_env_lines(text, {"DB_PRIMARY_HOST": "pg2"}) == expected


def test_is_idempotent():
    once = set_env_lines("A=1\n", {"DB_PRIMARY_HOST": "pg2"})
    assert set_env_lines(once, {"DB_PRIMARY_HOST": "pg2"}) == once == "A=1\nDB_PRIMARY_HOST=pg2\n"


def test_appends_a_missing_key_and_creates_from_nothing():
    assert set_env_lines("", {"DB_PRIMARY_HOST": "pg3"}) == "DB_PRIMARY_HOST=pg3\n"
    assert set_env_lines("A=1", {"B": "2"}) == "A=1\nB=2\n"


def test_a_duplicate_key_is_dropped_so_no_later_line_overrides_it():
    assert set_env_lines("K=1\nX=0\nK=2\n", {"K": "3"}) == "K=3\nX=0\n"


def test_a_similar_key_or_a_comment_is_not_touched():
    text = "#DB_PRIMARY_HOST=old\nDB_PRIMARY_HOST_RO=pg9\n"
    assert set_env_lines(text, {"DB_PRIMARY_HOST": "pg2"}) == text + "DB_PRIMARY_HOST=pg2\n"


def test_variable_names():
    assert valid_env_key("DB_PRIMARY_HOST")
    assert not valid_env_key("DB-HOST")
    assert not valid_env_key("1A")
    assert not valid_env_key("A=B")
