#!/usr/bin/env bash
# Create .venv with the pinned controller and test requirements; reinstall only when they change.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo ">> installing python3-venv ..." >&2
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
  else
    echo "python3's venv module is missing: install python3-venv" >&2; exit 1
  fi
fi
echo ">> creating .venv with the pinned requirements (first time: a few minutes) ..." >&2
python3 -m venv .venv
# (pip's notes about this machine's extra local indexes are noise: filtered out)
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt 2>&1 \
  | { grep -v "^WARNING: Location 'file://" || true; }
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "pip install failed" >&2; exit 1; }
echo "$want" > "$stamp"
