"""Lab stand-in for the application's ``python manage.py``: Django's migration commands, much smaller.

    manage.py migrate [<app> [<target>|zero]] [--plan]
    manage.py showmigrations [<app>]
    manage.py sqlmigrate [--backwards] <app> <name>
    manage.py warm_cache [--limit 100] [--ttl <CACHE_TTL_SECONDS>]

Migrations are SQL files of this release: migrations/<app>/NNNN_name.sql, with NNNN_name.reverse.sql
when the migration can be reversed (none: irreversible, as a RunSQL without reverse_sql). A file whose
first line is ``-- atomic: false`` runs statement by statement outside a transaction (Django's
``atomic = False``, needed by CREATE INDEX CONCURRENTLY); every other one runs, with its record, in one
transaction. Applied migrations are rows of django_migrations (app, name, applied), Django's table.
warm_cache is the application's own warm command (the runbook's scripts/warm_cache.py): the most viewed
stories, cached under the application's keys and in its format, with its TTL.
The output and exit codes follow Django's, which is what the collection parses. The database
settings come from the application's environment file (DB_*), as the application reads them.
"""

from __future__ import annotations

import json
import os
import sys

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
MIGRATIONS = os.environ.get("MUEJAM_MIGRATIONS_DIR", os.path.join(HERE, "migrations"))
ENV_FILE = os.environ.get("MUEJAM_ENV_FILE", "/etc/muejam/app.env")


class CommandError(Exception):
    pass


def read_env(path):
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, dummy, value = line.partition("=")
                values[key.strip()] = value.strip().strip('"')
    return values


def connect():
    env = read_env(ENV_FILE)
    # libpq reads PGOPTIONS (lock_timeout, statement_timeout) from the environment, as under Django.
    return psycopg2.connect(host=env.get("DB_PRIMARY_HOST"), port=int(env.get("DB_PORT") or 5432),
                            dbname=env.get("DB_NAME"), user=env.get("DB_USER"), password=env.get("DB_PASSWORD"),
                            connect_timeout=5, application_name="muejam-manage")


def migrations_on_disk():
    """{app: [name, ...]} in order."""
    found = {}
    if os.path.isdir(MIGRATIONS):
        for app in sorted(os.listdir(MIGRATIONS)):
            folder = os.path.join(MIGRATIONS, app)
            if os.path.isdir(folder):
                found[app] = sorted(f[:-4] for f in os.listdir(folder)
                                    if f.endswith(".sql") and not f.endswith(".reverse.sql"))
    return found


def sql_of(app, name, backwards=False):
    path = os.path.join(MIGRATIONS, app, name + (".reverse.sql" if backwards else ".sql"))
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def atomic(text):
    return not text.lstrip().lower().startswith("-- atomic: false")


def statements(text):
    return [part.strip() for part in text.split(";\n") if part.strip() and not all(
        line.strip().startswith("--") or not line.strip() for line in part.strip().splitlines())]


def ensure_table(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS django_migrations (id bigserial PRIMARY KEY, app varchar(255) "
                    "NOT NULL, name varchar(255) NOT NULL, applied timestamptz NOT NULL DEFAULT now())")
    conn.commit()


def applied_set(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT app, name FROM django_migrations")
        rows = set(cur.fetchall())
    conn.commit()
    return rows


def resolve(app, target, disk):
    if app not in disk:
        raise CommandError("App '%s' does not have migrations." % app)
    if target == "zero":
        return None
    matches = [name for name in disk[app] if name.startswith(target)]
    if not matches:
        raise CommandError("Cannot find a migration matching '%s' from app '%s'." % (target, app))
    if len(matches) > 1:
        raise CommandError("More than one migration matches '%s' in app '%s'. Please be more specific."
                           % (target, app))
    return matches[0]


def plan(disk, done, app=None, target=None):
    """[(app, name, backwards)] in the order Django would run them."""
    if app is None:
        return [(a, n, False) for a, names in disk.items() for n in names if (a, n) not in done]
    names = disk[app]
    chosen = resolve(app, target, disk) if target is not None else names[-1] if names else None
    keep = names.index(chosen) + 1 if chosen else 0
    forward = [(app, n, False) for n in names[:keep] if (app, n) not in done]
    backward = [(app, n, True) for n in reversed(names[keep:]) if (app, n) in done]
    return forward + backward


def run_one(conn, app, name, backwards):
    text = sql_of(app, name, backwards)
    if text is None:
        raise CommandError("Operation Raw SQL operation in %s.%s is not reversible" % (app, name))
    record = ("DELETE FROM django_migrations WHERE app = %s AND name = %s" if backwards
              else "INSERT INTO django_migrations (app, name) VALUES (%s, %s)")
    if atomic(text):
        with conn.cursor() as cur:
            cur.execute(text)
            cur.execute(record, (app, name))
        conn.commit()
        return
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements(text):
                cur.execute(statement)
            cur.execute(record, (app, name))
    finally:
        conn.autocommit = False


def migrate(args):
    show_plan = "--plan" in args
    args = [a for a in args if a != "--plan"]
    disk = migrations_on_disk()
    app, target = (args + [None, None])[:2]
    if app is not None:
        resolve(app, "zero", disk)
    conn = connect()
    try:
        ensure_table(conn)
        steps = plan(disk, applied_set(conn), app, target)
        if show_plan:
            print("Planned operations:")
            if not steps:
                print("  No planned migration operations.")
            for step_app, name, backwards in steps:
                print("%s.%s" % (step_app, name))
                if backwards and sql_of(step_app, name, True) is None:
                    print("    Raw SQL operation -> IRREVERSIBLE")
                else:
                    print("    %sRaw SQL operation" % ("Undo " if backwards else ""))
            return 0
        print("Operations to perform:")
        if app is None:
            print("  Apply all migrations: %s" % ", ".join(disk))
        elif target == "zero":
            print("  Unapply all migrations: %s" % app)
        else:
            print("  Target specific migration: %s, from %s" % (resolve(app, target or disk[app][-1], disk), app))
        print("Running migrations:")
        if not steps:
            print("  No migrations to apply.")
        for step_app, name, backwards in steps:
            print("  %s %s.%s..." % ("Unapplying" if backwards else "Applying", step_app, name), end="", flush=True)
            run_one(conn, step_app, name, backwards)
            print(" OK", flush=True)
    finally:
        conn.close()
    return 0


def showmigrations(args):
    disk = migrations_on_disk()
    conn = connect()
    try:
        ensure_table(conn)
        done = applied_set(conn)
    finally:
        conn.close()
    for app in args or list(disk):
        resolve(app, "zero", disk)
        print(app)
        if not disk[app]:
            print(" (no migrations)")
        for name in disk[app]:
            print(" [%s] %s" % ("X" if (app, name) in done else " ", name))
    return 0


def sqlmigrate(args):
    backwards = "--backwards" in args
    args = [a for a in args if a != "--backwards"]
    if len(args) != 2:
        raise CommandError("sqlmigrate needs <app> <name>")
    disk = migrations_on_disk()
    name = resolve(args[0], args[1], disk)
    text = sql_of(args[0], name, backwards)
    if text is None:
        raise CommandError("Operation Raw SQL operation in %s.%s is not reversible" % (args[0], name))
    print("BEGIN;\n%s\nCOMMIT;" % text.strip() if atomic(text) else text.strip())
    return 0


def option(args, name, default):
    if name in args:
        position = args.index(name)
        if position + 1 >= len(args) or not args[position + 1].isdigit():
            raise CommandError("%s needs a number" % name)
        return int(args[position + 1])
    return default


def warm_cache(args):
    env = read_env(ENV_FILE)
    limit = option(args, "--limit", 100)
    ttl = option(args, "--ttl", int(env.get("CACHE_TTL_SECONDS") or 300))
    try:
        from redis.cluster import ClusterNode, RedisCluster
    except ImportError:
        raise CommandError("this redis-py has no cluster client (4.1 or later is needed)") from None
    nodes = [item.strip().rpartition(":") for item in env.get("REDIS_NODES", "").split(",") if item.strip()]
    if not nodes:
        raise CommandError("REDIS_NODES is not set in %s" % ENV_FILE)
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, user_id, title, views FROM stories ORDER BY views DESC, id LIMIT %s", (limit,))
            rows = cur.fetchall()
    finally:
        conn.close()
    cache = RedisCluster(startup_nodes=[ClusterNode(host, int(port)) for host, dummy, port in nodes],
                         password=env.get("REDIS_PASSWORD") or None, socket_timeout=2)
    try:
        for row in rows:
            story = dict(zip(("id", "user_id", "title", "views"), row))
            cache.set("story:%d" % story["id"], json.dumps(story), ex=ttl)
    finally:
        cache.close()
    print("Warmed cache with %d stories" % len(rows))
    return 0


def main(argv):
    commands = {"migrate": migrate, "showmigrations": showmigrations, "sqlmigrate": sqlmigrate,
                "warm_cache": warm_cache}
    if not argv or argv[0] not in commands:
        print("Unknown command. Available: %s" % ", ".join(sorted(commands)), file=sys.stderr)
        return 1
    try:
        return commands[argv[0]](argv[1:])
    except CommandError as exc:
        print("\nCommandError: %s" % exc, file=sys.stderr)
        return 1
    except psycopg2.Error as exc:
        print("\nTraceback (most recent call last):\n  ...\ndjango.db.utils.%s: %s"
              % (type(exc).__name__, str(exc).strip()), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
