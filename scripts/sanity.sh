#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection at .../ansible_collections/muejam/dbops,
# with ansible-test's own pinned tool versions in its venvs (cached under ~/.ansible/test).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/dbops-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/muejam/dbops
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents -P {} "$dest"/
cd "$dest"
ansible-test sanity --venv --python 3.11 --color no "$@"
