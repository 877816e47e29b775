#!/usr/bin/env bash
# The monitoring configuration that roles/monitoring ships, checked by the tools that will read it:
# the alert rules rendered with the role's defaults (`promtool check rules`), their unit tests
# (`promtool test rules tests/monitoring/*.test.yml`: each alert fires when it should and stays quiet
# when it should not) and the Alertmanager configuration (`amtool check-config`).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in promtool amtool; do
  command -v "$tool" >/dev/null || { echo "$tool not found: install Debian's prometheus and prometheus-alertmanager" >&2; exit 1; }
done
out=$(mktemp -d "${TMPDIR:-/tmp}/dbops-rules.XXXXXX")
trap 'rm -rf "$out"' EXIT
ansible-playbook -i localhost, tests/monitoring/render.yml -e out="$out" >"$out/render.log" || { cat "$out/render.log"; exit 1; }
cp tests/monitoring/*.test.yml "$out"/
promtool check rules "$out/dbops-alerts.rules.yml"
(cd "$out" && promtool test rules ./*.test.yml)
amtool check-config "$out/alertmanager.yml"
