#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection at .../ansible_collections/muejam/dbops.
# A dedicated virtualenv (.cache/sanity-venv) holds the same ansible-core as the controller;
# ansible-test installs the tool versions it pins for each sanity test (--requirements).
set -euo pipefail
cd "$(dirname "$0")/.."
core=$(grep -E '^ansible-core==' requirements.txt)
venv=$PWD/.cache/sanity-venv
if [ "$(cat "$venv/.core" 2>/dev/null)" != "$core" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$core"
  echo "$core" > "$venv/.core"
fi
# ansible-test bootstraps pip into each tool venv with a script it downloads (unreachable here):
# give it the stand-in for the pip version this ansible-test asks for.
pip_version=$("$venv/bin/python" -c 'import re, ansible_test._internal.python_requirements as r, inspect
print(re.search(r"pip=.([0-9.]+)", inspect.getsource(r.get_venv_packages)).group(1))')
mkdir -p ~/.ansible/test/cache
cp scripts/get-pip-standin.py ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py
work=$(mktemp -d "${TMPDIR:-/tmp}/dbops-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/muejam/dbops
mkdir -p "$dest"
# Tracked and new files of the work tree; a tracked file deleted in the work tree is left out.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
done | xargs -0 -I{} cp --parents -P {} "$dest"/
cd "$dest"
PATH=$venv/bin:$PATH ansible-test sanity --requirements --python 3.11 --color no "$@"
