"""Insert into a table continuously until /var/tmp/mt/writer.stop exists; write the count and the longest wait."""
import json
import os
import sys
import time

import psycopg2

table = sys.argv[1]
conn = psycopg2.connect(dbname="muejam_library", user="postgres")
conn.autocommit = True
waits = []
with conn.cursor() as cur:
    while not os.path.exists("/var/tmp/mt/writer.stop"):
        began = time.monotonic()
        cur.execute("INSERT INTO %s (n, body) VALUES (1, md5(random()::text))" % table)
        waits.append(time.monotonic() - began)
        time.sleep(0.005)
with open("/var/tmp/mt/writer.json.tmp", "w") as out:
    json.dump({"inserts": len(waits), "max_wait_s": max(waits), "mean_wait_s": sum(waits) / len(waits)}, out)
os.rename("/var/tmp/mt/writer.json.tmp", "/var/tmp/mt/writer.json")
