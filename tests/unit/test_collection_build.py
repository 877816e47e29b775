"""The built collection ships what users run and declares what it uses (galaxy.yml, meta/runtime.yml)."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_collection_leaves_out_what_is_not_for_users(tmp_path):
    subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", "--output-path",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (archive,) = tmp_path.glob("muejam-dbops-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    tops = {name.split("/")[0] for name in names}
    assert {"plugins", "roles", "playbooks", "meta", "docs", "README.md", "tests"} <= tops
    assert not tops & {"lab", "molecule", "scripts", "benchmarks", ".ci", ".config", "Makefile", "ansible.cfg"}
    assert not [n for n in names if n.startswith(("inventories/lab", "tests/integration"))]
    assert "plugins/module_utils/masking.py" in names and "roles/pg_backup/tasks/main.yml" in names


def test_every_collection_the_roles_use_is_a_declared_dependency():
    used = set()
    for path in list((ROOT / "roles").rglob("*.yml")) + list((ROOT / "playbooks").rglob("*.yml")):
        used.update(re.findall(r"^\s*-?\s*([a-z_]+\.[a-z_]+)\.[a-z_]+:\s*$", path.read_text(), re.M))
    used -= {"ansible.builtin", "muejam.dbops"}
    declared = set(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"])
    assert used == {"community.postgresql"} and used <= declared


def test_action_groups_hold_every_module_with_the_shared_connection_options():
    groups = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]
    for group, fragment in (("postgres", "muejam.dbops.postgres"), ("redis", "muejam.dbops.redis")):
        modules = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py")
                         if re.search(r"^\s*- %s$" % re.escape(fragment), p.read_text(), re.M))
        assert sorted(groups[group]) == modules


def test_modules_stay_thin():
    """A module is its argument spec, a call into module_utils and the exit: at most 250 lines besides its docs."""
    import ast

    sizes = {}
    for path in sorted((ROOT / "plugins" / "modules").glob("*.py")):
        text = path.read_text()
        docs = sum(node.end_lineno - node.lineno + 1 for node in ast.parse(text).body
                   if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", "") in ("DOCUMENTATION", "EXAMPLES", "RETURN") for t in node.targets))
        sizes[path.name] = len(text.splitlines()) - docs
    assert {name: n for name, n in sizes.items() if n > 250} == {}
    assert len(sizes) >= 13
