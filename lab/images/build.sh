#!/usr/bin/env bash
# Build the lab image for one Debian suite from Debian packages (no registry is reachable).
# Usage: lab/images/build.sh SUITE   -> prints the image tag, e.g. dbops-lab:bookworm-1a2b3c4d
# The tag carries a hash of the recipe, so an image is rebuilt only when its recipe changes.
set -euo pipefail
suite=${1:?usage: build.sh bullseye|bookworm|trixie}
here=$(cd "$(dirname "$0")" && pwd)
case "$suite" in
  bullseye) pg=13 ;;
  bookworm) pg=15 ;;
  trixie) pg=17 ;;
  *) echo "unknown suite '$suite': use bullseye (PostgreSQL 13), bookworm (15) or trixie (17)" >&2; exit 2 ;;
esac
# The recipe is what goes into the root: packages, the setup script, the suite. Bump RECIPE_VERSION
# when a change to this script changes the image.
RECIPE_VERSION=1
hash=$( (echo "$RECIPE_VERSION"; cat "$here/packages.txt" "$here/rootfs-setup.sh") | sha256sum | cut -c1-10)
tag="dbops-lab:${suite}-${hash}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

mirror=$("$here/mirror.sh")

for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y debootstrap docker.io" >&2; exit 2; }
done

cache=${DBOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/muejam-dbops}
mkdir -p "$cache"
# One build per suite at a time: a second caller waits, then finds the image built.
exec 9>"$cache/build-${suite}.lock"
flock 9
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
tarball="$cache/rootfs-${suite}-${hash}.tar"
if [ ! -s "$tarball" ]; then
  root=$(mktemp -d "${TMPDIR:-/tmp}/dbops-root-${suite}.XXXXXX")
  # debootstrap mounts /proc and /sys inside the root: unmount before removing anything.
  trap 'for m in $(findmnt -rn -o TARGET | grep "^$root/" | sort -r); do umount -l "$m"; done; rm -rf --one-file-system "$root"' EXIT
  mapfile -t pkgs < <(grep -v '^#' "$here/packages.txt" | sed "s/{pg}/$pg/g")
  echo ">> debootstrap $suite (PostgreSQL $pg) ..." >&2
  # Stage 1: the base system. PostgreSQL comes in stage 2, after createcluster.conf says
  # not to create a 'main' cluster, so that lab hosts start without one (as a new server would
  # after our role installs PostgreSQL).
  # A mirror hiccup should not fail a CI run: try debootstrap three times.
  for attempt in 1 2 3; do
    if debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,ca-certificates \
         "$suite" "$root" "$mirror" >"$cache/debootstrap-${suite}.log" 2>&1; then
      break
    fi
    [ "$attempt" -lt 3 ] || { tail -n 30 "$cache/debootstrap-${suite}.log" >&2; exit 1; }
    echo ">> debootstrap failed (attempt $attempt), retrying ..." >&2
    for m in $(findmnt -rn -o TARGET | grep "^$root/" | sort -r); do umount -l "$m"; done
    rm -rf --one-file-system "$root" && mkdir -p "$root"
    sleep 5
  done
  cp "$here/rootfs-setup.sh" "$root/tmp/rootfs-setup.sh"
  echo ">> installing packages in the $suite root ..." >&2
  chroot "$root" /bin/bash /tmp/rootfs-setup.sh "$mirror" "$suite" "${pkgs[@]}" >>"$cache/debootstrap-${suite}.log" 2>&1 \
    || { tail -n 30 "$cache/debootstrap-${suite}.log" >&2; exit 1; }
  rm -f "$root/tmp/rootfs-setup.sh"
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  rm -f "$cache"/rootfs-"${suite}"-*.tar
  mv "$tarball.part" "$tarball"
fi
echo ">> importing $tag ..." >&2
docker import -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' \
  "$tarball" "$tag" >/dev/null
echo "$tag"
