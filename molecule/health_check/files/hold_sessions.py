"""Molecule only: sessions for the incident playbooks to find, held on the primary for SECONDS.

    hold_sessions.py lock SECONDS           inc-holder updates stories 1 and stays idle in its transaction;
                                            inc-waiter-1 and -2 update the same row (they wait); inc-sleeper
                                            runs pg_sleep(SECONDS)
    hold_sessions.py idle N SECONDS NAME    N sessions (application_name NAME) run SELECT 1, then stay idle

Connects as the application's user over TCP (DB_* of /etc/muejam/app.env are not here: the values are given
in the environment, PGUSER / PGPASSWORD / PGDATABASE / PGHOST). A session the playbook ends is simply gone."""

import sys
import threading
import time

import psycopg2


def session(name, statements, hold, autocommit=True):
    try:
        conn = psycopg2.connect(application_name=name)
        conn.autocommit = autocommit
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        time.sleep(hold)
        conn.close()
    except psycopg2.Error:
        pass


def main(argv):
    threads = []
    if argv[0] == "lock":
        seconds = float(argv[1])
        plan = [("inc-holder", ["UPDATE stories SET views = views WHERE id = 1"], seconds, False)]
        plan += [("inc-waiter-%d" % i, ["UPDATE stories SET views = views + 1 WHERE id = 1"], 0, True) for i in (1, 2)]
        plan += [("inc-sleeper", ["SELECT pg_sleep(%f)" % seconds], 0, True)]
        for i, (name, statements, hold, autocommit) in enumerate(plan):
            threads.append(threading.Thread(target=session, args=(name, statements, hold, autocommit)))
            threads[-1].start()
            time.sleep(0.5 if i == 0 else 0.1)
    else:
        count, seconds, name = int(argv[1]), float(argv[2]), argv[3]
        for index in range(count):
            threads.append(threading.Thread(target=session, args=(name, ["SELECT 1"], seconds),
                                            name="%s-%d" % (name, index)))
            threads[-1].start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1:])
