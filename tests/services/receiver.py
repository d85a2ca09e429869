"""A real HTTP receiver for notification tests: ``http.server`` on a thread.

It listens on a port of this test worker (:func:`tests.support.free_port`); records every
request (method, path, headers, JSON body) and answers with the status its ``status``
attribute says (200 by default).
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import free_port


class _Handler(BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        with receiver.lock:
            receiver.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": json.loads(raw) if raw else None,
                    "at": time.monotonic(),
                }
            )
            status = receiver.status
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

    def log_message(self, *args):
        pass


class Receiver:
    """Start with ``with Receiver() as receiver``; ``receiver.url`` is its address."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []
        self.lock = threading.Lock()
        self.server = None

    def __enter__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
        self.server.daemon_threads = True
        self.server.receiver = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self):
        host, port = self.server.server_address
        return f"http://{host}:{port}"

    def received(self):
        with self.lock:
            return list(self.requests)
