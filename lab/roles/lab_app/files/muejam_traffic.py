"""Lab traffic generator: reads (and a few writes) against the lab application, bounded in rate and time.

    muejam_traffic.py [--url http://127.0.0.1:8000] [--rate 20] [--seconds 30] [--ids 20000]
                      [--hot 200] [--hot-share 0.9] [--writes 0.05] [--workers 8]

Reads GET /stories/<id>: a share of them (--hot-share) on a small hot set (--hot ids), which the
cache serves once warm, the rest on random ids (cache misses). --writes is the share of
POST /stories/<id>/view (a write on the primary). The rate is capped at 500 requests a second and
the run at one hour; the URL must name the loopback or a lab host (a single-label name), so it
never sends anywhere but the lab. Prints one JSON line with what it sent and what came back, with
the longest request (max_ms) and the longest write (max_write_ms).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

MAX_RATE = 500
MAX_SECONDS = 3600


def lab_url(url):
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or ("." not in host and host != "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--ids", type=int, default=20000)
    parser.add_argument("--hot", type=int, default=200)
    parser.add_argument("--hot-share", type=float, default=0.9)
    parser.add_argument("--writes", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    if not lab_url(args.url):
        sys.exit("refusing %s: the traffic generator only sends to the lab (loopback or a lab host name)" % args.url)
    if not 0 < args.rate <= MAX_RATE or not 0 < args.seconds <= MAX_SECONDS:
        sys.exit("--rate must be in (0, %d] and --seconds in (0, %d]" % (MAX_RATE, MAX_SECONDS))

    results = {"sent": 0, "ok": 0, "not_found": 0, "errors": 0, "cache_hits": 0, "max_ms": 0.0, "max_write_ms": 0.0}
    lock = threading.Lock()
    interval = 1.0 / args.rate
    start = time.monotonic()
    next_slot = [start]

    def one_request():
        if random.random() < args.hot_share:
            story = random.randint(1, max(1, min(args.hot, args.ids)))
        else:
            story = random.randint(1, args.ids)
        write = random.random() < args.writes
        req = urllib.request.Request("%s/stories/%d%s" % (args.url, story, "/view" if write else ""),
                                     method="POST" if write else "GET", data=b"" if write else None)
        outcome = "errors"
        hit = False
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                body = json.loads(answer.read() or b"{}")
                outcome, hit = "ok", body.get("cache") == "hit"
        except urllib.error.HTTPError as exc:
            outcome = "not_found" if exc.code == 404 else "errors"
        except (OSError, ValueError):
            outcome = "errors"
        took = round((time.monotonic() - started) * 1000.0, 1)
        with lock:
            results[outcome] += 1
            results["cache_hits"] += hit
            results["max_ms"] = max(results["max_ms"], took)
            if write:
                results["max_write_ms"] = max(results["max_write_ms"], took)

    def worker():
        while True:
            with lock:
                slot = next_slot[0]
                if slot - start >= args.seconds:
                    return
                next_slot[0] = slot + interval
                results["sent"] += 1
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            one_request()

    threads = [threading.Thread(target=worker) for dummy in range(max(1, args.workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results["seconds"] = round(time.monotonic() - start, 2)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
