"""The demo service: answers /health on 127.0.0.1:$DEMO_PORT until it is replaced."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import out_dir

FUNCTIONS = out_dir() / "functions"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/health":
            body = {"status": "ok", "env": os.environ.get("APP_ENV")}
        elif self.path == "/functions":
            body = {"functions": sorted(p.name for p in FUNCTIONS.iterdir())}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["DEMO_PORT"])), Handler).serve_forever()
