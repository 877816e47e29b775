#!/usr/bin/env bash
# Run every Molecule scenario (or those in MOLECULE_SCENARIOS) with the docker driver and the
# locally built lab images. A scenario lists the Debian suites it runs on in molecule/<s>/suites
# (default: bookworm); DBOPS_SUITES limits them. Each run gets DBOPS_LAB_IMAGE for its suite.
set -uo pipefail
cd "$(dirname "$0")/.."
scenarios=${MOLECULE_SCENARIOS:-$(for d in molecule/*/molecule.yml; do basename "$(dirname "$d")"; done)}
failed=0; ran=0
# The S3 endpoint image (moto) for scenarios with an s3 platform; built once, suite independent.
DBOPS_S3_IMAGE=$(python lab/lab.py images --suite bookworm | sed -n 2p) || exit 1
export DBOPS_S3_IMAGE
for scenario in $scenarios; do
  suites=$(cat "molecule/$scenario/suites" 2>/dev/null || echo bookworm)
  for suite in $suites; do
    if [ -n "${DBOPS_SUITES:-}" ] && [[ " $DBOPS_SUITES " != *" $suite "* ]]; then continue; fi
    DBOPS_LAB_IMAGE=$(python lab/lab.py image --suite "$suite") || { failed=$((failed + 1)); continue; }
    export DBOPS_LAB_IMAGE DBOPS_SUITE=$suite
    echo "---- molecule test -s $scenario ($suite, $DBOPS_LAB_IMAGE) ----"
    start=$(date +%s)
    if molecule test -s "$scenario"; then result=passed; else result=FAILED; failed=$((failed + 1)); fi
    ran=$((ran + 1))
    echo "---- $scenario ($suite): $result in $(( $(date +%s) - start ))s ----"
  done
done
echo "molecule: $((ran - failed)) passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$ran" -gt 0 ]
