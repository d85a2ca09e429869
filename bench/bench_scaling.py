"""Per-operation costs for docs/scaling.md ("10 million runs a day, on paper"; issue 21 part 6).

1. **Lifecycles against a real server.** Starts ``orion start`` (one gunicorn worker, the
   periodic services off so only requests are measured) on a fresh PostgreSQL database
   ``orion_bench_scaling`` and runs, from one client over HTTP, ``--lifecycles`` flow run
   lifecycles of two shapes, one round each:

   - *bare*: create a SCHEDULED flow run, then set PENDING, RUNNING, COMPLETED (4 requests);
   - *with tasks*: the same, and while RUNNING ``--tasks`` task runs each created PENDING then
     set RUNNING and COMPLETED (3 requests a task), plus one POST of ``--logs`` log records.

   For each round it reads, before and after: the CPU (utime + stime, ``/proc/<pid>/stat``)
   of the gunicorn processes and of the PostgreSQL backends serving this database
   (``pg_stat_activity``), and the WAL position (``pg_current_wal_lsn()``). The WAL of the
   whole cluster also holds other databases' writes, so the WAL attributed to the round is
   read with ``pg_walinspect``: the records that touch a block of this database, plus every
   record of a transaction that did (its commit record).
2. **Rows and bytes.** For every table of this database and, if it exists, of the
   1,000,000-run database ``--big`` (seeded by bench_ui / bench_retention): rows,
   ``pg_total_relation_size`` (heap + indexes + TOAST), its indexes' share, bytes per row,
   and the largest indexes.

Usage: nice python bench/bench_scaling.py [--lifecycles 500] [--tasks 10] [--logs 20]
       [--port 4901] [--big orion_bench_retention]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import httpx
import psycopg2

SERVER = "postgresql://postgres@127.0.0.1:5432/"
DATABASE = "orion_bench_scaling"
SERVICES = ("SCHEDULER", "LATE_RUNS", "LIVENESS", "ROLLUP", "NOTIFICATIONS", "RETENTION")
TICKS = os.sysconf("SC_CLK_TCK")


def connect(dbname):
    conn = psycopg2.connect(SERVER + dbname)
    conn.autocommit = True
    return conn


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def server_pids(master):
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [master, *(int(p) for p in children.stdout.split())]


def backend_pids(admin):
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (DATABASE,),
        )
        return [pid for (pid,) in cur.fetchall()]


def start_server(port):
    home = tempfile.mkdtemp(prefix="orion-scaling-")
    env = dict(
        os.environ,
        ORION_HOME=home,
        ORION_DATABASE_URL=SERVER + DATABASE,
        ORION_SERVER_WORKERS="1",
        **{f"ORION_{name}_ENABLED": "false" for name in SERVICES},
    )
    env.pop("ORION_REDIS_URL", None)
    orion = os.path.join(os.path.dirname(sys.executable), "orion")
    proc = subprocess.Popen(
        [orion, "start", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit("server did not answer")


def set_state(client, kind, run_id, state_type):
    response = client.post(f"/{kind}/{run_id}/set_state", json={"state": {"type": state_type}})
    response.raise_for_status()
    assert response.json()["status"] == "ACCEPT", response.json()


def lifecycle(client, flow_id, tasks, logs, index):
    run = client.post(
        "/flow_runs/",
        json={"flow_id": flow_id, "state": {"type": "SCHEDULED"}, "parameters": {"i": index}},
    )
    run.raise_for_status()
    run_id = run.json()["id"]
    set_state(client, "flow_runs", run_id, "PENDING")
    set_state(client, "flow_runs", run_id, "RUNNING")
    for t in range(tasks):
        task = client.post(
            "/task_runs/",
            json={
                "flow_run_id": run_id,
                "task_key": f"task-{t}",
                "dynamic_key": "0",
                "state": {"type": "PENDING"},
            },
        )
        task.raise_for_status()
        set_state(client, "task_runs", task.json()["id"], "RUNNING")
        set_state(client, "task_runs", task.json()["id"], "COMPLETED")
    if logs:
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        records = [
            {
                "name": "prefect.flow_runs",
                "level": 20,
                "message": f"Processing batch {index}-{n}: 1,000 records written to s3://bucket",
                "timestamp": now,
                "flow_run_id": run_id,
            }
            for n in range(logs)
        ]
        client.post("/logs/", json=records).raise_for_status()
    set_state(client, "flow_runs", run_id, "COMPLETED")


def wal_of_database(admin, start, end):
    """``(records, record bytes, full-page image bytes)`` of the WAL between two LSNs that
    belongs to this database's transactions (see the module docstring)."""
    with admin.cursor() as cur:
        cur.execute("SELECT oid FROM pg_database WHERE datname = %s", (DATABASE,))
        oid = cur.fetchone()[0]
        cur.execute(
            """
            WITH w AS (SELECT * FROM pg_get_wal_records_info(%s, %s)),
                 ours AS (SELECT DISTINCT xid FROM w
                          WHERE block_ref LIKE %s AND xid <> '0'::xid)
            SELECT count(*), COALESCE(sum(record_length), 0), COALESCE(sum(fpi_length), 0)
            FROM w WHERE block_ref LIKE %s OR xid IN (SELECT xid FROM ours)
            """,
            (start, end, f"%/{oid}/%", f"%/{oid}/%"),
        )
        return cur.fetchone()


def measure_round(client, admin, master, flow_id, count, tasks, logs):
    with admin.cursor() as cur:
        cur.execute("CHECKPOINT")  # so the round's first writes to each page start alike
        cur.execute("SELECT pg_current_wal_lsn()")
        start_lsn = cur.fetchone()[0]
    backends = backend_pids(admin)
    server_before, pg_before = cpu_seconds(server_pids(master)), cpu_seconds(backends)
    started = time.perf_counter()
    for i in range(count):
        lifecycle(client, flow_id, tasks, logs, i)
    wall = time.perf_counter() - started
    backends_after = backend_pids(admin)
    server_cpu = cpu_seconds(server_pids(master)) - server_before
    pg_cpu = cpu_seconds(backends_after) - pg_before
    new = set(backends_after) - set(backends)
    with admin.cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn(), pg_current_wal_lsn() - %s", (start_lsn,))
        end_lsn, cluster_wal = cur.fetchone()
    records, record_bytes, fpi_bytes = wal_of_database(admin, start_lsn, end_lsn)
    requests = count * (4 + 3 * tasks + (1 if logs else 0))
    return {
        "lifecycles/s": count / wall,
        "requests": requests,
        "server CPU ms per lifecycle": server_cpu * 1000 / count,
        "server CPU ms per request": server_cpu * 1000 / requests,
        "PostgreSQL backend CPU ms per lifecycle": pg_cpu * 1000 / count,
        "WAL bytes per lifecycle (this database)": int(record_bytes) / count,
        "of which full-page images": int(fpi_bytes) / count,
        "WAL records per lifecycle": int(records) / count,
        "cluster WAL bytes per lifecycle (all databases)": int(cluster_wal) / count,
        "new backends during the round": len(new),
    }


TABLE_SIZES = """
SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid),
       pg_indexes_size(c.oid), pg_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND pg_total_relation_size(c.oid) > 65536
ORDER BY 3 DESC
"""
INDEX_SIZES = """
SELECT i.relname, t.relname, pg_relation_size(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' ORDER BY 3 DESC LIMIT %s
"""


def sizes(dbname, top_indexes):
    conn = connect(dbname)
    with conn.cursor() as cur:
        cur.execute("ANALYZE")
        cur.execute(TABLE_SIZES)
        tables = cur.fetchall()
        cur.execute(INDEX_SIZES, (top_indexes,))
        indexes = cur.fetchall()
        cur.execute("SELECT pg_database_size(current_database())")
        database_size = cur.fetchone()[0]
    conn.close()
    print(f"\n{dbname}: {database_size / 2**30:.2f} GiB in all")
    print("\n| table | rows | total MiB | indexes MiB | heap MiB | bytes/row (total) |")
    print("|---|---|---|---|---|---|")
    for name, rows, total, indexes_size, heap in tables:
        per_row = f"{total / rows:,.0f}" if rows > 0 else ""
        print(
            f"| {name} | {rows:,} | {total / 2**20:,.1f} | {indexes_size / 2**20:,.1f} | "
            f"{heap / 2**20:,.1f} | {per_row} |"
        )
    print("\n| index | table | MiB |\n|---|---|---|")
    for index, table, size in indexes:
        print(f"| {index} | {table} | {size / 2**20:,.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lifecycles", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--logs", type=int, default=20)
    parser.add_argument("--port", type=int, default=4901)
    parser.add_argument("--big", default="orion_bench_retention")
    args = parser.parse_args()
    admin = connect("postgres")
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DATABASE}")
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    proc, url = start_server(args.port)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            flow_id = client.post("/flows/", json={"name": "scaling"}).json()["id"]
            for _ in range(20):  # warm-up: connections, prepared statements
                lifecycle(client, flow_id, 1, 1, 0)
            with open("/proc/loadavg") as f:
                load_before = f.read().split()[:3]
            rounds = {
                "bare": measure_round(client, admin, proc.pid, flow_id, args.lifecycles, 0, 0),
                f"{args.tasks} tasks, {args.logs} logs": measure_round(
                    client, admin, proc.pid, flow_id, args.lifecycles, args.tasks, args.logs
                ),
            }
            with open("/proc/loadavg") as f:
                load_after = f.read().split()[:3]
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    names = list(rounds)
    print(f"\n| figure ({args.lifecycles} lifecycles a round) | {' | '.join(names)} |")
    print("|---|" + "---|" * len(names))
    for key in rounds[names[0]]:
        print(f"| {key} | " + " | ".join(f"{rounds[n][key]:,.2f}" for n in names) + " |")
    sizes(DATABASE, 10)
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.big,))
        big = cur.fetchone() is not None
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    if big:
        sizes(args.big, 15)
    admin.close()


if __name__ == "__main__":
    main()
