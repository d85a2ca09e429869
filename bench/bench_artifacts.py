"""Artifacts at scale: each key's latest, through the API and the dashboard.

Seeds a fresh database (SQLite in a temporary ORION_HOME, or the recreated PostgreSQL
database ``orion_bench_artifacts``) with ``--artifacts`` artifacts, two in three with one of
``--keys`` keys (the rest keyless, as link artifacts usually are), one a second, in bulk
inserts, with each key's latest (its newest) in ``artifact_collection`` as the service
keeps it; then builds the app in-process and times, through the Flask test client, what reads
each key's latest (``POST /api/artifacts/latest/filter`` with several sorts, a page further
on and a key filter, as Prefect 2.20's UI sends; the dashboard's ``/artifacts``) and a key's
versions (``/artifacts/key/<key>``). Server-side time, no network: median of ``--repeat``
after a warm-up.

Usage: python bench/bench_artifacts.py [--backend sqlite|postgres] [--artifacts 300000]
                                       [--keys 100] [--repeat 5]
Prints a Markdown table.
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PG_ADMIN = "dbname=postgres user=postgres host=127.0.0.1"
PG_BENCH = "postgresql://postgres@127.0.0.1:5432/orion_bench_artifacts"
CHUNK = 5000


def recreate_pg_database():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS orion_bench_artifacts WITH (FORCE)")
        cur.execute("CREATE DATABASE orion_bench_artifacts")
    conn.close()


def seed(database, count, keys):
    from app.models import Artifact, ArtifactCollection

    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    rows = []
    newest = {}
    for i in range(count):
        when = start + datetime.timedelta(seconds=i)
        row = {
            "id": uuid.uuid4(),
            "created": when,
            "updated": when,
            "key": f"report-{i % keys}" if i % 3 else None,
            "type": "markdown",
            "data": f"# Report {i}",
        }
        rows.append(row)
        if row["key"] is not None:
            newest[row["key"]] = {
                "key": row["key"],
                "latest_id": row["id"],
                "latest_created": when,
            }
        if len(rows) == CHUNK or i == count - 1:
            with database.atomic():
                Artifact.insert_many(rows).execute()
            rows = []
    latest = list(newest.values())
    for at in range(0, len(latest), CHUNK):
        with database.atomic():
            ArtifactCollection.insert_many(latest[at : at + CHUNK]).execute()
    database.execute_sql("ANALYZE")


def timed(client, method, path, body, repeat):
    call = client.post if method == "POST" else client.get
    times = []
    for _ in range(repeat + 1):
        began = time.perf_counter()
        response = call(path, json=body) if body is not None else call(path)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times[1:]) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--artifacts", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    os.environ["ORION_HOME"] = tempfile.mkdtemp(prefix="orion-bench-artifacts-")
    if args.backend == "postgres":
        recreate_pg_database()
        os.environ["ORION_DATABASE_URL"] = PG_BENCH
    else:
        os.environ.pop("ORION_DATABASE_URL", None)

    from app import create_app, migrations
    from app.db import database

    app = create_app()
    with app.app_context(), database.connection_context():
        migrations.upgrade(database)
        began = time.perf_counter()
        seed(database, args.artifacts, args.keys)
        print(f"seeded {args.artifacts:,} artifacts in {time.perf_counter() - began:.0f} s")

    client = app.test_client()
    client.environ_base["HTTP_HOST"] = "127.0.0.1"
    latest = "/api/artifacts/latest/filter"
    cases = [
        ("POST", latest, {"sort": "CREATED_DESC", "limit": 50}),
        ("POST", latest, {"sort": "KEY_ASC", "limit": 50}),
        ("POST", latest, {"sort": "CREATED_DESC", "limit": 50, "offset": 50}),
        ("POST", latest, {"artifacts": {"key": {"like_": "report-1"}}, "limit": 50}),
        ("GET", "/artifacts", None),
        ("GET", "/artifacts?page=2", None),
        ("GET", "/artifacts?key=report-1", None),
        ("GET", "/artifacts/key/report-7", None),
        ("GET", "/artifacts/key/report-7?page=20", None),
    ]
    print(f"\n{args.backend}, {args.artifacts:,} artifacts, {args.keys:,} keys")
    print("| request | median ms |\n|---|---|")
    for method, path, body in cases:
        label = f"{method} {path}" + (f" {body}" if body else "")
        print(f"| `{label}` | {timed(client, method, path, body, args.repeat):.0f} |")


if __name__ == "__main__":
    main()
