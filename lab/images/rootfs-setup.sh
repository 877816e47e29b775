#!/usr/bin/env bash
# Runs inside the debootstrapped root (chroot) to finish the lab image.
set -euo pipefail
mirror=$1; suite=$2; shift 2
export DEBIAN_FRONTEND=noninteractive
echo "deb $mirror $suite main" > /etc/apt/sources.list
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
apt-get update -q
# Lab hosts start without a 'main' cluster, as a new server would after our roles install PostgreSQL.
apt-get install -y -q --no-install-recommends postgresql-common
sed -i 's/^#\?\s*create_main_cluster.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf
apt-get install -y -q --no-install-recommends "$@"
rm -f /usr/sbin/policy-rc.d
# Debian's redis-server.service fails in a container (217/USER) unless PrivateUsers is off.
mkdir -p /etc/systemd/system/redis-server.service.d
printf '[Service]\nPrivateUsers=no\n' > /etc/systemd/system/redis-server.service.d/container.conf
# The default single redis-server is not what the lab wants; roles start their own instances.
systemctl disable redis-server >/dev/null 2>&1 || true
# Monitoring packages are in the image for every host; roles/monitoring enables what a host runs.
for unit in prometheus prometheus-alertmanager prometheus-postgres-exporter prometheus-redis-exporter \
            prometheus-node-exporter; do
  systemctl disable "$unit" >/dev/null 2>&1 || true
done
# systemd units that make no sense in a container.
for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
            systemd-modules-load.service sys-kernel-config.mount getty.target console-getty.service \
            systemd-timesyncd.service; do
  systemctl mask "$unit" >/dev/null 2>&1 || true
done
echo 'C.UTF-8' > /etc/default/locale
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
