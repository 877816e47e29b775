"""Lab stand-in for the muejam application: reads its settings at start and serves /health.

/health answers 200 with the settings it loaded and when it started, so a test can see that a
role changed the settings and restarted the application.
"""

import json
import os
import runpy
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENV_FILE = os.environ.get("MUEJAM_ENV_FILE", "/etc/muejam/app.env")
DATABASES_FILE = os.environ.get("MUEJAM_DATABASES_FILE", "/etc/muejam/databases.py")
STARTED_AT = time.time()


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


def read_databases(path):
    if not os.path.exists(path):
        return {}, []
    settings = runpy.run_path(path)
    return settings.get("DATABASES", {}), settings.get("REPLICAS", [])


ENV = read_env(ENV_FILE)
DATABASES, REPLICAS = read_databases(DATABASES_FILE)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/health":
            self.send_error(404)
            return
        body = json.dumps({
            "status": "ok",
            "started_at": STARTED_AT,
            "primary_host": ENV.get("DB_PRIMARY_HOST"),
            "databases": sorted(DATABASES),
            "replicas": REPLICAS,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("MUEJAM_PORT", "8000"))), Handler).serve_forever()
