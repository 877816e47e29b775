"""Make this checkout importable as ansible_collections.muejam.dbops, as Ansible imports it."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / ".collections"
LINK = COLLECTIONS / "ansible_collections" / "muejam" / "dbops"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(Path("..", "..", ".."), target_is_directory=True)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
