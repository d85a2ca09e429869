"""The CPU floor under ``bench_scale.py``'s figure: what gunicorn and Flask cost per lifecycle
before any of Orion's code runs (issue 21).

For each floor, one gunicorn worker of Orion's class (``app.serving.KeepAliveThreadWorker``,
8 threads, as ``orion start`` runs it) serves ``--clients`` processes of ``bench_scale.py``'s
own client (create a flow run, set Running, set Completed: the same 3 POST bodies on one
keep-alive connection) for ``--seconds``; the worker's CPU seconds (from /proc) per
lifecycle are printed. The floors: ``wsgi``, a bare WSGI callable that reads the body and
answers fixed JSON (gunicorn, sockets, threads); ``flask``, a one-route Flask app that parses
the JSON body and answers a dict. Compare with ``bench_scale.py --workers 1`` run in the same
minutes.

Usage: python bench/bench_cpu_floor.py [--clients 4] [--seconds 10] [--port 4962]
"""

import argparse
import os
import subprocess
import sys
import textwrap
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_scale import CLIENT, children, cpu_seconds

RUN_ID = "0b3d8c3e-6a55-4a2c-9a39-1c8f1a8a3c11"

SERVER = textwrap.dedent("""
    import sys
    from gunicorn.app.base import BaseApplication

    port, floor, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
    answer = '{"id": "%s", "status": "ACCEPT"}' % run_id
    if floor == "wsgi":
        def app(environ, start_response):
            environ["wsgi.input"].read()
            body = answer.encode()
            start_response("201 CREATED", [("Content-Type", "application/json"),
                                           ("Content-Length", str(len(body)))])
            return [body]
    else:
        from flask import Flask, request
        app = Flask(__name__)

        @app.post("/api/<path:path>")
        def any_post(path):
            request.get_json()
            return {"id": run_id, "status": "ACCEPT"}, 201

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"127.0.0.1:{port}", "workers": 1, "threads": 8,
                               "worker_class": "app.serving.KeepAliveThreadWorker"}.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()
""")


def measure(floor, clients, seconds, port):
    """The worker's CPU milliseconds per lifecycle and lifecycles/s for one floor."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), floor, RUN_ID],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        while True:
            try:
                httpx.post(f"{api}/flow_runs/", json={})
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        warm = subprocess.run(
            [sys.executable, "-c", CLIENT, api, RUN_ID, "1"], capture_output=True, text=True
        )
        assert warm.returncode == 0, warm.stderr
        workers = children(server.pid)
        before = cpu_seconds(workers)
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CLIENT, api, RUN_ID, str(seconds)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(clients)
        ]
        done = sum(int(p.communicate()[0]) for p in procs)
        elapsed = time.monotonic() - started
        return (cpu_seconds(workers) - before) / done * 1000, done / elapsed
    finally:
        server.terminate()
        server.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--port", type=int, default=4962)
    args = parser.parse_args()
    rows = [
        (floor, *measure(floor, args.clients, args.seconds, args.port))
        for floor in ("wsgi", "flask")
    ]
    print(f"load average: {os.getloadavg()[0]:.1f}; {args.clients} client processes")
    print("| floor | worker CPU ms/lifecycle | lifecycles/s |")
    print("|---|---|---|")
    for floor, cpu_ms, rate in rows:
        print(f"| {floor} | {cpu_ms:.2f} | {rate:.1f} |")


if __name__ == "__main__":
    main()
