"""Lab stand-in for the muejam application (Django behind gunicorn): the same surfaces, much smaller.

- a connection pool to the primary (DB_POOL_MAX_CONNECTIONS, default 50) and one per replica of the
  load-balancer list in databases.py, reads spread over the replicas by weight;
- a Redis Cluster cache in front of GET /stories/<id> (TTL CACHE_TTL_SECONDS), fail-open: when
  Redis does not answer, the read goes to the database and the error is counted;
- GET /health: 200 with the checks it made, 503 when the primary cannot be reached or lacks a column
  the application reads;
- GET /metrics/json (the runbook's shapes) and GET /metrics (the same figures, Prometheus text);
- POST /stories/<id>/view: a write on the primary (the traffic generator's writes);
- SIGHUP (systemctl reload) re-reads the environment file and databases.py and applies them without
  dropping a request, as gunicorn does: pool size, primary, replicas, FORCE_PRIMARY_READS, cache;
- POST /lab/hold?connections=N&seconds=S: lab only, holds N pool connections for S seconds so a
  test can fill the pool. Nothing in the collection calls it.

Latency and the cache hit rate are over the last METRICS_WINDOW_SECONDS (default 60); the counters
(hits, misses, errors, requests) are totals since the start, for Prometheus' rate().
"""

from __future__ import annotations

import json
import os
import random
import re
import runpy
import signal
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import psycopg2

try:
    from redis.cluster import ClusterNode, RedisCluster
except ImportError:  # redis-py older than 4.1 has no cluster client: the cache then counts errors
    ClusterNode = RedisCluster = None

ENV_FILE = os.environ.get("MUEJAM_ENV_FILE", "/etc/muejam/app.env")
DATABASES_FILE = os.environ.get("MUEJAM_DATABASES_FILE", "/etc/muejam/databases.py")
STARTED_AT = time.time()
WINDOW = float(os.environ.get("METRICS_WINDOW_SECONDS", "60"))


def log(msg):
    print(msg, flush=True)


def read_env(path):
    values = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, dummy, value = line.partition("=")
                    values[key.strip()] = value.strip().strip('"')
    return values


def read_settings():
    env = read_env(ENV_FILE)
    # databases.py reads DB_* with os.getenv, as Django settings do: give it the environment file.
    os.environ.update(env)
    databases, replicas = {}, []
    if os.path.exists(DATABASES_FILE):
        loaded = runpy.run_path(DATABASES_FILE)
        databases, replicas = loaded.get("DATABASES", {}), loaded.get("REPLICAS", [])
    default = databases.get("default", {})
    nodes = []
    for item in env.get("REDIS_NODES", "").split(","):
        host, dummy, port = item.strip().rpartition(":")
        if host:
            nodes.append((host, int(port)))
    return {
        "env": env,
        "databases": sorted(databases),
        "db": {
            "host": env.get("DB_PRIMARY_HOST") or default.get("HOST"),
            "port": int(env.get("DB_PORT") or default.get("PORT") or 5432),
            "dbname": env.get("DB_NAME") or default.get("NAME"),
            "user": env.get("DB_USER") or default.get("USER"),
            "password": env.get("DB_PASSWORD") or default.get("PASSWORD"),
        },
        "replicas": [{"host": r["host"], "port": int(r.get("port", 5432)), "weight": float(r.get("weight", 1))}
                     for r in replicas],
        "pool_max": max(1, int(env.get("DB_POOL_MAX_CONNECTIONS", "50"))),
        "redis_nodes": nodes,
        "redis_password": env.get("REDIS_PASSWORD") or None,
        "cache_ttl": int(env.get("CACHE_TTL_SECONDS", "300")),
        "force_primary_reads": env.get("FORCE_PRIMARY_READS", "false").lower() in ("1", "true", "yes", "on"),
    }


class PoolTimeout(Exception):
    pass


class Pool:
    """A bounded pool of psycopg2 connections: in_use + idle never exceeds max; callers past it wait."""

    def __init__(self, params, maxconn):
        self.cond = threading.Condition()
        self.params = params
        self.max = maxconn
        self.idle = []
        self.in_use = 0
        self.waiting = 0
        self.generation = 0

    def _connect(self, params):
        return psycopg2.connect(connect_timeout=3, application_name="muejam-app", **params)

    def acquire(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.idle:
                    conn, generation = self.idle.pop()
                    self.in_use += 1
                    return conn, generation
                if self.in_use + len(self.idle) < self.max:
                    self.in_use += 1
                    params, generation = dict(self.params), self.generation
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeout("no connection free in the pool of %d after %.1f s" % (self.max, timeout))
                self.waiting += 1
                try:
                    self.cond.wait(remaining)
                finally:
                    self.waiting -= 1
        try:
            conn = self._connect(params)
        except Exception:
            with self.cond:
                self.in_use -= 1
                self.cond.notify()
            raise
        conn.autocommit = True
        return conn, generation

    def release(self, conn, generation, broken=False):
        with self.cond:
            self.in_use -= 1
            keep = (not broken and not conn.closed and generation == self.generation
                    and self.in_use + len(self.idle) < self.max)
            if keep:
                self.idle.append((conn, generation))
            self.cond.notify()
        if not keep:
            conn.close()

    def configure(self, params, maxconn):
        """New size and server: idle connections past the size, or to another server, are closed now;
        connections in use finish their request and are closed when they come back."""
        with self.cond:
            closing = []
            if params != self.params:
                self.params = params
                self.generation += 1
                closing, self.idle = self.idle, []
            self.max = maxconn
            while self.idle and self.in_use + len(self.idle) > self.max:
                closing.append(self.idle.pop(0))
            self.cond.notify_all()
        for conn, _generation in closing:
            conn.close()

    def stats(self):
        with self.cond:
            return {"max": self.max, "in_use": self.in_use, "idle": len(self.idle), "waiting": self.waiting,
                    "utilization": round(100.0 * self.in_use / self.max, 1)}


class Window:
    """Values of the last WINDOW seconds (latency in ms, cache hits as 1/0)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = deque()

    def add(self, value):
        now = time.monotonic()
        with self.lock:
            self.items.append((now, value))
            self._prune(now)

    def _prune(self, now):
        while self.items and self.items[0][0] < now - WINDOW:
            self.items.popleft()

    def values(self):
        with self.lock:
            self._prune(time.monotonic())
            return [v for dummy, v in self.items]


class App:
    def __init__(self):
        self.lock = threading.Lock()
        self.settings = read_settings()
        self.pool = Pool(self.settings["db"], self.settings["pool_max"])
        self.replica_pools = {}
        self.counters = {"cache_hits": 0, "cache_misses": 0, "cache_errors": 0, "requests": 0,
                         "request_errors": 0, "primary_reads": 0, "writes": 0}
        self.replica_requests = {}
        self.latency = Window()
        self.hits = Window()
        self.cache = None
        self.cache_retry_at = 0.0
        self.cache_error = None
        self._apply_replicas()

    # -- settings -------------------------------------------------------------------------------
    def _apply_replicas(self):
        db = self.settings["db"]
        wanted = {}
        for replica in self.settings["replicas"]:
            params = dict(db, host=replica["host"], port=replica["port"])
            pool = self.replica_pools.get(replica["host"]) or Pool(params, self.settings["pool_max"])
            pool.configure(params, self.settings["pool_max"])
            wanted[replica["host"]] = pool
        for host, pool in self.replica_pools.items():
            if host not in wanted:
                pool.configure({}, 0)
        self.replica_pools = wanted

    def reload(self):
        try:
            settings = read_settings()
        except Exception as exc:  # a broken settings file keeps the running settings, as gunicorn does
            log("reload failed, keeping the running settings: %s" % exc)
            return
        with self.lock:
            old = self.settings
            self.settings = settings
            self.pool.configure(settings["db"], settings["pool_max"])
            self._apply_replicas()
            if (settings["redis_nodes"], settings["redis_password"]) != (old["redis_nodes"], old["redis_password"]):
                self.cache, self.cache_retry_at = None, 0.0
        log("reloaded: pool_max=%d primary=%s replicas=%s force_primary_reads=%s"
            % (settings["pool_max"], settings["db"]["host"], [r["host"] for r in settings["replicas"]],
               settings["force_primary_reads"]))

    # -- database -------------------------------------------------------------------------------
    def query(self, pool, sql, args=(), fetch=True):
        conn, generation = pool.acquire()
        broken = False
        started = time.monotonic()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                rows = cur.fetchall() if fetch else cur.rowcount
        except psycopg2.Error:
            broken = True
            raise
        finally:
            self.latency.add((time.monotonic() - started) * 1000.0)
            pool.release(conn, generation, broken)
        return rows

    def read_pool(self):
        with self.lock:
            replicas = [r for r in self.settings["replicas"] if r["weight"] > 0 and r["host"] in self.replica_pools]
            if self.settings["force_primary_reads"] or not replicas:
                self.counters["primary_reads"] += 1
                return self.pool
            chosen = random.choices(replicas, weights=[r["weight"] for r in replicas])[0]["host"]
            self.replica_requests[chosen] = self.replica_requests.get(chosen, 0) + 1
            return self.replica_pools[chosen]

    # -- cache ----------------------------------------------------------------------------------
    def cache_client(self):
        with self.lock:
            if self.cache is not None or time.monotonic() < self.cache_retry_at:
                return self.cache
            nodes, password = self.settings["redis_nodes"], self.settings["redis_password"]
            self.cache_retry_at = time.monotonic() + 5
        if not nodes:
            self.cache_error = "REDIS_NODES is not set"
            return None
        if RedisCluster is None:
            self.cache_error = "this redis-py has no cluster client"
            return None
        try:
            client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], password=password,
                                  socket_timeout=0.5, socket_connect_timeout=0.5)
        except Exception as exc:
            self.cache_error = str(exc)
            return None
        with self.lock:
            self.cache = client
        self.cache_error = None
        return client

    def cache_failed(self, exc):
        with self.lock:
            self.counters["cache_errors"] += 1
            self.cache, self.cache_retry_at = None, time.monotonic() + 5
        self.cache_error = str(exc)

    def cache_call(self, method, *args, count_unusable=False, **kwargs):
        """The cache's answer, or None when Redis cannot be used (fail-open). A failed call counts as an
        error; with no client at all only reads count (count_unusable), one error per request."""
        client = self.cache_client()
        if client is None:
            if count_unusable:
                with self.lock:
                    self.counters["cache_errors"] += 1
            return None
        try:
            return getattr(client, method)(*args, **kwargs)
        except Exception as exc:
            self.cache_failed(exc)
            return None

    # -- endpoints ------------------------------------------------------------------------------
    def story(self, story_id):
        key = "story:%d" % story_id
        cached = self.cache_call("get", key, count_unusable=True)
        if cached is not None:
            with self.lock:
                self.counters["cache_hits"] += 1
            self.hits.add(1)
            return 200, json.loads(cached), "hit"
        with self.lock:
            self.counters["cache_misses"] += 1
        self.hits.add(0)
        rows = self.query(self.read_pool(), "SELECT id, user_id, title, views FROM stories WHERE id = %s",
                          (story_id,))
        if not rows:
            return 404, {"error": "no story %d" % story_id}, "miss"
        story = dict(zip(("id", "user_id", "title", "views"), rows[0]))
        self.cache_call("set", key, json.dumps(story), ex=self.settings["cache_ttl"])
        return 200, story, "miss"

    def view(self, story_id):
        count = self.query(self.pool, "UPDATE stories SET views = views + 1 WHERE id = %s", (story_id,), fetch=False)
        with self.lock:
            self.counters["writes"] += 1
        self.cache_call("delete", "story:%d" % story_id)
        return (200, {"id": story_id}) if count else (404, {"error": "no story %d" % story_id})

    def health(self):
        checks = {}
        db = self.settings["db"]
        started = time.monotonic()
        try:
            # A direct connection, not one from the pool: a full pool is not a dead database.
            conn = psycopg2.connect(connect_timeout=2, application_name="muejam-app-health", **db)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery()")
                    in_recovery = cur.fetchone()[0]
                    # The columns the application reads (a Django health check touches its models too).
                    cur.execute(SCHEMA_CHECK)
            finally:
                conn.close()
            checks["database"] = {"status": "fail" if in_recovery else "ok", "host": db["host"],
                                  "ms": round((time.monotonic() - started) * 1000, 1)}
            if in_recovery:
                checks["database"]["error"] = "the primary host is a standby (read-only)"
        except psycopg2.Error as exc:
            checks["database"] = {"status": "fail", "host": db["host"], "error": str(exc).strip()}
        client = self.cache_client()
        try:
            if client is None:
                raise RuntimeError(self.cache_error or "no cache client")
            client.ping()
            checks["cache"] = {"status": "ok"}
        except Exception as exc:
            checks["cache"] = {"status": "fail", "error": str(exc)}
        ok = checks["database"]["status"] == "ok"
        status = "ok" if ok and checks["cache"]["status"] == "ok" else ("degraded" if ok else "fail")
        return (200 if ok else 503), {
            "status": status, "checks": checks, "started_at": STARTED_AT, "primary_host": db["host"],
            "databases": self.settings["databases"],
            "replicas": [dict(r) for r in self.settings["replicas"]],
        }

    def metrics(self):
        latency = sorted(self.latency.values())
        hits = self.hits.values()
        with self.lock:
            counters = dict(self.counters)
            replicas = [{"host": r["host"], "weight": r["weight"], "requests": self.replica_requests.get(r["host"], 0)}
                        for r in self.settings["replicas"]]
            force = self.settings["force_primary_reads"]
            pools = {host: pool.stats() for host, pool in self.replica_pools.items()}
        for replica in replicas:
            replica["pool"] = pools.get(replica["host"])
        return {
            "connection_pool": self.pool.stats(),
            "cache": {"hits": counters["cache_hits"], "misses": counters["cache_misses"],
                      "errors": counters["cache_errors"],
                      "hit_rate": round(100.0 * sum(hits) / len(hits), 1) if hits else None,
                      "window_seconds": WINDOW},
            "database": {"avg_latency_ms": round(sum(latency) / len(latency), 2) if latency else 0.0,
                         "p95_latency_ms": round(latency[int(0.95 * (len(latency) - 1))], 2) if latency else 0.0,
                         "queries_in_window": len(latency), "window_seconds": WINDOW,
                         "primary_host": self.settings["db"]["host"]},
            "load_balancer": {"replicas": replicas, "primary_reads": counters["primary_reads"],
                              "force_primary_reads": force},
            "requests": {"total": counters["requests"], "errors": counters["request_errors"],
                         "writes": counters["writes"]},
            "started_at": STARTED_AT,
        }

    def hold(self, connections, seconds):
        def run():
            held = []
            try:
                while len(held) < connections:
                    held.append(self.pool.acquire(timeout=1))
            except Exception as exc:
                log("hold: %s" % exc)
            time.sleep(seconds)
            for conn, generation in held:
                self.pool.release(conn, generation)
        threading.Thread(target=run, daemon=True).start()


def prometheus_text(metrics):
    pool, cache, db, lb = (metrics["connection_pool"], metrics["cache"], metrics["database"],
                           metrics["load_balancer"])
    lines = []

    def metric(name, kind, value, help_text, labels=None):
        if not any(line.startswith("# TYPE %s " % name) for line in lines):
            lines.append("# HELP %s %s" % (name, help_text))
            lines.append("# TYPE %s %s" % (name, kind))
        label = "{%s}" % ",".join('%s="%s"' % kv for kv in labels.items()) if labels else ""
        lines.append("%s%s %s" % (name, label, "NaN" if value is None else value))

    metric("muejam_connection_pool_max", "gauge", pool["max"], "Pool size (DB_POOL_MAX_CONNECTIONS).")
    metric("muejam_connection_pool_in_use", "gauge", pool["in_use"], "Connections handed out.")
    metric("muejam_connection_pool_idle", "gauge", pool["idle"], "Open connections not in use.")
    metric("muejam_connection_pool_waiting", "gauge", pool["waiting"], "Requests waiting for a connection.")
    metric("muejam_connection_pool_utilization_percent", "gauge", pool["utilization"], "in_use / max, percent.")
    metric("muejam_cache_hits_total", "counter", cache["hits"], "Cache hits.")
    metric("muejam_cache_misses_total", "counter", cache["misses"], "Cache misses.")
    metric("muejam_cache_errors_total", "counter", cache["errors"], "Cache errors (reads served fail-open).")
    metric("muejam_cache_hit_rate_percent", "gauge", cache["hit_rate"], "Hit rate over the metrics window.")
    metric("muejam_database_avg_latency_ms", "gauge", db["avg_latency_ms"], "Mean query latency, window.")
    metric("muejam_database_p95_latency_ms", "gauge", db["p95_latency_ms"], "95th percentile latency, window.")
    for replica in lb["replicas"]:
        labels = {"replica": replica["host"]}
        metric("muejam_load_balancer_requests_total", "counter", replica["requests"], "Reads sent to a replica.",
               labels)
        metric("muejam_load_balancer_weight", "gauge", replica["weight"], "Replica weight.", labels)
    metric("muejam_load_balancer_primary_reads_total", "counter", lb["primary_reads"], "Reads sent to the primary.")
    metric("muejam_requests_total", "counter", metrics["requests"]["total"], "HTTP requests.")
    metric("muejam_request_errors_total", "counter", metrics["requests"]["errors"], "HTTP requests answered 5xx.")
    return "\n".join(lines) + "\n"


APP = None
SCHEMA_CHECK = "SELECT id, user_id, title, views FROM stories LIMIT 0"
STORY = re.compile(r"^/stories/(\d+)(/view)?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, code, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        with APP.lock:
            APP.counters["requests"] += 1
            if code >= 500:
                APP.counters["request_errors"] += 1
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self, method):
        url = urlsplit(self.path)
        match = STORY.match(url.path)
        try:
            if method == "GET" and url.path == "/health":
                self.send(*APP.health())
            elif method == "GET" and url.path == "/metrics/json":
                self.send(200, APP.metrics())
            elif method == "GET" and url.path == "/metrics":
                self.send(200, prometheus_text(APP.metrics()), "text/plain; version=0.0.4")
            elif method == "GET" and match and not match.group(2):
                code, body, source = APP.story(int(match.group(1)))
                self.send(code, dict(body, cache=source))
            elif method == "POST" and match and match.group(2):
                self.send(*APP.view(int(match.group(1))))
            elif method == "POST" and url.path == "/lab/hold":
                query = parse_qs(url.query)
                connections = min(int(query.get("connections", ["1"])[0]), 500)
                seconds = min(float(query.get("seconds", ["10"])[0]), 3600)
                APP.hold(connections, seconds)
                self.send(202, {"holding": connections, "seconds": seconds})
            else:
                self.send(404, {"error": "not found: %s %s" % (method, url.path)})
        except (PoolTimeout, psycopg2.Error) as exc:
            self.send(503, {"error": str(exc).strip()})

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def log_message(self, *args):
        pass


def main():
    global APP
    APP = App()
    signal.signal(signal.SIGHUP, lambda *a: threading.Thread(target=APP.reload, daemon=True).start())
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("MUEJAM_PORT", "8000"))), Handler)
    server.daemon_threads = True
    log("serving on :%d, primary %s" % (server.server_address[1], APP.settings["db"]["host"]))
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
