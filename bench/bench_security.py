"""What the Host check, the throttle and the security headers add to one authenticated API
request (issue 18's budgets: throttling <= 0.2 ms a request; headers nothing measurable).

Every arm is a real ``create_app`` with an API key on one SQLite database in a temp folder,
called in-process through werkzeug's test client (the same overhead in every arm, so the
differences are what the arms add). The request is ``GET /api/admin/version`` with the right
key: the cheapest authenticated call, so nothing hides the difference. Arms:

- ``baseline``: no throttle (its two hooks taken out) and no security headers;
- ``headers``: the headers only;
- ``throttle (memory)``: throttle and headers, counts in memory (the default without Redis);
- ``throttle (redis)``: throttle and headers, counts in Redis (``--redis``).

The arms are interleaved in rounds (``--rounds``, ``--requests`` per arm per round); the
figures are the median over rounds of the mean wall and CPU (this process's) time per request,
and their differences to ``baseline``; on a loaded machine the CPU figures are the steadier
(but leave out the wait for Redis). A second table times the throttle's before-request check
alone (``Throttle.check``) and the bare storage read it makes. Prints Markdown
tables and the load average.

Usage: python bench/bench_security.py [--rounds 15] [--requests 2000]
       [--redis redis://127.0.0.1:6379/15]
"""

import argparse
import os
import statistics
import tempfile
import time

KEY = "bench-key"
PATH = "/api/admin/version"


def build(home, redis_url, throttle, headers, storage):
    from app import create_app, migrations
    from app.db import database
    from app.security import _security_headers

    settings = {
        "HOME": home,
        "API_KEY": KEY,
        "REDIS_URL": None,
        "THROTTLE_STORAGE_URL": redis_url if storage == "redis" else "memory://",
    }
    app = create_app(settings)
    with database.connection_context():
        migrations.upgrade(database)
    if not throttle:
        app.before_request_funcs[None].remove(app.extensions["orion.throttle"].check)
        app.after_request_funcs[None].remove(app.extensions["orion.throttle"].count)
    if not headers:
        app.after_request_funcs[None].remove(_security_headers)
    return app


def per_request(client, requests):
    """(wall, CPU) seconds per request, averaged over ``requests``."""
    headers = {"Authorization": f"Bearer {KEY}"}
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        response = client.get(PATH, headers=headers)
        assert response.status_code == 200, response.status_code
    return (time.perf_counter() - wall) / requests, (time.process_time() - cpu) / requests


def check_alone(app, repeat=5000):
    """(wall, CPU) microseconds of the throttle's before-request check alone, and of the bare
    storage read it makes."""
    from limits import parse

    throttle = app.extensions["orion.throttle"]
    item = parse(app.config["THROTTLE_FAILED_API_KEYS"])
    headers = {"Authorization": f"Bearer {KEY}"}
    figures = []
    with app.test_request_context(PATH, headers=headers):
        for step in (
            throttle.check,
            lambda: throttle._shared.test(item, "failed-api-key", "127.0.0.1"),
        ):
            for _ in range(200):
                step()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(repeat):
                step()
            figures.append(
                (
                    (time.perf_counter() - wall) / repeat * 1e6,
                    (time.process_time() - cpu) / repeat * 1e6,
                )
            )
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="orion-bench-security-")
    arms = {
        "baseline": (False, False, "memory"),
        "headers": (False, True, "memory"),
        "throttle (memory)": (True, True, "memory"),
        "throttle (redis)": (True, True, "redis"),
    }
    clients = {name: build(home, args.redis, *arm).test_client() for name, arm in arms.items()}
    for client in clients.values():
        per_request(client, 200)  # warm up
    times = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, client in clients.items():
            times[name].append(per_request(client, args.requests))
    print(f"GET {PATH} with the API key, in-process, {args.rounds} rounds x {args.requests}")
    print()
    print("| arm | wall per request | added (wall) | CPU per request | added (CPU) |")
    print("|---|---|---|---|---|")
    base = [statistics.median(t[i] for t in times["baseline"]) for i in (0, 1)]
    for name in arms:
        cells = []
        for i in (0, 1):
            median = statistics.median(t[i] for t in times[name])
            added = "" if name == "baseline" else f"{(median - base[i]) * 1e3:+.3f} ms"
            cells += [f"{median * 1e3:.3f} ms", added]
        print(f"| {name} | {' | '.join(cells)} |")
    print()
    print("| the check alone | wall | CPU | of which the storage read (wall, CPU) |")
    print("|---|---|---|---|")
    for name in ("throttle (memory)", "throttle (redis)"):
        (wall, cpu), (read_wall, read_cpu) = check_alone(clients[name].application)
        print(f"| {name} | {wall:.0f} us | {cpu:.0f} us | {read_wall:.0f} us, {read_cpu:.0f} us |")
    print()
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
