"""Blocks budget (issue 15): reading a block document by name, p50 ≤ 3 ms.

For each backend (a real ``orion start``, one gthread worker, on SQLite in a temporary
ORION_HOME, or on the recreated PostgreSQL database ``orion_bench_blocks``): saves a
``secret`` document and a ``docker-container`` document nesting a ``docker-registry`` one
(the system types, registered at start), plus ``--others`` more secrets so the table is not
trivially small, then times over one keep-alive httpx client what a Prefect client's
``Block.load("slug/name")`` sends: ``GET /api/block_types/slug/{slug}/block_documents/name/
{name}?include_secrets=true``, ``--runs`` times each. Latencies are measured at the client,
HTTP included. Also timed: creating a document (``POST /api/block_documents/``), and, as
a yardstick for how loaded the machine is, ``GET /api/flows/{id}`` in the same loop.

Usage: python bench/bench_blocks.py [--runs 2000] [--others 200]
                                    [--backends sqlite,postgres] [--port 4462]
Prints a Markdown table.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_blocks"


def recreate_pg_database():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_blocks WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_blocks")
    conn.close()


def start_server(home, port, database_url=None):
    """``orion start`` on ``port``; returns the process once /api/health answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update(ORION_HOME=home, ORION_SERVER_PORT=str(port), ORION_SERVER_WORKERS="1")
    if database_url:
        env["ORION_DATABASE_URL"] = database_url
    log = open(os.path.join(home, "server.log"), "w")
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "orion"), "start"],
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            sys.exit(f"orion start exited; see {log.name}")
        time.sleep(0.1)
    process.kill()
    sys.exit("orion start did not become healthy in 60 s")


def schema_of(api, slug):
    block_type = api.get(f"/block_types/slug/{slug}").json()
    return api.post(
        "/block_schemas/filter",
        json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
    ).json()[0]


def create(api, schema, name, data):
    response = api.post(
        "/block_documents/",
        json={
            "name": name,
            "data": data,
            "block_schema_id": schema["id"],
            "block_type_id": schema["block_type_id"],
        },
    )
    response.raise_for_status()
    return response.json()


def timed(call, runs):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def measure(port, runs, others):
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api") as api:
        secret = schema_of(api, "secret")
        registry = schema_of(api, "docker-registry")
        container = schema_of(api, "docker-container")
        create_times = []
        for i in range(others):
            started = time.perf_counter()
            create(api, secret, f"other-{i}", {"value": f"v{i}"})
            create_times.append((time.perf_counter() - started) * 1000)
        create(api, secret, "api-token", {"value": "s3cr3t"})
        hub = create(
            api,
            registry,
            "hub",
            {"username": "me", "password": "pw", "registry_url": "https://hub.example"},
        )
        create(
            api,
            container,
            "job",
            {"image": "python:3.11", "image_registry": {"$ref": {"block_document_id": hub["id"]}}},
        )

        def read(slug, name):
            def call():
                response = api.get(
                    f"/block_types/slug/{slug}/block_documents/name/{name}",
                    params={"include_secrets": "true"},
                )
                assert response.status_code == 200, response.text

            return call

        flow = api.post("/flows/", json={"name": "yardstick"}).json()

        def read_flow():
            assert api.get(f"/flows/{flow['id']}").status_code == 200

        for _ in range(50):  # warm up
            read("secret", "api-token")()
        return {
            "yardstick: GET /flows/{id}": timed(read_flow, runs),
            "read secret by name": timed(read("secret", "api-token"), runs),
            "read nested container by name": timed(read("docker-container", "job"), runs),
            "create secret": (statistics.median(create_times) if create_times else None, None),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--others", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--port", type=int, default=4462)
    args = parser.parse_args()
    results = {}
    for offset, backend in enumerate(args.backends.split(",")):
        home = tempfile.mkdtemp(prefix=f"orion-bench-blocks-{backend}-")
        url = None
        if backend == "postgres":
            recreate_pg_database()
            url = PG_BENCH
        process = start_server(home, args.port + offset, url)
        try:
            results[backend] = measure(args.port + offset, args.runs, args.others)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    backends = list(results)
    print("| figure | " + " | ".join(backends) + " |")
    print("|---|" + "---|" * len(backends))
    for figure in next(iter(results.values())):
        for index, label in enumerate(("p50", "p95")):
            cells = [results[b][figure][index] for b in backends]
            if all(c is None for c in cells):
                continue
            print(
                f"| {figure}, {label} | "
                + " | ".join(f"{c:.2f} ms" if c is not None else "" for c in cells)
                + " |"
            )


if __name__ == "__main__":
    main()
