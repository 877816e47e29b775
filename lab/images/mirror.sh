#!/usr/bin/env bash
# Print the Debian mirror apt on this machine is configured with (never hard-coded in the repo);
# DBOPS_DEBIAN_MIRROR overrides it. Used by build.sh (lab images) and scripts/ee.sh (the EE's base).
set -euo pipefail
mirror=${DBOPS_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$( { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } \
    | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit} /^deb / && $2 !~ /security/ {print $2; exit}')
fi
[ -n "$mirror" ] || { echo "cannot find a Debian mirror in apt's configuration; set DBOPS_DEBIAN_MIRROR" >&2; exit 2; }
echo "$mirror"
