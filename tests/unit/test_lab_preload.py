"""The lab's put_file retry (lab/callback_plugins/lab_preload.py): a failed copy is tried again, at most 3 times."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lab" / "callback_plugins"))
import lab_preload  # noqa: E402


class Container:
    def get_option(self, name):
        return "dbops-pg1"


def flaky(failures: int):
    calls = []

    def put_file(self, in_path, out_path):
        calls.append((in_path, out_path))
        if len(calls) <= failures:
            raise AnsibleConnectionFailure("engine hiccup %d" % len(calls))
        return "copied"
    return put_file, calls


def test_a_copy_that_fails_twice_is_tried_a_third_time(monkeypatch):
    monkeypatch.setattr(lab_preload.time, "sleep", lambda seconds: None)
    put_file, calls = flaky(2)
    assert lab_preload._retrying_put_file(put_file)(Container(), "/src", "/dst") == "copied"
    assert calls == [("/src", "/dst")] * 3


def test_a_third_failure_is_the_connection_failure_it_was(monkeypatch):
    monkeypatch.setattr(lab_preload.time, "sleep", lambda seconds: None)
    put_file, calls = flaky(3)
    with pytest.raises(AnsibleConnectionFailure, match="engine hiccup 3"):
        lab_preload._retrying_put_file(put_file)(Container(), "/src", "/dst")
    assert len(calls) == 3


def test_the_lab_connection_is_wrapped_once():
    from ansible_collections.community.docker.plugins.connection import docker_api
    assert docker_api.Connection.put_file.lab_retrying
