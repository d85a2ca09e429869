"""RayTaskRunner on a local Ray (one ``ray.init()`` for the module: Ray starts slowly) and a
real ``orion start`` (PostgreSQL; see tests/task_runners/common.py)."""

import pytest

from client import OrionClient, ThreadPoolTaskRunner, flow, get_run_logger, task, using_client
from client.api.settings import Settings
from client.task_runners import RayTaskRunner
from tests.task_runners.common import FLOW_ENV, all_logs, recorded, run_server, worker_of


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
