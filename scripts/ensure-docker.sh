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

# What the lab and the tests need besides Python: the engine, debootstrap for the images,
# ShellCheck for the shell-script test of ansible-test sanity, and promtool / amtool (Debian's
# prometheus and prometheus-alertmanager, without their recommends: no exporter on the host) for
# the alert-rule tests, chromium and poppler-utils for the report's browser test.
missing=()
tools=()
command -v promtool >/dev/null || tools+=(prometheus)
command -v amtool >/dev/null || tools+=(prometheus-alertmanager)
# The health report's HTML page is opened in a real browser in a test (Molecule health_check): chromium
# headless prints it, pdftotext reads back what a person sees.
command -v chromium >/dev/null || tools+=(chromium)
command -v pdftotext >/dev/null || tools+=(poppler-utils)
if ! engine_up && ! command -v dockerd >/dev/null; then missing+=(docker.io); fi
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ $((${#missing[@]} + ${#tools[@]})) -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "Missing: ${missing[*]} ${tools[*]}. Install them (Debian, as root: apt-get install ${missing[*]}), start a" \
         "Docker engine, or run this command as root on Debian so it can do that itself." >&2
    exit 1
  fi
  echo ">> installing ${missing[*]} ${tools[*]} ..." >&2
  apt-get update -q >/dev/null
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  [ ${#tools[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${tools[@]}" >/dev/null
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
