#!/usr/bin/env python
"""Load keys into a Redis Cluster, or check them against a saved sample, with plain redis-py (3.5 and 4.x).

    redis_keys.py load  --keys 100000 --sample 500 --state /var/tmp/redis_keys.json
    redis_keys.py check --state /var/tmp/redis_keys.json

Keys go straight to the master that serves their slot (CLUSTER SLOTS, CRC16 as Redis computes it), in pipelined
batches. Values are random bytes or random text of random length. `load` saves the total key count and a sample of
keys with their values (hex); `check` reads the sample again through the slot owners of now and compares. Both
print a JSON report. The password is read from REDISCLI_AUTH. Exit status 1 when `check` finds a difference.
"""

import argparse
import binascii
import json
import os
import random
import string
import sys

import redis

WORDS = ["story", "chapter", "reader", "author", "comment", "like", "draft", "cover", "genre", "tag", "library"]


def key_slot(key):
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) % 16384


def connect(host, port):
    return redis.Redis(host=host, port=port, password=os.environ.get("REDISCLI_AUTH") or None, socket_timeout=30)


def slot_owners(entry):
    """Slot -> (host, port) of its master, and the masters."""
    owners = [None] * 16384
    masters = set()
    for slot_range in entry.execute_command("CLUSTER", "SLOTS"):
        first, last, master = slot_range[:3]
        address = (master[0].decode() if isinstance(master[0], bytes) else master[0], int(master[1]))
        masters.add(address)
        for slot in range(int(first), int(last) + 1):
            owners[slot] = address
    return owners, masters


def random_value(rng):
    if rng.random() < 0.5:
        return bytes(rng.getrandbits(8) for dummy in range(rng.randint(16, 256)))
    words = [rng.choice(WORDS) + "".join(rng.choice(string.ascii_lowercase) for dummy in range(rng.randint(0, 6)))
             for dummy in range(rng.randint(3, 40))]
    return " ".join(words).encode()


def total_keys(clients, masters):
    return sum(int(clients[m].dbsize()) for m in masters)


def load(args):
    entry = connect(args.host, args.port)
    owners, masters = slot_owners(entry)
    clients = {m: connect(*m) for m in masters}
    pipes = {m: clients[m].pipeline(transaction=False) for m in masters}
    rng = random.Random(args.seed)
    sample_every = max(1, args.keys // args.sample)
    sample = {}
    queued = 0
    for number in range(args.keys):
        key = ("%s:%d" % (args.prefix, number)).encode()
        value = random_value(rng)
        pipes[owners[key_slot(key)]].set(key, value)
        if number % sample_every == 0:
            sample[key.decode()] = binascii.hexlify(value).decode()
        queued += 1
        if queued >= args.batch:
            for pipe in pipes.values():
                pipe.execute()
            queued = 0
    for pipe in pipes.values():
        pipe.execute()
    state = {"keys": total_keys(clients, masters), "sample": sample}
    with open(args.state, "w") as handle:
        json.dump(state, handle)
    print(json.dumps({"keys": state["keys"], "sampled": len(sample), "masters": len(masters)}))
    return 0


def check(args):
    with open(args.state) as handle:
        state = json.load(handle)
    entry = connect(args.host, args.port)
    owners, masters = slot_owners(entry)
    clients = {m: connect(*m) for m in masters}
    different = []
    for key, value in state["sample"].items():
        found = clients[owners[key_slot(key.encode())]].get(key)
        if found is None or binascii.hexlify(found).decode() != value:
            different.append(key)
    keys = total_keys(clients, masters)
    report = {"keys_before": state["keys"], "keys_now": keys, "sampled": len(state["sample"]),
              "sample_different": different, "masters": len(masters), "same": keys == state["keys"] and not different}
    print(json.dumps(report))
    return 0 if report["same"] else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["load", "check"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--keys", type=int, default=100000)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--prefix", default="muejam:cache")
    parser.add_argument("--state", default="/var/tmp/redis_keys.json")
    args = parser.parse_args()
    return load(args) if args.action == "load" else check(args)


if __name__ == "__main__":
    sys.exit(main())
