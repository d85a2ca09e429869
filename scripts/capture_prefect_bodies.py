"""Record the request bodies real Prefect 2.x clients send, for tests/api/test_prefect_bodies.py.

    .venv/bin/python scripts/capture_prefect_bodies.py [--only 2.7|2.20]

For each client (the venvs /tmp/prefect-2.7 and /tmp/prefect-2.20, overridable with
PREFECT_27_PYTHON / PREFECT_220_PYTHON) this starts that version's own server, puts a recording
proxy in front of it, runs scripts/prefect_client_session.py against the proxy and writes every
request (method, path, query, JSON body, the reference server's status and the id it returned)
to tests/data/prefect_bodies/prefect-<version>.json. The reference server is Prefect's own, so
the statuses recorded are what a client expects; the tests replay the bodies against Orion.
"""

import argparse
import http.client
import http.server
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "prefect_bodies"
CLIENTS = {
    "2.7": (
        os.environ.get("PREFECT_27_PYTHON", "/tmp/prefect-2.7/bin/python"),
        ["orion", "start"],
        4441,
    ),
    "2.20": (
        os.environ.get("PREFECT_220_PYTHON", "/tmp/prefect-2.20/bin/python"),
        ["server", "start"],
        4442,
    ),
}
PROXY_PORT = 4443
# Block endpoints are another part of issue 15; their bodies are recorded but not replayed.


def recording_proxy(upstream_port, records):
    """An HTTP server forwarding to 127.0.0.1:upstream_port and appending to ``records``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "accept-encoding")
            }
            upstream.request(self.command, self.path, body=raw or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            path, _, query = self.path.partition("?")
            try:
                parsed = json.loads(data) if data else None
            except ValueError:
                parsed = None
            records.append(
                {
                    "method": self.command,
                    "path": path.removeprefix("/api"),
                    "query": query,
                    "body": json.loads(raw) if raw else None,
                    "status": response.status,
                    "response_id": parsed.get("id") if isinstance(parsed, dict) else None,
                }
            )
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", PROXY_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wait_healthy(port, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"Prefect server on port {port} did not become healthy")


def capture(version):
    python, serve, port = CLIENTS[version]
    home = tempfile.mkdtemp(prefix=f"prefect-{version}-")
    bin_dir = str(pathlib.Path(python).parent)
    env = {
        **os.environ,
        "PREFECT_HOME": home,
        "PREFECT_API_URL": "",
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PREFECT_ORION_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    prefect = str(pathlib.Path(bin_dir) / "prefect")
    # Its own session, so stopping it stops the uvicorn process it starts too.
    server = subprocess.Popen(
        [prefect, *serve, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    records = []
    proxy = None
    try:
        wait_healthy(port)
        proxy = recording_proxy(port, records)
        client_env = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{PROXY_PORT}/api"}
        subprocess.run(
            [python, str(ROOT / "scripts" / "prefect_client_session.py")],
            env=client_env,
            check=True,
            cwd=home,
        )
    finally:
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"prefect-{version}.json"
    path.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"{len(records)} requests -> {path.relative_to(ROOT)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CLIENTS))
    args = parser.parse_args()
    for version in [args.only] if args.only else CLIENTS:
        capture(version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
