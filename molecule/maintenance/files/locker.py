"""Hold an ACCESS EXCLUSIVE lock on a table until /var/tmp/mt/locker.stop exists (another session's long DDL)."""
import os
import sys
import time

import psycopg2

conn = psycopg2.connect(dbname="muejam_library", user="postgres")
with conn.cursor() as cur:
    cur.execute("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE" % sys.argv[1])
    open("/var/tmp/mt/locker.held", "w").close()
    while not os.path.exists("/var/tmp/mt/locker.stop"):
        time.sleep(0.1)
conn.rollback()
