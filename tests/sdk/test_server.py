"""Flows in their own processes against a real ``orion start`` (SQLite and PostgreSQL), and
in ephemeral mode: the whole stack, with real signals and a real server restart."""

import signal
import time

import pytest

from client import OrionClient
from client.api.settings import Settings
from tests.sdk.servers import run_script, start_script
from tests.support import BACKENDS, module_server, orion_env, wait_for

# Quick, patient client retries: a restarting server is back within a few seconds.
CLIENT_ENV = {
    "ORION_API_RETRIES": 40,
    "ORION_API_RETRY_DELAY_SECONDS": 0.1,
    "ORION_API_RETRY_MAX_DELAY_SECONDS": 0.5,
    "ORION_HEARTBEAT_SECONDS": 1,
    "ORION_LOGS_INTERVAL_SECONDS": 0.2,
}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    """A running ``orion start`` on the backend's port and database, stopped at the end."""
    options = {"workers": 1, "threads": 8, "TASK_CONCURRENCY_SLOT_WAIT_SECONDS": 0.5}
    with module_server(tmp_path_factory, request.param, "sdk_server", **options) as server:
        yield server


@pytest.fixture
def api(server):
    with OrionClient(server.api_url, settings=Settings(api_retries=3)) as orion:
        yield orion


def flow_env(tmp_path, server):
    return orion_env(
        tmp_path / "home",
        ORION_API_URL=server.api_url,
        ORION_RESULTS_STORAGE=tmp_path / "results",
        **CLIENT_ENV,
    )


def _flow_run_named(api, name):
    [run] = api.read_flow_runs(flow_run_filter={"name": {"any_": [name]}})
    return run


def _all_logs(api, flow_run_id):
    messages, offset = [], 0
    while True:
        page = api.read_logs({"flow_run_id": {"any_": [flow_run_id]}}, limit=200, offset=offset)
        if not page:
            return messages
        messages.extend(r["message"] for r in page)
        offset += len(page)


PIPELINE = """
    import sys
    from client import ThreadPoolTaskRunner, flow, get_run_logger, task, task_input_hash

    @task(cache_key_fn=task_input_hash)
    def square(x):
        return x * x

    @task(retries=2, retry_delay_seconds=0.2)
    def flaky(attempts=[]):
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("first attempt fails")
        return len(attempts)

    @flow
    def child(x: int):
        return square(x) + 1

    @flow(flow_run_name=sys.argv[1] if len(sys.argv) > 1 else "{tag}-pipeline",
          task_runner=ThreadPoolTaskRunner(4))
    def pipeline(tag: str):
        logger = get_run_logger()
        for i in range(10_000):
            logger.info("line %d", i)
        mapped = [f.result() for f in square.map(range(5))]
        return {"mapped": mapped, "flaky": flaky(), "child": child(3)}

    print("RESULT", pipeline(sys.argv[2]))
"""


def test_flows_in_processes_against_a_server(server, api, tmp_path):
    env = flow_env(tmp_path, server)
    for run_name in ("first", "second"):
        code, out = run_script(
            tmp_path,
            f"pipeline-{run_name}",
            PIPELINE.replace(
                'sys.argv[1] if len(sys.argv) > 1 else "{tag}-pipeline"', repr(run_name)
            ).replace("sys.argv[2]", repr(run_name)),
            env,
        )
        assert code == 0, out
        assert "RESULT {'mapped': [0, 1, 4, 9, 16], 'flaky': 2, 'child': 10}" in out
    first, second = _flow_run_named(api, "first"), _flow_run_named(api, "second")
    assert first.state.is_completed() and second.state.is_completed()
    second_tasks = api.read_task_runs(flow_run_filter={"id": {"any_": [second["id"]]}})
    squares = [t for t in second_tasks if t["name"].startswith("square")]
    assert len(squares) == 5 and all(t.state.name == "Cached" for t in squares)
    first_tasks = api.read_task_runs(flow_run_filter={"id": {"any_": [first["id"]]}})
    [flaky] = [t for t in first_tasks if t["name"] == "flaky-0"]
    assert flaky.state.is_completed() and flaky.run_count == 2
    [stand_in] = [t for t in first_tasks if t["name"] == "child-0"]
    assert stand_in.state.is_completed()
    lines = [m for m in _all_logs(api, first["id"]) if m.startswith("line ")]
    assert lines == [f"line {i}" for i in range(10_000)]


SLEEPER = """
    import time
    from client import flow, task

    @task
    def nap():
        print("napping", flush=True)
        time.sleep(60)

    @flow(flow_run_name="sleeper")
    def sleeper():
        nap()

    sleeper()
"""


def test_sigterm_to_a_flow_process_reports_crashed(server, api, tmp_path):
    process = start_script(tmp_path, "sleeper", SLEEPER, flow_env(tmp_path, server))
    try:

        def task_running():
            runs = api.read_task_runs(
                task_run_filter={"name": {"any_": ["nap-0"]}},
                flow_run_filter={"name": {"any_": ["sleeper"]}},
            )
            return runs and runs[0].state.is_running() and runs[0]

        task_run = wait_for(task_running, 30, "the task run nap-0 to run")
        # The API says Running before the process has its answer: wait for the task's code.
        wait_for(lambda: "napping" in (tmp_path / "sleeper.out").read_text(), 30, "its code")
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = (tmp_path / "sleeper.out").read_text()
    assert code == -signal.SIGTERM, output
    run = _flow_run_named(api, "sleeper")
    assert run.state.is_crashed() and "SIGTERM" in run.state.message, output
    assert api.read_task_run(task_run["id"]).state.is_crashed(), output


STEADY = """
    import time
    from client import flow, get_run_logger, task

    @task
    def step(i):
        get_run_logger().info("step %d", i)
        time.sleep(0.05)
        return i

    @flow(flow_run_name="steady")
    def steady():
        return sum(step(i) for i in range(40))

    print("RESULT", steady())
"""


def test_flow_survives_a_server_restart_without_duplicates(server, api, tmp_path):
    process = start_script(tmp_path, "steady", STEADY, flow_env(tmp_path, server))
    try:
        wait_for(
            lambda: api.count_task_runs(flow_run_filter={"name": {"any_": ["steady"]}}) >= 5,
            30,
            "five task runs of steady",
        )
        server.stop()
        assert process.poll() is None, "the flow ended before the server went down"
        time.sleep(1)
        server.start()
        assert process.wait(120) == 0, (tmp_path / "steady.out").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "RESULT 780" in (tmp_path / "steady.out").read_text()
    run = _flow_run_named(api, "steady")
    assert run.state.is_completed()
    task_runs = api.read_task_runs(flow_run_filter={"id": {"any_": [run["id"]]}})
    assert sorted(t["name"] for t in task_runs) == sorted(f"step-{i}" for i in range(40))
    assert all(t.state.is_completed() for t in task_runs)
    steps = [m for m in _all_logs(api, run["id"]) if m.startswith("step ")]
    assert steps == [f"step {i}" for i in range(40)]


EPHEMERAL = """
    from client import flow, get_client, task

    @task
    def double(x):
        return 2 * x

    @flow(flow_run_name="local")
    def local():
        return [double(i) for i in range(3)]

    print("RESULT", local())
    with get_client() as orion:
        [run] = orion.read_flow_runs()
        print("STATE", run.state.name, orion.count_task_runs())
"""


@pytest.mark.skipif("sqlite" not in BACKENDS, reason="ephemeral mode runs on SQLite")
def test_ephemeral_mode_runs_flows_on_the_local_database(tmp_path):
    code, out = run_script(tmp_path, "ephemeral", EPHEMERAL, orion_env(tmp_path / "home"))
    assert code == 0, out
    assert "RESULT [0, 2, 4]" in out and "STATE Completed 3" in out
    assert (tmp_path / "home" / "orion.db").exists()
