#!/usr/bin/env bash
# The execution environment (execution-environment.yml), built and used without a registry.
#   scripts/ee.sh create   the build context in build/ee (ansible-builder create; part of `make test`)
#   scripts/ee.sh build    the base image (debootstrap trixie + python3, docker import), then the EE image
#   scripts/ee.sh run      a playbook inside the EE image against the running lab (`make lab-up`), through
#                          ansible-runner with docker as its container runtime, as AWX runs a job
# Environment: EE_PLAYBOOK (default playbooks/replication_status.yml), EE_TAG (default muejam-dbops-ee:0.1.0),
# DBOPS_LAB_PREFIX (the lab's container prefix, default dbops).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin
export PATH=$BIN:$PATH
tag=${EE_TAG:-muejam-dbops-ee:0.1.0}
base=localhost/muejam-dbops-ee-base:trixie

collection_tarball() {
  # The collection as Galaxy would ship it (galaxy.yml's build_ignore applies), under a fixed name.
  rm -rf build/ee-src && mkdir -p build/ee-src
  ansible-galaxy collection build --force --output-path build/ee-src . >/dev/null
  mv build/ee-src/muejam-dbops-*.tar.gz build/ee-src/muejam-dbops.tar.gz
}

create() {
  collection_tarball
  ansible-builder create -f execution-environment.yml -c build/ee --output-filename Dockerfile -v 1 >/dev/null
  # What the build will install, as ansible-builder resolved it: checked here so a broken file fails now.
  for f in build/ee/Dockerfile build/ee/_build/scripts/assemble build/ee/_build/collections/muejam-dbops.tar.gz; do
    [ -s "$f" ] || { echo "ansible-builder create: $f is missing" >&2; exit 1; }
  done
  grep -q '^ARG EE_BASE_IMAGE="localhost/muejam-dbops-ee-base:trixie"' build/ee/Dockerfile \
    || { echo "ansible-builder create: unexpected base image in build/ee/Dockerfile" >&2; exit 1; }
  echo "build context: build/ee (Dockerfile, _build/)"
}

remove_base_root() {
  # debootstrap mounts /proc and /sys inside the root: unmount before removing anything.
  local mount
  for mount in $(findmnt -rn -o TARGET | grep "^$base_root/" | sort -r); do umount -l "$mount"; done
  rm -rf --one-file-system "$base_root"
}

build_base() {
  if docker image inspect "$base" >/dev/null 2>&1; then return; fi
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 2; }
  local mirror
  mirror=$(lab/images/mirror.sh)
  base_root=$(mktemp -d "${TMPDIR:-/tmp}/dbops-ee-base.XXXXXX")
  trap remove_base_root EXIT
  echo ">> debootstrap trixie (python3, pip) for $base ..." >&2
  debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates trixie "$base_root" "$mirror" \
    > build/ee-base-debootstrap.log 2>&1 || { tail -n 30 build/ee-base-debootstrap.log >&2; exit 1; }
  # The site's own CAs (this machine's /usr/local/share/ca-certificates: an intercepting proxy's, a corporate
  # one), so that pip and apt inside the build trust what this machine trusts.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$base_root/usr/local/share/ca-certificates/"
    chroot "$base_root" update-ca-certificates >/dev/null 2>&1
  fi
  tar -C "$base_root" --numeric-owner -c . | docker import -c 'CMD ["/bin/bash"]' - "$base" >/dev/null
}

build() {
  mkdir -p build
  build_base
  create
  echo ">> docker build $tag (log: build/ee-build.log) ..." >&2
  # --network host: the build's apt-get and pip reach the same mirror and index as this machine.
  docker build --network host -t "$tag" -f build/ee/Dockerfile build/ee > build/ee-build.log 2>&1 \
    || { tail -n 40 build/ee-build.log >&2; exit 1; }
  docker run --rm "$tag" ansible-galaxy collection list muejam.dbops
}

run() {
  python scripts/ee_run.py --image "$tag" --playbook "${EE_PLAYBOOK:-playbooks/replication_status.yml}" \
    --prefix "${DBOPS_LAB_PREFIX:-dbops}"
}

case "${1:-}" in
  create) create ;;
  build) build ;;
  run) run ;;
  *) echo "usage: scripts/ee.sh create|build|run" >&2; exit 2 ;;
esac
