#!/usr/bin/env python
"""muejam.dbops.redis_cluster_rebalance against redis-cli --cluster rebalance --cluster-use-empty-masters.

Starts one lab container (dbops-bench-redis, its own network) running two identical clusters: 3 masters created by
redis-cli --cluster create, the same keys with random values (random bytes or random text, same seed) written to
both, and one empty master added with redis-cli --cluster add-node. Then, in the same run, rebalances one cluster
with redis-cli (inside the container) and the other with our module (run as Ansible runs it, from this machine,
against the container's address), with the same pipeline size, and prints the time ratio, whether the final slot
distributions are the same, and whether every key survived. Not part of `make test`.

    .venv/bin/python benchmarks/redis_rebalance/bench.py [--keys 100000] [--pipeline 10] [--rounds 1] [--keep]
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import random
import string
import subprocess
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
NAME = "dbops-bench-redis"
FLAGS = ["--cluster-enabled", "yes", "--daemonize", "yes", "--save", "", "--appendonly", "no",
         "--protected-mode", "no", "--cluster-node-timeout", "3000"]
WORDS = ["story", "chapter", "reader", "author", "comment", "like", "draft", "cover", "genre", "tag", "library"]


def sh(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc


def dexec(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("docker", "exec", NAME, *args, check=check)


def lab_image() -> str:
    return sh(sys.executable, str(ROOT / "lab" / "lab.py"), "image", "--suite", "bookworm").stdout.strip()


def up() -> str:
    down()
    sh("docker", "network", "create", NAME)
    sh("docker", "run", "-d", "--name", NAME, "--network", NAME, lab_image(), "sleep", "infinity")
    return sh("docker", "inspect", "-f", '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % NAME,
              NAME).stdout.strip()


def down() -> None:
    sh("docker", "rm", "-f", NAME, check=False)
    sh("docker", "network", "rm", NAME, check=False)


def wait(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.2)


def cluster_ok(ip: str, ports: list[int]) -> bool:
    for port in ports:
        info = redis.Redis(host=ip, port=port).execute_command("CLUSTER", "INFO").decode()
        if "cluster_state:ok" not in info:
            return False
    return True


def start_cluster(ip: str, first_port: int) -> list[int]:
    """3 masters with redis-cli --cluster create, plus one empty master with add-node; all serving."""
    ports = [first_port + i for i in range(4)]
    for port in ports:
        dexec("mkdir", "-p", "/data/%d" % port)
        dexec("redis-server", "--port", str(port), "--dir", "/data/%d" % port, "--cluster-config-file",
              "/data/%d/nodes.conf" % port, "--logfile", "/data/%d/redis.log" % port, *FLAGS)
    wait(lambda: all(_answers(ip, p) for p in ports), "the servers")
    dexec("redis-cli", "--cluster", "create", *["%s:%d" % (ip, p) for p in ports[:3]], "--cluster-yes")
    wait(lambda: cluster_ok(ip, ports[:3]), "the new cluster")
    return ports


def add_empty(ip: str, ports: list[int]) -> None:
    dexec("redis-cli", "--cluster", "add-node", "%s:%d" % (ip, ports[3]), "%s:%d" % (ip, ports[0]))
    wait(lambda: all(_knows(ip, p, len(ports)) for p in ports), "the empty master to join")
    wait(lambda: cluster_ok(ip, ports), "cluster_state:ok on every node")


def _answers(ip: str, port: int) -> bool:
    try:
        return redis.Redis(host=ip, port=port, socket_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        return False


def _knows(ip: str, port: int, count: int) -> bool:
    text = redis.Redis(host=ip, port=port).execute_command("CLUSTER", "NODES").decode()
    return sum(1 for line in text.splitlines() if "handshake" not in line and "noaddr" not in line) == count


def key_slot(key: bytes) -> int:
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) % 16384


def owners(ip: str, port: int) -> dict[int, int]:
    """Slot -> port of the master serving it."""
    result = {}
    for slot_range in redis.Redis(host=ip, port=port).execute_command("CLUSTER", "SLOTS"):
        first, last, master = slot_range[:3]
        for slot in range(int(first), int(last) + 1):
            result[slot] = int(master[1])
    return result


def random_value(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return rng.randbytes(rng.randint(16, 256))
    words = (rng.choice(WORDS) + "".join(rng.choice(string.ascii_lowercase) for dummy in range(rng.randint(0, 6)))
             for dummy in range(rng.randint(3, 40)))
    return " ".join(words).encode()


def load(ip: str, ports_a: list[int], ports_b: list[int], count: int, seed: int) -> dict[bytes, bytes]:
    """The same keys and values into both clusters, pipelined per master."""
    rng = random.Random(seed)
    data = {("muejam:cache:%d" % n).encode(): random_value(rng) for n in range(count)}
    for ports in (ports_a, ports_b):
        slot_port = owners(ip, ports[0])
        pipes = {p: redis.Redis(host=ip, port=p).pipeline(transaction=False) for p in ports[:3]}
        for number, (key, value) in enumerate(data.items(), 1):
            pipes[slot_port[key_slot(key)]].set(key, value)
            if number % 5000 == 0:
                for pipe in pipes.values():
                    pipe.execute()
        for pipe in pipes.values():
            pipe.execute()
    return data


def distribution(ip: str, ports: list[int]) -> list[list[int]]:
    """Per master (in port order), its slots, sorted."""
    slot_port = owners(ip, ports[0])
    return [sorted(s for s, p in slot_port.items() if p == port) for port in ports]


def keys_intact(ip: str, ports: list[int], data: dict[bytes, bytes]) -> bool:
    slot_port = owners(ip, ports[0])
    total = sum(redis.Redis(host=ip, port=p).dbsize() for p in set(slot_port.values()))
    if total != len(data):
        return False
    pipes: dict[int, list] = {}
    for key in data:
        pipes.setdefault(slot_port[key_slot(key)], []).append(key)
    for port, keys in pipes.items():
        pipe = redis.Redis(host=ip, port=port).pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        values = pipe.execute()
        if any(value != data[key] for key, value in zip(keys, values)):
            return False
    return True


def open_slots(ip: str, ports: list[int]) -> int:
    return sum(redis.Redis(host=ip, port=p).execute_command("CLUSTER", "NODES").decode().count("[") for p in ports)


def run_redis_cli(ip: str, ports: list[int], pipeline: int) -> float:
    """Wall time of redis-cli inside the container, measured there."""
    script = ('s=$(date +%%s.%%N); redis-cli --cluster rebalance %s:%d --cluster-use-empty-masters '
              '--cluster-pipeline %d >/tmp/rebalance.log 2>&1; rc=$?; e=$(date +%%s.%%N); echo "$rc $s $e"'
              % (ip, ports[0], pipeline))
    rc, start, end = dexec("sh", "-c", script).stdout.split()
    if rc != "0":
        raise RuntimeError("redis-cli rebalance failed: " + dexec("cat", "/tmp/rebalance.log").stdout)
    return float(end) - float(start)


def run_module(ip: str, ports: list[int], pipeline: int) -> tuple[float, dict]:
    """Wall time of our module as Ansible runs it (a Python process, arguments on stdin), and its result."""
    args = {"login_host": ip, "login_port": ports[0], "use_empty_masters": True, "pipeline": pipeline}
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".collections")}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "plugins" / "modules" / "redis_cluster_rebalance.py")],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True,
                          env=env, cwd="/", check=False, timeout=1800)
    elapsed = time.monotonic() - start
    result = json.loads(proc.stdout[proc.stdout.find("{"):])
    if result.get("failed"):
        raise RuntimeError("module failed: " + result.get("msg", ""))
    return elapsed, result


def one_round(ip: str, keys: int, pipeline: int, seed: int, first_port: int) -> dict:
    ports_a = start_cluster(ip, first_port)
    ports_b = start_cluster(ip, first_port + 100)
    data = load(ip, ports_a, ports_b, keys, seed)
    add_empty(ip, ports_a)
    add_empty(ip, ports_b)
    if distribution(ip, ports_a) != distribution(ip, ports_b):
        raise RuntimeError("the two clusters do not start identical")
    cli_seconds = run_redis_cli(ip, ports_a, pipeline)
    module_seconds, result = run_module(ip, ports_b, pipeline)
    for ports in (ports_a, ports_b):
        wait(lambda p=ports: cluster_ok(ip, p), "cluster_state:ok after the rebalance")
    dist_a, dist_b = distribution(ip, ports_a), distribution(ip, ports_b)
    return {"keys": keys, "pipeline": pipeline, "redis_cli_seconds": round(cli_seconds, 2),
            "module_seconds": round(module_seconds, 2),
            "module_move_seconds": result["timing"].get("move_seconds"),
            "ratio_module_to_redis_cli": round(module_seconds / cli_seconds, 2),
            "slots_moved": result["slots_moved"], "keys_moved": result["keys_moved"],
            "same_distribution": dist_a == dist_b,
            "slots_per_master_redis_cli": [len(s) for s in dist_a],
            "slots_per_master_module": [len(s) for s in dist_b],
            "keys_intact_redis_cli": keys_intact(ip, ports_a, data),
            "keys_intact_module": keys_intact(ip, ports_b, data),
            "open_slots_after": open_slots(ip, ports_a) + open_slots(ip, ports_b)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100000)
    parser.add_argument("--pipeline", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--keep", action="store_true", help="keep the container")
    args = parser.parse_args()
    ip = up()
    try:
        rounds = [one_round(ip, args.keys, args.pipeline, args.seed + n, 7200 + 200 * n) for n in range(args.rounds)]
    finally:
        if not args.keep:
            down()
    for result in rounds:
        print(json.dumps(result))
    print("redis-cli %s s, module %s s: module/redis-cli = %s; same final distribution: %s; keys intact: %s" % (
        [r["redis_cli_seconds"] for r in rounds], [r["module_seconds"] for r in rounds],
        [r["ratio_module_to_redis_cli"] for r in rounds], all(r["same_distribution"] for r in rounds),
        all(r["keys_intact_redis_cli"] and r["keys_intact_module"] for r in rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
