"""DaskTaskRunner against real Dask clusters and a real ``orion start``.

The module's cluster is ``dask scheduler`` plus two ``dask worker`` processes (one thread
each) on 127.0.0.1; one test starts a ``LocalCluster`` of its own. Flows run in this process
and their task runs on the workers, which report to the server over HTTP. The database does
not matter to what is tested here (the client and the workers); the server uses PostgreSQL,
the backend clusters would be deployed with (SQLite when the run is narrowed to it).
"""

import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client import (
    OrionClient,
    ThreadPoolTaskRunner,
    flow,
    get_run_logger,
    task,
    using_client,
)
from client.api.settings import Settings
from client.task_runners import DaskTaskRunner
from tests.support import REPO, free_port, orion_env
from tests.task_runners.common import (
    FLOW_ENV,
    all_logs,
    kill_when_written,
    recorded,
    run_server,
    sleeps_on_first_attempt,
    worker_of,
)

DASK = str(Path(sys.executable).parent / "dask")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory, "dask") as server:
        yield server


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("dask-results")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, results):
    """``dask scheduler`` and two ``dask worker`` processes (nannies restart a killed worker);
    yields ``(address, distributed.Client)``."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask-cluster")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = orion_env(folder / "home", ORION_RESULTS_STORAGE=results, **FLOW_ENV)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = open(folder / "dask.log", "ab")
    common = {"env": env, "cwd": str(REPO), "stdout": log, "stderr": subprocess.STDOUT}
    processes = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port)]
            + ["--dashboard-address", ":0"],
            **common,
        )
    ]
    for name in ("w0", "w1"):
        processes.append(
            subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--name", name]
                + ["--host", "127.0.0.1", "--dashboard-address", ":0"],
                **common,
            )
        )
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            yield address, client
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture
def orion(server, results, monkeypatch):
    monkeypatch.setenv("ORION_RESULTS_STORAGE", str(results))
    settings = Settings(api_retries=3, api_retry_delay_seconds=0.1, heartbeat_seconds=1)
    with OrionClient(server.api_url, settings=settings) as client, using_client(client):
        yield client


# --- the flows ----------------------------------------------------------------------------


@task
def inc(x):
    return x + 1


@task
def double(x):
    get_run_logger().info("doubling %s", x)
    return 2 * x


@task(cache_key_fn=lambda context, parameters: f"{context.flow_run_id}-{parameters['x']}")
def cached_square(x):
    return x * x


@task(retries=1)
def always_fails(x):
    raise ValueError(f"boom {x}")


@task(tags=["dask-one-at-a-time"])
def exclusive(x):
    time.sleep(0.3)
    return x


@task
def nap(x):
    time.sleep(0.5)
    return x


@flow
def two_hundred():
    """200 task runs: 91 chains inc -> double, cached runs (three of them hits), a task that
    fails after its retry, and two runs downstream of it that never start."""
    incs = inc.map(range(91))
    doubles = [double.submit(x) for x in incs]
    total = double.submit(incs[0], wait_for=doubles)
    first = cached_square.submit(3)
    again = cached_square.submit(3, wait_for=[first])
    squares = [cached_square.submit(i, wait_for=[again]) for i in range(11)]
    squares.append(cached_square.submit(3, wait_for=[again]))
    failed = always_fails.submit(1)
    downstream = [inc.submit(failed) for _ in range(2)]
    assert len(incs + doubles + [total, first, again, failed] + squares + downstream) == 200
    return total.result() + sum(s.result() for s in squares)


# --- tests ----------------------------------------------------------------------------------


def test_a_flow_of_200_tasks_is_recorded_as_on_the_thread_runner(orion, cluster):
    address, _ = cluster
    on_threads = two_hundred.with_options(task_runner=ThreadPoolTaskRunner(4))(return_state=True)
    on_dask = two_hundred.with_options(task_runner=DaskTaskRunner(address))(return_state=True)
    assert on_threads.is_completed() and on_dask.is_completed()
    threads_run = on_threads.state_details["flow_run_id"]
    dask_run = on_dask.state_details["flow_run_id"]
    expected, got = recorded(orion, threads_run), recorded(orion, dask_run)
    assert len(got) == len(expected) == 200
    assert got == expected
    assert got["cached_square-1"]["states"] == [("COMPLETED", "Cached")]
    assert got["always_fails-0"]["run_count"] == 2
    assert got["cached_square-13"]["states"] == [("COMPLETED", "Cached")]
    assert got["inc-92"]["states"] == [("PENDING", "NotReady")]
    # Every run that ran went to one of the two workers, and both were used.
    runs = orion.read_task_runs(flow_run_filter={"id": {"any_": [dask_run]}}, limit=200)
    workers = {worker_of(orion, r) for r in runs if r["run_count"]}
    assert workers == set(cluster[1].scheduler_info()["workers"])
    # Logs from the workers arrived before the flow run ended.
    assert sum("doubling" in message for message in all_logs(orion, dask_run)) == 92


def test_on_two_workers_sleeping_tasks_take_at_most_60_percent_of_one_thread(orion, cluster):
    address, _ = cluster

    @flow
    def naps(n):
        return [f.result() for f in nap.map(range(n))]

    start = time.perf_counter()
    assert naps.with_options(task_runner=ThreadPoolTaskRunner(1))(20) == list(range(20))
    one_thread = time.perf_counter() - start
    start = time.perf_counter()
    assert naps.with_options(task_runner=DaskTaskRunner(address))(20) == list(range(20))
    on_dask = time.perf_counter() - start
    assert on_dask <= 0.6 * one_thread, (on_dask, one_thread)


def test_a_task_failing_on_a_worker_fails_after_its_retries(orion, cluster):
    address, client = cluster

    @flow(task_runner=DaskTaskRunner(address))
    def failing():
        future = always_fails.submit(7)
        with pytest.raises(ValueError, match="boom 7"):
            future.result()
        return future.task_run["id"]

    task_run = orion.read_task_run(failing())
    assert task_run["state"]["type"] == "FAILED"
    assert task_run["state"]["message"] == ("Task run encountered an exception: ValueError: boom 7")
    assert task_run["run_count"] == 2
    assert worker_of(orion, task_run) in client.scheduler_info()["workers"]


def test_concurrency_limits_apply_on_the_workers(orion, cluster):
    address, _ = cluster
    orion.create_concurrency_limit("dask-one-at-a-time", 1)

    @flow(task_runner=DaskTaskRunner(address))
    def limited():
        return [f.result() for f in exclusive.map(range(4))]

    assert limited() == [0, 1, 2, 3]
    runs = orion.read_task_runs(task_run_filter={"tags": {"all_": ["dask-one-at-a-time"]}})
    spans = sorted(
        (
            datetime.datetime.fromisoformat(r["start_time"]),
            datetime.datetime.fromisoformat(r["end_time"]),
        )
        for r in runs
    )
    assert len(spans) == 4
    # One at a time: each 0.3 s run starts after the previous ended (two workers would run
    # two at once). A start may be stamped a little before the end it waited for: the
    # server takes its time before it waits for the limit's lock.
    slack = datetime.timedelta(seconds=0.1)
    assert all(end - slack <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize(
    ("retries", "final", "run_count"), [(1, "COMPLETED", 2), (0, "CRASHED", 1)]
)
def test_a_worker_killed_mid_task_retries_per_policy_or_crashes(
    orion, cluster, tmp_path, retries, final, run_count
):
    address, client = cluster
    path = tmp_path / "pid"
    killer = kill_when_written(path)

    @flow(task_runner=DaskTaskRunner(address))
    def killed():
        future = sleeps_on_first_attempt.with_options(retries=retries).submit(str(path))
        future.wait()
        return future.task_run["id"]

    task_run = orion.read_task_run(killed())
    killer.join(5)
    client.wait_for_workers(2, timeout=60)
    assert task_run["state"]["type"] == final
    assert task_run["run_count"] == run_count
    states = [(s.type.value, s.name) for s in orion.read_task_run_states(task_run["id"])]
    if retries:
        assert states == [
            ("RUNNING", "Running"),
            ("SCHEDULED", "AwaitingRetry"),
            ("RUNNING", "Retrying"),
            ("COMPLETED", "Completed"),
        ]
    else:
        assert states == [("RUNNING", "Running"), ("CRASHED", "Crashed")]
        assert "was lost with the worker that ran it" in task_run["state"]["message"]


def test_a_scheduler_that_does_not_answer_fails_the_flow_run_with_the_reason(orion):
    address = f"tcp://127.0.0.1:{free_port()}"

    @flow(task_runner=DaskTaskRunner(address, connect_timeout=1))
    def unreachable():
        return inc.submit(1).result()

    state = unreachable(return_state=True)
    run = orion.read_flow_run(state.state_details["flow_run_id"])
    assert run["state"]["type"] == "FAILED"
    assert f"could not connect to the Dask scheduler at {address}" in run["state"]["message"]
    assert orion.read_task_runs(flow_run_filter={"id": {"any_": [run["id"]]}}) == []


def test_a_local_cluster_is_started_for_the_flow_run_and_stopped(orion):
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})

    @flow(task_runner=runner)
    def local():
        return [f.result() for f in double.map(inc.map(range(4)))]

    state = local(return_state=True)
    assert state.is_completed()
    runs = orion.read_task_runs(flow_run_filter={"id": {"any_": [state.state_details.flow_run_id]}})
    assert len(runs) == 8
    assert all(worker_of(orion, r).startswith("tcp://127.0.0.1:") for r in runs)


def test_importing_the_runners_loads_neither_dask_nor_ray():
    code = (
        "import sys, client\n"
        "from client import DaskTaskRunner, RayTaskRunner, flow\n"
        "@flow(task_runner=DaskTaskRunner('tcp://127.0.0.1:1'))\n"
        "def f(): pass\n"
        "RayTaskRunner()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed', 'ray'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
