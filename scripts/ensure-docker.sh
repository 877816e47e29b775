#!/usr/bin/env bash
# Make sure a Docker engine answers: use a running one; on Debian as root install docker.io
# (and debootstrap, which builds the lab images) and start dockerd; otherwise say what to do.
set -euo pipefail

engine_up() { docker info >/dev/null 2>&1; }

# Every lab container runs systemd, which takes several inotify instances: with the kernel's
# default of 128 per user, containers past the twentieth or so die at boot (exit 255).
if [ "$(id -u)" = 0 ] && [ "$(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo 0)" -lt 2048 ]; then
  sysctl -q -w fs.inotify.max_user_instances=2048 || echo "warning: could not raise fs.inotify.max_user_instances" >&2
fi

if command -v docker >/dev/null && engine_up; then
  command -v debootstrap >/dev/null || {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -q debootstrap >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; }
    else
      echo "debootstrap is missing: install it (Debian: apt-get install debootstrap)" >&2; exit 1
    fi
  }
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "No Docker engine answers. Install and start one (Debian, as root: apt-get install docker.io debootstrap;" \
       "then start dockerd), or run this command as root on Debian so it can do that itself." >&2
  exit 1
fi

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  echo ">> installing docker.io and debootstrap ..." >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap >/dev/null
fi

if ! engine_up; then
  echo ">> starting dockerd (log: /var/log/dockerd.log) ..." >&2
  # No systemd on such hosts: run the engine in the background, detached from this shell.
  setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    engine_up && break
    sleep 1
  done
fi
engine_up || { echo "dockerd did not start: see /var/log/dockerd.log" >&2; exit 1; }
