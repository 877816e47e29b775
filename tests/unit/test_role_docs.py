"""Every role has a README whose variables section is the one scripts/role-docs.py makes from argument_specs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_role_has_a_readme():
    assert [p.name for p in (ROOT / "roles").iterdir() if not (p / "README.md").exists()] == []


def test_role_readmes_list_the_variables_of_their_argument_specs():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "role-docs.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
