"""RayTaskRunner on a local Ray (one ``ray.init()`` for the module: Ray starts slowly) and a
real ``orion start`` (PostgreSQL; see tests/task_runners/common.py)."""

import json
import os
import subprocess
import sys
import time

import pytest

from client import OrionClient, ThreadPoolTaskRunner, flow, get_run_logger, task, using_client
from client.api.settings import Settings
from client.task_runners import RayTaskRunner
from tests.support import free_port
from tests.task_runners.common import (
    FLOW_ENV,
    all_logs,
    kill_when_written,
    recorded,
    run_server,
    sleeps_on_first_attempt,
    worker_of,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with run_server(tmp_path_factory, "ray") as server:
        yield server


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("ray-results")


@pytest.fixture(scope="module")
def ray_session(results):
    """A local Ray for the module; its workers store results where this process does."""
    import ray

    env_vars = {"ORION_RESULTS_STORAGE": str(results)}
    env_vars.update({k: str(v) for k, v in FLOW_ENV.items()})
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env_vars},
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def orion(server, results, monkeypatch):
    monkeypatch.setenv("ORION_RESULTS_STORAGE", str(results))
    settings = Settings(api_retries=3, api_retry_delay_seconds=0.1, heartbeat_seconds=1)
    with OrionClient(server.api_url, settings=settings) as client, using_client(client):
        yield client


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


@flow
def mixed():
    incs = inc.map(range(8))
    doubles = double.map(incs)
    first = cached_square.submit(4, wait_for=doubles)
    again = cached_square.submit(4, wait_for=[first])
    failed = always_fails.submit(again)
    never = inc.submit(failed)
    with pytest.raises(ValueError, match="boom 16"):
        failed.result()
    never.wait()
    return sum(d.result() for d in doubles) + again.result()


def test_a_flow_on_ray_is_recorded_as_on_the_thread_runner(orion, ray_session):
    on_threads = mixed.with_options(task_runner=ThreadPoolTaskRunner(4))(return_state=True)
    on_ray = mixed.with_options(task_runner=RayTaskRunner())(return_state=True)
    assert on_threads.is_completed() and on_ray.is_completed()
    ray_run = on_ray.state_details["flow_run_id"]
    expected = recorded(orion, on_threads.state_details["flow_run_id"])
    got = recorded(orion, ray_run)
    assert len(got) == 20
    assert got == expected
    assert got["cached_square-1"]["states"] == [("COMPLETED", "Cached")]
    assert got["always_fails-0"]["run_count"] == 2
    assert got["inc-8"]["states"] == [("PENDING", "NotReady")]
    runs = orion.read_task_runs(flow_run_filter={"id": {"any_": [ray_run]}})
    workers = {worker_of(orion, r) for r in runs if r["run_count"]}
    assert workers and all(" pid " in w for w in workers), workers
    assert sum("doubling" in message for message in all_logs(orion, ray_run)) == 8
    # Ray stays up for the next flow run: the runner used the module's session.
    assert ray_session.is_initialized()


@pytest.mark.parametrize(
    ("retries", "final", "run_count"), [(1, "COMPLETED", 2), (0, "CRASHED", 1)]
)
def test_a_worker_killed_mid_task_retries_per_policy_or_crashes(
    orion, ray_session, tmp_path, retries, final, run_count
):
    """SIGKILL of the Ray worker running a task: Ray runs it again, and that attempt ends the
    lost one per the task's policy: retried to Completed, or Crashed; never Running."""
    path = tmp_path / "pid"
    killer = kill_when_written(path)

    @flow(task_runner=RayTaskRunner())
    def killed():
        future = sleeps_on_first_attempt.with_options(retries=retries).submit(str(path))
        future.wait()
        return future.task_run["id"]

    started = time.monotonic()
    task_run = orion.read_task_run(killed())
    assert time.monotonic() - started < 90
    killer.join(5)
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


UNREACHABLE = """
import json, sys
from client import flow, task
from client.task_runners import RayTaskRunner

@task
def inc(x):
    return x + 1

@flow(task_runner=RayTaskRunner(sys.argv[1], connect_timeout=float(sys.argv[2])))
def unreachable():
    return inc.submit(1).result()

print(json.dumps(unreachable(return_state=True).state_details["flow_run_id"]))
"""


def test_an_address_where_nothing_answers_fails_the_flow_run_with_the_reason(server, orion):
    """In a process of its own (this one's Ray is connected: the runner would use it). A
    closed port fails at once; ``connect_timeout`` bounds the check."""
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", UNREACHABLE, address, "2"],
        env={**os.environ, "ORION_API_URL": server.api_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 30, elapsed  # ray.init alone retries such an address for a minute
    run = orion.read_flow_run(json.loads(done.stdout.strip().splitlines()[-1]))
    assert run["state"]["type"] == "FAILED"
    assert f"RayTaskRunner could not connect to Ray at {address}" in run["state"]["message"]
    assert "Connection refused" in run["state"]["message"]
    assert orion.read_task_runs(flow_run_filter={"id": {"any_": [run["id"]]}}) == []


def test_connect_timeout_must_be_positive():
    with pytest.raises(ValueError, match="connect_timeout must be more than 0 seconds"):
        RayTaskRunner("127.0.0.1:6379", connect_timeout=0)
