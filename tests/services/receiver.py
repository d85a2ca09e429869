"""A real HTTP receiver for notification tests: ``http.server`` on a thread.

It binds a port from ``ORION_TEST_PORTS`` when set (machines shared by several test runs give
each its own range), else any free one; records every request (method, path, headers, JSON
body) and answers with the status its ``status`` attribute says (200 by default).
"""
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        with receiver.lock:
            receiver.requests.append({
                "method": self.command, "path": self.path, "headers": dict(self.headers),
                "json": json.loads(raw) if raw else None, "at": time.monotonic()})
            status = receiver.status
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

    def log_message(self, *args):
        pass


def _bind():
    spec = os.environ.get("ORION_TEST_PORTS")
    ports = [0]
    if spec:
        low, high = (int(part) for part in spec.split("-"))
        ports = range(low, high + 1)
    for port in ports:
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        except OSError:
            continue
    raise RuntimeError(f"No free port in ORION_TEST_PORTS={spec}")


class Receiver:
    """Start with ``with Receiver() as receiver``; ``receiver.url`` is its address."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []
        self.lock = threading.Lock()
        self.server = None

    def __enter__(self):
        self.server = _bind()
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
