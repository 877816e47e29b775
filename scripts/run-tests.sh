#!/usr/bin/env bash
# Every test of the collection, stage by stage, with a timing line per stage and a summary.
#   scripts/run-tests.sh                 all stages
#   scripts/run-tests.sh unit lint ...   chosen stages (unit integration lint ee sanity rules molecule)
# Environment: MOLECULE_SCENARIOS="a b" limits Molecule; DBOPS_SUITES="bookworm" limits the suites.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN=$PWD/.venv/bin
export PATH=$BIN:$PATH ANSIBLE_CONFIG=$PWD/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$PWD/.collections
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1 NO_COLOR=1
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(unit integration lint ee sanity rules molecule)
passed=0; failed=0; report=()

stage_unit() { python -m pytest -q tests/unit; }
stage_integration() { python -m pytest -q tests/integration; }
stage_lint() {
  ruff check . && ansible-lint --profile production --strict -q
}
# The execution environment's build context (ansible-builder create); building the image is scripts/ee.sh build.
stage_ee() { scripts/ee.sh create; }
stage_sanity() { scripts/sanity.sh; }
stage_rules() { scripts/promtool-tests.sh; }
stage_molecule() { scripts/molecule.sh; }

for stage in "${stages[@]}"; do
  echo "==================== $stage ===================="
  start=$(date +%s)
  if "stage_$stage"; then status=passed; passed=$((passed + 1)); else status=FAILED; failed=$((failed + 1)); fi
  report+=("$(printf '%-12s %-7s %5ss' "$stage" "$status" "$(( $(date +%s) - start ))")")
done
echo "==================== summary ===================="
printf '%s\n' "${report[@]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
