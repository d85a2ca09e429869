"""The client against a real ``orion start`` process, on SQLite and PostgreSQL.

One server per backend (with an API key) serves the tests of calls over HTTP; the restart test
runs its own server, killed (SIGKILL, mid-request) and started again while a series of calls
is under way: every call must succeed thanks to the client's retries, and nothing may be
stored twice. Servers listen on a port from ``ORION_TEST_PORTS`` and are always stopped.
"""

import datetime
import logging
import subprocess
import threading
import time
import uuid

import pytest

from client import OrionClient
from client.api.exceptions import NotAnOrionAPI, ObjectNotFound, Unauthorized, ValidationError
from client.api.settings import Settings
from client.api.states import Completed, Running, SetStateStatus
from tests.client.conftest import make_task
from tests.support import ORION, OrionServer, isolated_database_url

API_KEY = "sesame"
# Seconds `orion start` may take to answer /api/health.
START_BUDGET_SECONDS = 20


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(f"server-{backend}")
    orion_server = OrionServer(
        tmp_path,
        workers=1,
        threads=4,
        api_key=API_KEY,
        database_url=isolated_database_url(backend, tmp_path, "server"),
    )
    try:
        orion_server.start(START_BUDGET_SECONDS)
        yield orion_server
    finally:
        orion_server.stop()


@pytest.fixture
def remote(server):
    with OrionClient(
        server.api_url,
        settings=Settings(api_key=API_KEY, api_retries=2, api_retry_delay_seconds=0.05),
    ) as c:
        yield c


def test_a_flow_over_http(remote):
    assert remote.api_healthcheck() is None and remote.hello() == "👋"
    flow_id = remote.create_flow_from_name(f"etl-{uuid.uuid4()}")
    run = remote.create_flow_run(flow_id, parameters={"n": 3})
    assert remote.set_flow_run_state(run.id, Running()).status is SetStateStatus.ACCEPT
    remote.send_flow_run_heartbeat(run.id)
    assert remote.read_flow_run(run.id).last_heartbeat is not None
    tag = f"db-{uuid.uuid4()}"
    remote.create_concurrency_limit(tag, 1)
    task = make_task("etl.step", name="step", tags=[tag])
    for i in range(3):
        task_run, result = remote.create_task_run_and_set_state(task, run.id, i, Running())
        assert result.status is SetStateStatus.ACCEPT, result.details
        assert remote.read_concurrency_limit_by_tag(tag).active_slots == [task_run.id]
        remote.create_logs(
            [
                {
                    "name": "step",
                    "level": 20,
                    "message": f"step {i}",
                    "timestamp": datetime.datetime.now(datetime.UTC),
                    "flow_run_id": run.id,
                    "task_run_id": task_run.id,
                }
            ]
        )
        assert remote.set_task_run_state(task_run.id, Completed()).state.is_completed()
    assert remote.set_flow_run_state(run.id, Completed()).state.is_final()
    runs = remote.read_task_runs(flow_run_filter={"id": {"any_": [run.id]}}, sort="NAME_ASC")
    assert [(t.name, t.state_name) for t in runs] == [(f"step-{i}", "Completed") for i in range(3)]
    logs = remote.read_logs({"flow_run_id": {"any_": [run.id]}})
    assert [log.message for log in logs] == ["step 0", "step 1", "step 2"]
    assert len(remote.read_flow_run_graph(run.id)) == 3
    remote.delete_concurrency_limit_by_tag(tag)


def test_errors_over_http_carry_the_server_message(remote):
    missing = uuid.uuid4()
    with pytest.raises(ObjectNotFound, match=f"Flow run {missing} not found"):
        remote.read_flow_run(missing)
    with pytest.raises(ValidationError, match=r"body\.sort"):
        remote.read_task_runs(sort="SIDEWAYS")


def test_a_url_without_api_says_so_instead_of_showing_a_page(server):
    root = server.url
    expected = (
        f"{root} is not the Orion API: POST work_queues/filter got a web page "
        f"(HTTP 404). ORION_API_URL should end in /api, like http://127.0.0.1:4200/api."
    )
    with OrionClient(root, settings=Settings(api_key=API_KEY, api_retries=0)) as wrong:
        with pytest.raises(NotAnOrionAPI) as raised:
            wrong.read_work_queues()
        assert str(raised.value) == expected
        with pytest.raises(NotAnOrionAPI, match="should end in /api"):
            wrong.read_work_queue_by_name("etl")  # a 404 page, not "work queue not found"
        assert isinstance(wrong.api_healthcheck(), NotAnOrionAPI)
    env = dict(server.env, ORION_API_URL=root, ORION_API_RETRIES="0")
    result = subprocess.run(
        [ORION, "work-queue", "ls"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {expected}"
    assert result.stdout == ""


def test_the_api_key_is_required(server):
    settings = Settings(api_retries=0)
    with OrionClient(server.api_url, settings=settings) as anonymous:
        with pytest.raises(Unauthorized, match="API key"):
            anonymous.read_flows()
    with OrionClient(server.api_url, settings=settings, api_key="wrong") as wrong:
        with pytest.raises(Unauthorized):
            wrong.read_flows()


def test_calls_survive_a_server_restart_without_duplicates(backend, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="client.http")
    orion_server = OrionServer(
        tmp_path,
        workers=1,
        threads=4,
        database_url=isolated_database_url(backend, tmp_path, "server_restart"),
    )
    # Retries span ~30 s: a restart on a loaded 2-core machine can take 10 s and more (the
    # import of the server, gunicorn's fork, the schema check), which a 6 s budget missed.
    settings = Settings(
        api_retries=35,
        api_retry_delay_seconds=0.1,
        api_retry_max_delay_seconds=1.0,
        api_timeout=10.0,
    )
    tasks = 40
    progress = threading.Event()
    errors = []
    try:
        orion_server.start(START_BUDGET_SECONDS)
        with OrionClient(orion_server.api_url, settings=settings) as orion:
            flow_id = orion.create_flow_from_name("restart")
            run = orion.create_flow_run(flow_id)
            orion.set_flow_run_state(run.id, Running())

            def work():
                try:
                    for i in range(tasks):
                        task_run, result = orion.create_task_run_and_set_state(
                            make_task("restart.step", name="step"), run.id, i, Running()
                        )
                        assert result.status is SetStateStatus.ACCEPT, result.details
                        orion.create_logs(
                            [
                                {
                                    "name": "step",
                                    "level": 20,
                                    "message": f"{i}",
                                    "timestamp": datetime.datetime.now(datetime.UTC),
                                    "flow_run_id": run.id,
                                }
                            ]
                        )
                        done = orion.set_task_run_state(task_run.id, Completed())
                        assert done.state.is_completed(), done
                        orion.send_flow_run_heartbeat(run.id)
                        if i == tasks // 4:
                            progress.set()
                except BaseException as error:  # reported by the main thread
                    errors.append(error)
                    progress.set()

            worker = threading.Thread(target=work)
            worker.start()
            assert progress.wait(60)
            orion_server.kill()
            time.sleep(0.5)
            orion_server.start(START_BUDGET_SECONDS)
            worker.join(120)
            assert not worker.is_alive()
            assert not errors, errors

            assert orion.count_flow_runs() == 1
            task_runs = orion.read_task_runs(sort="NAME_ASC")
            assert len(task_runs) == tasks
            assert all(t.state_name == "Completed" and t.run_count == 1 for t in task_runs)
            for task_run in task_runs:
                states = orion.read_task_run_states(task_run.id)
                assert [s.type.value for s in states] == ["RUNNING", "COMPLETED"]
            logs = orion.read_logs({"flow_run_id": {"any_": [run.id]}})
            assert sorted(int(log.message) for log in logs) == list(range(tasks))
    finally:
        orion_server.stop()
    assert orion_server.starts == 2
    retried = [r.getMessage() for r in caplog.records if r.name == "client.http"]
    assert retried, "the restart went unnoticed: no call was retried"
