"""A retention prune of 100,000 old flow runs on the 1,000,000-run database while the dashboard
is read (issue 21 part 4).

1. Seeds (or reuses) the database ``orion_bench_retention`` exactly as ``bench_ui.py`` seeds
   ``orion_bench_ui`` (1,000,000 flow runs, 10,000,000 task runs, each with a state row),
   applies pending migrations (0023, the partial index retention walks: its build time is
   printed) and refreshes the rollup.
2. Starts a reader process that builds the app on that database and requests dashboard
   pages in turn through the Flask test client, without pause, recording each request's
   time: the dashboard (last day), its last-week and all-runs fragments (read from the
   rollup, whose pruned hours change) and the flow runs list.
3. Lets the reader run alone for ``--baseline`` seconds, then prunes, in this process, the
   ``--runs`` oldest finished flow runs (the cutoff is the terminal-state time of the
   ``--runs``+1-th oldest) with ``app.services.retention.prune``, while the reader goes on.
4. Prints: runs and rows deleted, deleted runs per second (wall, including the rollup
   refresh that ends the prune, timed apart too), each batch's lock-holding time (its
   transaction, first statement to commit) p50 / p95 / max and its size, the dashboard's
   p50 / p95 / max before and during the prune, per page and overall, and the load average
   sampled every 5 s.

The prune deletes: a second run prunes the next oldest runs of a database that has fewer.
``--fresh`` drops the database first, so the run starts from 1,000,000 again (reseeding
takes 10-25 minutes).

Usage: nice python bench/bench_retention.py [--runs 100000] [--baseline 20] [--fresh]
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_ui

bench_ui.DATABASE = "orion_bench_retention"
bench_ui.URL = bench_ui.SERVER + bench_ui.DATABASE
URL = bench_ui.URL
PAGES = (
    "dashboard, last day",
    "dashboard fragment, last week",
    "dashboard fragment, custom window over all runs",
    "flow runs, unfiltered",
)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(samples, share):
    ordered = sorted(samples)
    return ordered[max(0, round(len(ordered) * share) - 1)]


def read_dashboard(stop, ready, results):
    """The reader process: request the pages of :data:`PAGES` in turn until ``stop`` is
    set; put ``[(phase, label, milliseconds)]`` on ``results`` (phase: "prune" once the
    main process has set ``pruning``)."""
    from app import create_app

    app = create_app({"DATABASE_URL": URL, "DATABASE_MIGRATE_ON_START": False})
    client = app.test_client()
    conn = bench_ui.connect()
    listed = [page for page in bench_ui.pages(conn.cursor()) if page[0] in PAGES]
    conn.close()
    samples = []
    for _label, path, htmx in listed:  # warm-up
        assert client.get(path, headers={"HX-Request": "true"} if htmx else {}).status_code == 200
    ready.set()
    while not stop["stop"].is_set():
        for label, path, htmx in listed:
            started = time.perf_counter()
            response = client.get(path, headers={"HX-Request": "true"} if htmx else {})
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (path, response.status_code)
            phase = "prune" if stop["pruning"].is_set() else "before"
            samples.append((phase, label, elapsed))
    results.put(samples)


def sample_load(stop, loads):
    while not stop.wait(5):
        with open("/proc/loadavg") as f:
            loads.append(float(f.read().split()[0]))


def prepare(fresh):
    """Seed or reuse the database, migrate it (timing each migration), refresh the rollup."""
    from app import migrations
    from app.config import load_config
    from app.db import database, init_database

    if fresh:
        admin = bench_ui.connect("postgres")
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {bench_ui.DATABASE} WITH (FORCE)")
        admin.close()
    bench_ui.seed()
    init_database(load_config({"DATABASE_URL": URL}))
    with database.connection_context():
        started = time.perf_counter()
        applied = migrations.upgrade(database)
        if applied:
            log(f"applied {', '.join(applied)} in {time.perf_counter() - started:.1f} s")
    bench_ui.refresh_rollup()


def cutoff_for(runs):
    """The terminal-state time before which exactly the ``runs`` oldest finished runs lie,
    and how many runs there are."""
    conn = bench_ui.connect()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT state_timestamp FROM flow_run WHERE state_type IN "
            "('CANCELLED', 'COMPLETED', 'CRASHED', 'FAILED') "
            "ORDER BY state_timestamp OFFSET %s LIMIT 1",
            (runs,),
        )
        cutoff = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM flow_run")
        total = cur.fetchone()[0]
    conn.close()
    return cutoff, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--baseline", type=float, default=20)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    prepare(args.fresh)
    cutoff, total = cutoff_for(args.runs)
    log(f"{total:,} flow runs; pruning the finished ones that finished before {cutoff}")

    from app.db import database
    from app.services import retention, rollups

    # Fork the reader with no connection open here (a forked pooled socket would be shared).
    database.close_all()
    context = multiprocessing.get_context("fork")
    stop = {"stop": context.Event(), "pruning": context.Event()}
    ready, results = context.Event(), context.Queue()
    reader = context.Process(target=read_dashboard, args=(stop, ready, results))
    reader.start()
    assert ready.wait(120), "the reader did not start"
    loads, load_stop = [], threading.Event()
    threading.Thread(target=sample_load, args=(load_stop, loads), daemon=True).start()
    time.sleep(args.baseline)

    refresh = rollups.refresh_flow_run_hourly
    refresh_seconds = []

    def timed_refresh(*a, **kw):
        started = time.perf_counter()
        try:
            return refresh(*a, **kw)
        finally:
            refresh_seconds.append(time.perf_counter() - started)

    retention.rollups.refresh_flow_run_hourly = timed_refresh
    stop["pruning"].set()
    started = time.perf_counter()
    with database.connection_context():
        result = retention.prune(cutoff.replace(tzinfo=None))
    wall = time.perf_counter() - started
    stop["stop"].set()
    samples = results.get(timeout=120)
    reader.join()
    load_stop.set()

    deleted = result.deleted
    held = [seconds * 1000 for _, seconds in result.batches]
    sizes = [size for size, _ in result.batches]
    print(f"\nload average during the run (every 5 s): {min(loads):.1f}-{max(loads):.1f}")
    print(f"deleted: {', '.join(f'{k} {v:,}' for k, v in deleted.items())}")
    print(
        f"prune wall {wall:.1f} s (rollup refresh {refresh_seconds[0]:.2f} s of it): "
        f"{deleted['flow_runs'] / wall:,.0f} flow runs/s, "
        f"{sum(deleted.values()) / wall:,.0f} rows/s"
    )
    print(
        f"batches: {len(held):,}; lock held p50 {statistics.median(held):.1f} ms, "
        f"p95 {percentile(held, 0.95):.1f} ms, max {max(held):.1f} ms; "
        f"over 100 ms: {sum(1 for h in held if h > 100)}; "
        f"runs per batch p50 {statistics.median(sizes):.0f} (min {min(sizes)}, max {max(sizes)})"
    )
    print("\n| page | before: n, p50 / p95 / max ms | during the prune: n, p50 / p95 / max ms |")
    print("|---|---|---|")
    for label in (*PAGES, "all pages"):
        cells = []
        for phase in ("before", "prune"):
            times = [ms for p, page, ms in samples if p == phase and label in (page, "all pages")]
            cells.append(
                f"{len(times)}, {statistics.median(times):.0f} / "
                f"{percentile(times, 0.95):.0f} / {max(times):.0f}"
            )
        print(f"| {label} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
