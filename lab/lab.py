"""The containerized lab: systemd containers that stand in for real database, cache and app servers.

    lab/lab.py images [--suite bookworm]       build (or reuse) the suite's lab image and the S3 image
    lab/lab.py image [--suite bookworm]        build (or reuse) the suite's lab image; print its tag
    lab/lab.py up [--suite bookworm] [--prefix dbops] [--hosts pg1,pg2,...]
    lab/lab.py down [--prefix dbops]
    lab/lab.py status [--prefix dbops]
    lab/lab.py fleet [--clusters 4] [--redis-clusters 2] [--prefix fleet]   a fleet lab and its inventory

Each lab host is a container named <prefix>-<host> on the network <prefix>-net, reachable inside
that network by its short name (pg1, redis3, s3, app, mon). The inventory in inventories/lab/ reaches
them with the community.docker.docker_api connection. Only standard library: it runs before the venv.

A fleet lab (`fleet`) starts N PostgreSQL clusters (cN-pg1 primary, cN-pg2 its replica) and M Redis Clusters of six
nodes (rM-redis1..6), and writes their inventory to build/fleet-<prefix>/ (hosts.yml, group_vars from the lab's);
lab/fleet.yml provisions it. Groups: postgres_primary, postgres_replicas, one group per cluster (cluster_cN,
redis_rM) and redis_cluster with every Redis Cluster as a child.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SUITES = {"bullseye": 13, "bookworm": 15, "trixie": 17}
LAB_HOSTS = ["pg1", "pg2", "pg3", "redis1", "redis2", "redis3", "redis4", "redis5", "redis6",
             "redis7", "redis8", "s3", "app", "mon"]
# The application stand-in and the monitoring host do not depend on the PostgreSQL version under
# test: they always run the bookworm image (its redis-py has the cluster client the cache uses).
SUITE_INDEPENDENT_HOSTS = {"app", "mon"}
SYSTEMD_RUN_ARGS = [
    "--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined", "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
]
MOTO_REQUIREMENT = "moto[server]==5.2.5"


def log(msg: str) -> None:
    print(">> " + msg, file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, capture: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, text=True, capture_output=capture, check=False, **kw)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        sys.exit("command failed (%s): %s\n%s" % (proc.returncode, " ".join(cmd), detail))
    return proc


def image_exists(tag: str) -> bool:
    return run(["docker", "image", "inspect", tag], check=False).returncode == 0


def build_lab_image(suite: str) -> str:
    """Tag of the lab image for a suite; built from Debian packages only when its recipe changed."""
    return run([str(HERE / "images" / "build.sh"), suite], capture=True).stdout.strip().splitlines()[-1]


def build_s3_image() -> str:
    """An image with moto's S3 server, derived from the bookworm lab image (Python 3.11 like the controller)."""
    base = build_lab_image("bookworm")
    recipe = (HERE / "images" / "s3.Dockerfile").read_bytes() + base.encode() + MOTO_REQUIREMENT.encode()
    tag = "dbops-s3:" + hashlib.sha256(recipe).hexdigest()[:10]
    if image_exists(tag):
        return tag
    cache = Path(os.environ.get("DBOPS_CACHE_DIR", Path.home() / ".cache" / "muejam-dbops"))
    context = cache / ("s3-context-" + tag.split(":")[1])
    site = context / "site"
    if not site.exists():
        for stale in cache.glob("s3-context-*"):
            shutil.rmtree(stale, ignore_errors=True)
        log("installing %s for the S3 endpoint image ..." % MOTO_REQUIREMENT)
        tmp = context / "site.part"
        run([sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-conflicts",
             "--target", str(tmp), "--python-version", "3.11", "--only-binary=:all:",
             MOTO_REQUIREMENT])
        tmp.rename(site)
    (context / "Dockerfile").write_text((HERE / "images" / "s3.Dockerfile").read_text().replace("@BASE@", base))
    (context / "moto.service").write_text((HERE / "images" / "moto.service").read_text())
    log("building %s ..." % tag)
    run(["docker", "build", "-q", "-t", tag, str(context)])
    return tag


def container_state(name: str) -> str | None:
    proc = run(["docker", "inspect", "-f", "{{.State.Status}}", name], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_network(network: str) -> None:
    if run(["docker", "network", "inspect", network], check=False).returncode != 0:
        run(["docker", "network", "create", "--label", "muejam.dbops.lab=1", network])


def start_host(prefix: str, host: str, image: str) -> str:
    name = "%s-%s" % (prefix, host)
    state = container_state(name)
    if state == "running":
        return name
    if state is not None:
        run(["docker", "rm", "-f", name])
    run(["docker", "run", "-d", "--name", name, "--hostname", host,
         "--network", prefix + "-net", "--network-alias", host,
         "--label", "muejam.dbops.lab=" + prefix, *SYSTEMD_RUN_ARGS, image])
    return name


def wait_for_systemd(names: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            state = run(["docker", "exec", name, "systemctl", "is-system-running"], check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                sys.exit("%s did not finish booting (systemd says %r): see `docker logs %s`" % (name, state, name))
            time.sleep(0.5)


def address_of(name: str, network: str) -> str:
    fmt = "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % network
    return run(["docker", "inspect", "-f", fmt, name]).stdout.strip()


def up(prefix: str, suite: str, hosts: list[str]) -> dict[str, str]:
    by_suite: dict[str, str] = {}

    def image_of(host: str) -> str:
        if host == "s3":
            return build_s3_image()
        wanted = "bookworm" if host in SUITE_INDEPENDENT_HOSTS else suite
        if wanted not in by_suite:
            by_suite[wanted] = build_lab_image(wanted)
        return by_suite[wanted]

    images = {h: image_of(h) for h in hosts}
    ensure_network(prefix + "-net")
    names = [start_host(prefix, h, images[h]) for h in hosts]
    wait_for_systemd(names)
    if "s3" in hosts:
        wait_for_s3(prefix + "-s3")
    return {h: address_of(n, prefix + "-net") for h, n in zip(hosts, names)}


def wait_for_s3(name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/', timeout=2)"
    while run(["docker", "exec", name, "python3", "-c", probe], check=False).returncode != 0:
        if time.monotonic() > deadline:
            sys.exit("the S3 endpoint in %s did not answer on port 9000: see `docker exec %s journalctl -u moto`"
                     % (name, name))
        time.sleep(0.5)


def down(prefix: str) -> None:
    names = run(["docker", "ps", "-aq", "--filter", "label=muejam.dbops.lab=" + prefix]).stdout.split()
    if names:
        run(["docker", "rm", "-f", *names])
    if run(["docker", "network", "inspect", prefix + "-net"], check=False).returncode == 0:
        run(["docker", "network", "rm", prefix + "-net"])


def status(prefix: str) -> list[dict[str, str]]:
    out = run(["docker", "ps", "-a", "--filter", "label=muejam.dbops.lab=" + prefix,
               "--format", "{{.Names}}\t{{.Status}}\t{{.Image}}"]).stdout
    return [dict(zip(("name", "status", "image"), line.split("\t"))) for line in out.splitlines()]


def fleet_hosts(clusters: int, redis_clusters: int) -> list[str]:
    pg = ["c%d-pg%d" % (c, n) for c in range(1, clusters + 1) for n in (1, 2)]
    return pg + ["r%d-redis%d" % (r, n) for r in range(1, redis_clusters + 1) for n in range(1, 7)]


def fleet_inventory(prefix: str, clusters: int, redis_clusters: int) -> Path:
    """Write the fleet's inventory (YAML as JSON, which YAML reads) and the lab's group_vars next to it."""
    def host(name: str, **hostvars) -> dict:
        return {name: {"ansible_host": "{{ dbops_lab_prefix }}-" + name, **hostvars}}

    primaries, replicas, groups = {}, {}, {}
    for c in range(1, clusters + 1):
        primaries.update(host("c%d-pg1" % c))
        replicas.update(host("c%d-pg2" % c, lab_standby_primary="c%d-pg1" % c))
        groups["cluster_c%d" % c] = {"hosts": {"c%d-pg1" % c: {}, "c%d-pg2" % c: {}}}
    redis_groups = {}
    for r in range(1, redis_clusters + 1):
        members = {}
        for n in range(1, 7):
            members.update(host("r%d-redis%d" % (r, n)))
        redis_groups["redis_r%d" % r] = {"hosts": members}
    inventory = {"all": {"children": {
        "postgres": {"children": {"postgres_primary": {"hosts": primaries},
                                  "postgres_replicas": {"hosts": replicas}}},
        "redis": {"children": {"redis_cluster": {"children": redis_groups}}},
        **groups}}}
    target = ROOT / "build" / ("fleet-" + prefix)
    (target / "group_vars").mkdir(parents=True, exist_ok=True)
    (target / "hosts.yml").write_text(json.dumps(inventory, indent=1) + "\n")
    # The lab's settings (connection, passwords, intervals), with this fleet's container prefix.
    settings = (ROOT / "inventories" / "lab" / "group_vars" / "all.yml").read_text()
    if "\ndbops_lab_prefix: dbops\n" not in settings:
        sys.exit("inventories/lab/group_vars/all.yml no longer sets dbops_lab_prefix: dbops; update fleet_inventory")
    (target / "group_vars" / "all.yml").write_text(
        settings.replace("\ndbops_lab_prefix: dbops\n", "\ndbops_lab_prefix: %s\n" % prefix))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["images", "image", "up", "down", "status", "fleet"])
    parser.add_argument("--suite", default=os.environ.get("DBOPS_SUITE", "bookworm"), choices=sorted(SUITES))
    parser.add_argument("--prefix", default=os.environ.get("DBOPS_LAB_PREFIX", "dbops"))
    parser.add_argument("--hosts", default=",".join(LAB_HOSTS), help="comma-separated lab hosts to start")
    parser.add_argument("--clusters", type=int, default=4, help="fleet: PostgreSQL clusters (primary + replica)")
    parser.add_argument("--redis-clusters", type=int, default=2, help="fleet: Redis Clusters (3 masters + 3 replicas)")
    args = parser.parse_args()
    if args.command == "image":
        print(build_lab_image(args.suite))
    elif args.command == "images":
        print(build_lab_image(args.suite))
        print(build_s3_image())
    elif args.command == "up":
        addresses = up(args.prefix, args.suite, [h for h in args.hosts.split(",") if h])
        print(json.dumps(addresses, indent=2))
    elif args.command == "fleet":
        prefix = args.prefix if args.prefix != "dbops" else "fleet"
        up(prefix, args.suite, fleet_hosts(args.clusters, args.redis_clusters))
        print(fleet_inventory(prefix, args.clusters, args.redis_clusters))
    elif args.command == "down":
        down(args.prefix)
    else:
        for row in status(args.prefix):
            print("%(name)-20s %(status)-28s %(image)s" % row)


if __name__ == "__main__":
    main()
