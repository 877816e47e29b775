"""Real Redis Clusters for the redis_cluster_* modules, in one lab container.

One container (``dbops-it-redis``, on its own network of the same name) runs every
redis-server of the session; each test gets fresh clusters on fresh ports, created with
``redis-cli --cluster create`` (the reference tool), and shut down at the end of the test.
Tests reach the nodes at the container's address (our own container, nothing else).
Modules run as Ansible runs them: the module file in a Python process, arguments as JSON on stdin.

Test modules use the fixtures below only; they do not import this file (pytest loads every
conftest.py outside a package as the same module name, ``conftest``).
Set DBOPS_KEEP_LAB=1 to keep the container after the run, and DBOPS_REDIS_PY_PATH to a
directory holding another redis-py (``pip install --target DIR redis==3.5.3``) to run the
modules with the redis-py of the targets (Debian bullseye: 3.5.3, bookworm: 4.3.4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

ROOT = Path(__file__).resolve().parents[3]
NAME = "dbops-it-redis"
FIRST_PORT = 7100
SLOTS = 16384
SERVER_FLAGS = ("--cluster-enabled yes --daemonize yes --save '' --appendonly no --protected-mode no "
                "--cluster-node-timeout 3000 --enable-debug-command yes")


def sh(*args: str, check: bool = True, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc


@dataclass
class ModuleRun:
    result: dict
    output: str  # everything the module printed, to check that no secret leaks

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    @property
    def msg(self) -> str:
        return self.result.get("msg", "")


def module_command(name: str) -> list[str]:
    return [sys.executable, str(ROOT / "plugins" / "modules" / (name + ".py"))]


def module_env() -> dict:
    """The modules' environment; DBOPS_REDIS_PY_PATH puts another redis-py first (e.g. Debian's 3.5)."""
    paths = [os.environ.get("DBOPS_REDIS_PY_PATH", ""), str(ROOT / ".collections")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def run_module(name: str, args: dict, check_mode: bool = False, timeout: float = 300) -> ModuleRun:
    """Run one of our modules as Ansible does and return its JSON result."""
    payload = dict(args, _ansible_check_mode=check_mode)
    proc = subprocess.run(module_command(name), input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}),
                          capture_output=True, text=True, timeout=timeout, env=module_env(), cwd="/", check=False)
    output = proc.stdout + proc.stderr
    start = proc.stdout.find("{")
    if start < 0:
        raise AssertionError("module %s printed no JSON result:\n%s" % (name, output))
    return ModuleRun(json.loads(proc.stdout[start:]), output)


def start_module(name: str, args: dict) -> subprocess.Popen:
    """Start a module without waiting for it (to interrupt it)."""
    proc = subprocess.Popen(module_command(name), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=module_env(), cwd="/")
    proc.stdin.write(json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    proc.stdin.close()
    return proc


def parse_nodes(text: str) -> list[dict]:
    """CLUSTER NODES, read independently of the code under test."""
    nodes = []
    for line in text.strip().splitlines():
        fields = line.split()
        slots, opened = set(), {}
        for token in fields[8:]:
            if token.startswith("["):
                body = token.strip("[]")
                arrow = "->-" if "->-" in body else "-<-"
                slot, peer = body.split(arrow)
                opened[int(slot)] = ("migrating" if arrow == "->-" else "importing", peer)
            else:
                bounds = token.split("-")
                slots.update(range(int(bounds[0]), int(bounds[-1]) + 1))
        nodes.append({"id": fields[0], "addr": fields[1].split("@")[0], "flags": set(fields[2].split(",")),
                      "master": None if fields[3] == "-" else fields[3], "slots": slots, "open": opened})
    return nodes


@dataclass
class Cluster:
    lab: RedisLab
    ports: list[int]
    password: str | None = None
    user: str | None = None
    extra: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)  # removed from the cluster, still to stop

    def retire(self, port: int) -> None:
        (self.ports if port in self.ports else self.extra).remove(port)
        self.retired.append(port)

    @property
    def ip(self) -> str:
        return self.lab.ip

    def addr(self, port: int) -> str:
        return "%s:%d" % (self.ip, port)

    def args(self, port: int | None = None, **over) -> dict:
        """Connection options of our modules for this cluster."""
        args = {"login_host": self.ip, "login_port": port or self.ports[0], "socket_timeout": 5}
        if self.password:
            args["login_password"] = self.password
        if self.user:
            args["login_user"] = self.user
        args.update(over)
        return args

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=self.ip, port=port, username=self.user, password=self.password, socket_timeout=10)

    def nodes(self, port: int | None = None) -> list[dict]:
        return parse_nodes(self.client(port or self.ports[0]).execute_command("CLUSTER", "NODES").decode())

    def myself(self, port: int) -> dict:
        return next(n for n in self.nodes(port) if "myself" in n["flags"])

    def node_id(self, port: int) -> str:
        return self.client(port).execute_command("CLUSTER", "MYID").decode()

    def own_slots(self) -> dict[str, int]:
        """Slots per master address, each master as it describes itself."""
        result = {}
        for port in self.all_ports():
            me = self.myself(port)
            if "master" in me["flags"]:
                result[me["addr"]] = len(me["slots"])
        return result

    def open_slots(self) -> dict[str, dict]:
        return {self.addr(p): self.myself(p)["open"] for p in self.all_ports() if self.myself(p)["open"]}

    def state_ok(self) -> bool:
        return all(b"cluster_state:ok" in self.client(p).execute_command("CLUSTER", "INFO") for p in self.all_ports())

    def all_ports(self) -> list[int]:
        return self.ports + self.extra

    def fingerprint(self) -> list[tuple]:
        """What each node says of itself (slots, open slots, role, master): equal means nothing changed."""
        return [(p, sorted(m["slots"]), sorted(m["open"].items()), "master" in m["flags"], m["master"])
                for p in self.all_ports() for m in [self.myself(p)]]

    def slot_owners(self) -> dict[int, int]:
        """Slot -> port of the master serving it (CLUSTER SLOTS of the first node)."""
        owners = {}
        for entry in self.client(self.ports[0]).execute_command("CLUSTER", "SLOTS"):
            first, last, master = entry[:3]
            for slot in range(first, last + 1):
                owners[slot] = int(master[1])
        return owners

    def write(self, data: dict[bytes, bytes]) -> None:
        owners = self.slot_owners()
        by_port: dict[int, list] = {}
        for key, value in data.items():
            by_port.setdefault(owners[key_slot(key)], []).append((key, value))
        for port, items in by_port.items():
            client = self.client(port)
            for start in range(0, len(items), 2000):
                pipe = client.pipeline(transaction=False)
                for key, value in items[start:start + 2000]:
                    pipe.set(key, value)
                pipe.execute()

    def read(self, keys: list[bytes]) -> dict[bytes, bytes | None]:
        """GET every key from the master serving its slot, following ASK redirections to a target."""
        owners = self.slot_owners()
        by_port: dict[int, list[bytes]] = {}
        for key in keys:
            by_port.setdefault(owners[key_slot(key)], []).append(key)
        values = {}
        for port, port_keys in by_port.items():
            pipe = self.client(port).pipeline(transaction=False)
            for key in port_keys:
                pipe.get(key)
            for key, value in zip(port_keys, pipe.execute(raise_on_error=False)):
                if isinstance(value, redis.exceptions.AskError):
                    target = self.client(int(value.port))
                    value = target.pipeline(transaction=False).execute_command("ASKING").get(key).execute()[1]
                elif isinstance(value, Exception):
                    raise value
                values[key] = value
        return values

    def load_keys(self, count: int, prefix: str = "key") -> dict[bytes, bytes]:
        data = {("%s:%d" % (prefix, i)).encode(): ("value-%d-%s" % (i, "x" * (i % 40))).encode() for i in range(count)}
        self.write(data)
        return data

    def assert_keys(self, data: dict[bytes, bytes]) -> None:
        values = self.read(list(data))
        missing = [k for k, v in values.items() if v is None]
        wrong = [k for k, v in values.items() if v is not None and v != data[k]]
        assert not missing and not wrong, "%d keys missing, %d with another value (e.g. %r)" % (
            len(missing), len(wrong), (missing + wrong)[:3])

    def total_keys(self) -> int:
        return sum(self.client(p).dbsize() for p in self.all_ports() if "master" in self.myself(p)["flags"])

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        """redis-cli in the container, with this cluster's credentials."""
        return self.lab.exec("redis-cli", *self.lab.auth_args(self.password, self.user), *args, check=check)

    def check(self) -> tuple[int, str]:
        """redis-cli --cluster check, the reference."""
        proc = self.cli("--cluster", "check", self.addr(self.ports[0]))
        return proc.returncode, proc.stdout + proc.stderr

    def wait_agreed(self, timeout: float = 30) -> None:
        """Until redis-cli --cluster check is clean (replicas learn new owners through gossip)."""
        deadline = time.monotonic() + timeout
        while True:
            rc, out = self.check()
            if rc == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError("redis-cli --cluster check still fails:\n" + out)
            time.sleep(0.5)

    def port_of(self, node_id: str) -> int:
        return next(p for p in self.all_ports() if self.node_id(p) == node_id)

    def owner_port(self, slot: int) -> int:
        return self.slot_owners()[slot]

    def write_in_slot(self, slot: int, count: int, prefix: str) -> dict[bytes, bytes]:
        """``count`` keys that all hash to ``slot`` (through a hash tag), written to its owner."""
        tag = next(t for t in ("%s%d" % (prefix, i) for i in range(10**6)) if key_slot(("{%s}" % t).encode()) == slot)
        data = {("{%s}:%d" % (tag, i)).encode(): ("in-slot-%d-%d" % (slot, i)).encode() for i in range(count)}
        self.write(data)
        return data

    def open_by_hand(self, slot: int, target_port: int, move_keys: int = 0, importing: bool = True,
                     migrating: bool = True) -> None:
        """Leave ``slot`` as an interrupted migration to ``target_port`` leaves it: IMPORTING on the
        target, MIGRATING on the owner, and the first ``move_keys`` keys already migrated."""
        source_port = self.owner_port(slot)
        source, target = self.client(source_port), self.client(target_port)
        if importing:
            target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source_port))
        if migrating:
            source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target_port))
        if move_keys:
            keys = source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, move_keys)
            auth = []
            if self.password:
                auth = ["AUTH2", self.user, self.password] if self.user else ["AUTH", self.password]
            reply = source.execute_command("MIGRATE", self.ip, target_port, "", 0, 5000, *auth, "KEYS", *keys)
            assert reply == b"OK", reply

    def add_empty_master(self, wait_serving: bool = True) -> int:
        """One more empty node joined with redis-cli --cluster add-node (the reference).

        A master that just started keeps cluster_state:fail for up to the node timeout; unless
        ``wait_serving`` is false, wait until it serves, as an operator would before going on.
        """
        [port] = self.lab.start_servers(1, self.password, self.user)
        self.extra.append(port)
        proc = self.cli("--cluster", "add-node", self.addr(port), self.addr(self.ports[0]))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        self.lab.wait(lambda: all(any(n["addr"] == self.addr(port) and "handshake" not in n["flags"]
                                      for n in self.nodes(p)) for p in self.all_ports()), "the new node to join")
        if wait_serving:
            self.lab.wait(self.state_ok, "cluster_state:ok on every node")
        return port


class RedisLab:
    def __init__(self, image: str) -> None:
        self.image = image
        self.next_port = FIRST_PORT
        self.ip = ""

    def up(self) -> None:
        self.down()
        sh("docker", "network", "create", NAME)
        sh("docker", "run", "-d", "--name", NAME, "--network", NAME, self.image, "sleep", "infinity")
        self.ip = sh("docker", "inspect", "-f", '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % NAME,
                     NAME).stdout.strip()

    @staticmethod
    def down() -> None:
        sh("docker", "rm", "-f", NAME, check=False)
        sh("docker", "network", "rm", NAME, check=False)

    def exec(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return sh("docker", "exec", NAME, *args, check=check, timeout=timeout)

    @staticmethod
    def auth_args(password: str | None, user: str | None) -> list[str]:
        return (["--user", user] if user else []) + (["-a", password, "--no-auth-warning"] if password else [])

    def start_servers(self, count: int, password: str | None = None, user: str | None = None,
                      cluster: bool = True) -> list[int]:
        ports = list(range(self.next_port, self.next_port + count))
        self.next_port += count
        auth = ""
        if user:
            auth = "--user default off --user %s on '>%s' '~*' '&*' '+@all' --masteruser %s --masterauth '%s'" % (
                user, password, user, password)
        elif password:
            auth = "--requirepass '%s' --masterauth '%s'" % (password, password)
        script = " && ".join(
            "mkdir -p /data/{p} && redis-server --port {p} --dir /data/{p} --cluster-config-file /data/{p}/nodes.conf "
            "--logfile /data/{p}/redis.log --pidfile /data/{p}/redis.pid {flags} {auth}".format(
                p=p, flags=SERVER_FLAGS if cluster else SERVER_FLAGS.replace("--cluster-enabled yes", ""),
                auth=auth) for p in ports)
        self.exec("sh", "-c", script)
        for port in ports:
            self.wait(lambda p=port: self._answers(p, password, user), "redis-server on port %d" % port)
        return ports

    def _answers(self, port: int, password: str | None, user: str | None) -> bool:
        try:
            return redis.Redis(host=self.ip, port=port, username=user, password=password, socket_timeout=2).ping()
        except redis.exceptions.ConnectionError:
            return False

    def create_cluster(self, masters: int = 3, replicas: int = 0, password: str | None = None,
                       user: str | None = None) -> Cluster:
        ports = self.start_servers(masters * (1 + replicas), password, user)
        cluster = Cluster(self, ports, password, user)
        proc = cluster.cli("--cluster", "create", *[cluster.addr(p) for p in ports],
                           "--cluster-replicas", str(replicas), "--cluster-yes")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        cluster.wait_agreed()
        self.wait(cluster.state_ok, "cluster_state:ok on every node")
        self.wait(lambda: all(sum("slave" in n["flags"] for n in cluster.nodes(p)) == masters * replicas
                              for p in ports), "every node to see every replica")
        return cluster

    def kill(self, port: int) -> None:
        """Kill the server of one port at once (SIGKILL: no goodbye to the cluster)."""
        self.exec("sh", "-c", "kill -9 $(cat /data/%d/redis.pid)" % port)

    def stop(self, port: int) -> None:
        self.exec("sh", "-c", "kill -9 $(cat /data/{p}/redis.pid) 2>/dev/null; rm -rf /data/{p}".format(p=port),
                  check=False)

    @staticmethod
    def wait(predicate, what: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
            time.sleep(0.2)


@pytest.fixture(scope="session")
def redis_lab(request) -> RedisLab:
    image = sh(str(ROOT / "lab" / "images" / "build.sh"), "bookworm", timeout=1800).stdout.strip().splitlines()[-1]
    lab = RedisLab(image)
    lab.up()
    if os.environ.get("DBOPS_KEEP_LAB") != "1":
        request.addfinalizer(lab.down)
    return lab


@pytest.fixture
def make_cluster(redis_lab):
    """Create clusters for one test; every server they started is stopped afterwards."""
    made: list[Cluster] = []

    def make(masters: int = 3, replicas: int = 0, password: str | None = None, user: str | None = None) -> Cluster:
        cluster = redis_lab.create_cluster(masters, replicas, password, user)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        for port in cluster.all_ports() + cluster.retired:
            redis_lab.stop(port)


@pytest.fixture
def spare_node(redis_lab):
    """An empty cluster-enabled node that belongs to no cluster yet (stopped afterwards)."""
    started: list[int] = []

    def spare(password: str | None = None, user: str | None = None, cluster: bool = True) -> int:
        [port] = redis_lab.start_servers(1, password, user, cluster)
        started.append(port)
        return port

    yield spare
    for port in started:
        redis_lab.stop(port)


@pytest.fixture
def run():
    """run(module_name, args, check_mode=False) -> ModuleRun."""
    return run_module


@pytest.fixture
def start():
    """start(module_name, args) -> Popen, for a run to interrupt."""
    return start_module
