#!/usr/bin/env bash
# Run every Molecule scenario (or those in MOLECULE_SCENARIOS) with the docker driver and the
# locally built lab images. A scenario lists the Debian suites it runs on in molecule/<s>/suites
# (default: bookworm), which is what `make test` runs; MOLECULE_ALL_SUITES=1 runs every scenario on
# all three (PostgreSQL 13, 15, 17); DBOPS_SUITES limits the suites. Each run gets DBOPS_LAB_IMAGE.
#
# Scenarios run in MOLECULE_LANES parallel lanes (default 2): most of a scenario's time is spent
# waiting on containers, so two lanes use the two cores better than one. The runs of one scenario
# always share a lane (they reuse container and network names). molecule/<s>/cost (default 1)
# weighs a scenario's runs when lanes are balanced. Each run's log is printed when it ends.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# A scenario with a molecule/<s>/manual file (its reason inside) runs only when MOLECULE_SCENARIOS names it.
scenarios=${MOLECULE_SCENARIOS:-$(for d in molecule/*/molecule.yml; do
  [ -e "$(dirname "$d")/manual" ] || basename "$(dirname "$d")"; done)}
lanes=${MOLECULE_LANES:-2}
logs=$(mktemp -d "${TMPDIR:-/tmp}/dbops-molecule.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# The images, built before any lane starts (once per suite; the S3 endpoint image is suite independent).
DBOPS_S3_IMAGE=$(python lab/lab.py images --suite bookworm | sed -n 2p) || exit 1
export DBOPS_S3_IMAGE
declare -A image
for scenario in $scenarios; do
  suites=$(cat "molecule/$scenario/suites" 2>/dev/null || echo bookworm)
  [ "${MOLECULE_ALL_SUITES:-0}" = 1 ] && suites="bullseye bookworm trixie"
  for suite in $suites; do
    if [ -n "${DBOPS_SUITES:-}" ] && [[ " $DBOPS_SUITES " != *" $suite "* ]]; then continue; fi
    [ -n "${image[$suite]:-}" ] || image[$suite]=$(python lab/lab.py image --suite "$suite") || exit 1
    echo "$scenario $suite" >> "$logs/runs"
  done
done
[ -s "$logs/runs" ] || { echo "molecule: no scenario to run"; exit 1; }

# Balance scenarios over lanes, heaviest first (weight = runs x cost).
declare -a load
for ((i = 0; i < lanes; i++)); do load[i]=0; : > "$logs/lane$i"; done
while read -r weight scenario; do
  best=0
  for ((i = 1; i < lanes; i++)); do [ "${load[i]}" -lt "${load[best]}" ] && best=$i; done
  load[best]=$((load[best] + weight))
  grep "^$scenario " "$logs/runs" >> "$logs/lane$best"
done < <(cut -d' ' -f1 "$logs/runs" | sort | uniq -c | while read -r n s; do
           echo "$((n * $(cat "molecule/$s/cost" 2>/dev/null || echo 1))) $s"; done | sort -rn)

run_lane() {
  local lane=$1 scenario suite start result
  while read -r scenario suite; do
    start=$(date +%s)
    if DBOPS_LAB_IMAGE=${image[$suite]} DBOPS_SUITE=$suite molecule test -s "$scenario" \
         > "$logs/$scenario-$suite.log" 2>&1; then result=passed; else result=FAILED; fi
    echo "$scenario $suite $result $(( $(date +%s) - start ))" >> "$logs/results"
    {
      echo "---- molecule test -s $scenario ($suite, ${image[$suite]}) ----"
      cat "$logs/$scenario-$suite.log"
      echo "---- $scenario ($suite): $result in $(( $(date +%s) - start ))s ----"
    } > "$logs/$scenario-$suite.done"
    cat "$logs/$scenario-$suite.done"
  done < "$logs/lane$lane"
}

for ((i = 0; i < lanes; i++)); do run_lane "$i" & done
wait

echo "==== molecule results ===="
sort "$logs/results" | awk '{printf "%-24s %-9s %-7s %5ss\n", $1, $2, $3, $4}'
# A failed run's log scrolled past long ago: show where it failed again, short enough to stay in the tail
# a CI system keeps. The last failing task is the one that stopped the run (the tested refusals come before it).
while read -r scenario suite result _; do
  [ "$result" = FAILED ] || continue
  echo "---- where $scenario ($suite) failed ----"
  last=$(grep -n -E '^(fatal|failed): |FAILED! =>' "$logs/$scenario-$suite.log" | tail -n 1 | cut -d: -f1)
  [ -n "$last" ] || last=$(wc -l < "$logs/$scenario-$suite.log")
  sed -n "$((last > 25 ? last - 25 : 1)),$((last + 25))p" "$logs/$scenario-$suite.log" | cut -c1-300
done < <(sort "$logs/results")
passed=$(grep -c ' passed ' "$logs/results" || true)
failed=$(grep -c ' FAILED ' "$logs/results" || true)
echo "molecule: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
