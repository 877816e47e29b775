"""execution-environment.yml and bindep.txt: the EE installs what the tests ran (same pins) and what the roles need."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from bindep.depends import Depends

ROOT = Path(__file__).resolve().parents[2]
EE = yaml.safe_load((ROOT / "execution-environment.yml").read_text())


def pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.M))


def test_the_ee_pins_ansible_core_runner_and_ansible_as_the_requirements_do():
    wanted = {**pins(ROOT / "requirements.txt"), **pins(ROOT / "requirements-test.txt")}
    deps = EE["dependencies"]
    assert EE["version"] == 3
    assert deps["ansible_core"]["package_pip"] == "ansible-core==" + wanted["ansible-core"]
    assert deps["ansible_runner"]["package_pip"] == "ansible-runner==" + wanted["ansible-runner"]
    assert deps["python"] == ["ansible==" + wanted["ansible"]]
    # The collection's own requirements.txt (what ansible-builder introspects) pins the modules' libraries.
    assert {"psycopg2-binary", "redis", "boto3", "zstandard"} <= set(pins(ROOT / "requirements.txt"))


def test_bindep_lists_the_client_tools_for_debian_and_parses():
    deps = Depends((ROOT / "bindep.txt").read_text())
    names = {rule[0] for rule in deps._rules}
    assert {"postgresql-client", "zstd", "redis-tools"} <= names
    # On a Debian platform (the EE's base), every rule applies.
    active = deps.active_rules(["platform:dpkg", "platform:debian"])
    assert {rule[0] for rule in active} == names


def test_the_collection_tarball_and_galaxy_options_work_offline():
    (collection,) = EE["dependencies"]["galaxy"]["collections"]
    assert collection["type"] == "file" and collection["name"].endswith("muejam-dbops.tar.gz")
    assert "--offline" in EE["build_arg_defaults"]["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"]
    assert EE["options"]["package_manager_path"] == "/usr/bin/apt-get"
