"""The client against a real ``orion start`` process, on SQLite and PostgreSQL.

One server per backend (with an API key) serves the tests of calls over HTTP; the restart test
runs its own server, killed (SIGKILL, mid-request) and started again while a series of calls
is under way: every call must succeed thanks to the client's retries, and nothing may be
stored twice. Servers listen on a port from ``ORION_TEST_PORTS`` and are always stopped.
"""
import datetime
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest

from client import OrionClient
from client.api.exceptions import NotAnOrionAPI, ObjectNotFound, Unauthorized, ValidationError
from client.api.settings import Settings
from client.api.states import Completed, Running, SetStateStatus
from tests.client.conftest import free_port_in_range, make_task
from tests.conftest import POSTGRES_URL
from tests.test_migrations import isolated_database_url

API_KEY = "sesame"
# Seconds `orion start` may take to answer /api/health.
START_BUDGET_SECONDS = 20


class OrionServer:
    """An ``orion start`` process in its own session (so it can be killed whole)."""

    def __init__(self, tmp_path, database_url, port, api_key=None):
        self.tmp_path = tmp_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}/api"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
        self.env.update(ORION_HOME=str(tmp_path / "home"), ORION_DATABASE_URL=database_url)
        if api_key:
            self.env["ORION_API_KEY"] = api_key
        self.api_key = api_key
        self.process = None
        self.starts = 0

    def start(self):
        script = shutil.which("orion", path=os.path.dirname(sys.executable))
        self.starts += 1
        log = open(self.tmp_path / f"server-{self.starts}.log", "w")
        self.process = subprocess.Popen(
            [script, "start", "--port", str(self.port), "--workers", "1", "--threads", "4"],
            cwd=self.tmp_path, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        settings = Settings(api_retries=0, api_timeout=2.0)
        deadline = time.monotonic() + START_BUDGET_SECONDS
        with OrionClient(self.url, api_key=self.api_key, settings=settings) as probe:
            while probe.api_healthcheck() is not None:
                assert self.process.poll() is None, self.output()
                assert time.monotonic() < deadline, f"no answer in time:\n{self.output()}"
                time.sleep(0.05)

    def kill(self):
        """SIGKILL the whole server (master and workers), as a crash or power cut would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self):
        return "\n".join(p.read_text() for p in sorted(self.tmp_path.glob("server-*.log")))


def server_database_url(backend, tmp_path):
    """An empty database for a server process: a SQLite file, or a PostgreSQL database named
    after the test database (``<name>_server``)."""
    name = urlsplit(POSTGRES_URL).path.lstrip("/") + "_server"
    return isolated_database_url(backend, tmp_path, name)


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(f"server-{backend}")
    orion_server = OrionServer(tmp_path, server_database_url(backend, tmp_path),
                               free_port_in_range(), api_key=API_KEY)
    try:
        orion_server.start()
        yield orion_server
    finally:
        orion_server.stop()


@pytest.fixture
def remote(server):
    with OrionClient(server.url, settings=Settings(api_key=API_KEY, api_retries=2,
                                                   api_retry_delay_seconds=0.05)) as c:
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
        remote.create_logs([{"name": "step", "level": 20, "message": f"step {i}",
                             "timestamp": datetime.datetime.now(datetime.timezone.utc),
                             "flow_run_id": run.id, "task_run_id": task_run.id}])
        assert remote.set_task_run_state(task_run.id, Completed()).state.is_completed()
    assert remote.set_flow_run_state(run.id, Completed()).state.is_final()
    runs = remote.read_task_runs(flow_run_filter={"id": {"any_": [run.id]}}, sort="NAME_ASC")
    assert [(t.name, t.state_name) for t in runs] == [(f"step-{i}", "Completed")
                                                      for i in range(3)]
    logs = remote.read_logs({"flow_run_id": {"any_": [run.id]}})
    assert [log.message for log in logs] == ["step 0", "step 1", "step 2"]
    assert len(remote.read_flow_run_graph(run.id)) == 3
    remote.delete_concurrency_limit_by_tag(tag)


def test_errors_over_http_carry_the_server_message(remote):
    missing = uuid.uuid4()
    with pytest.raises(ObjectNotFound, match=f"Flow run {missing} not found"):
        remote.read_flow_run(missing)
    with pytest.raises(ValidationError, match="body.sort"):
        remote.read_task_runs(sort="SIDEWAYS")


def test_a_url_without_api_says_so_instead_of_showing_a_page(server):
    root = server.url.removesuffix("/api")
    expected = (f"{root} is not the Orion API: POST work_queues/filter got a web page "
                f"(HTTP 404). ORION_API_URL should end in /api, like http://127.0.0.1:4200/api.")
    with OrionClient(root, settings=Settings(api_key=API_KEY, api_retries=0)) as wrong:
        with pytest.raises(NotAnOrionAPI) as raised:
            wrong.read_work_queues()
        assert str(raised.value) == expected
        with pytest.raises(NotAnOrionAPI, match="should end in /api"):
            wrong.read_work_queue_by_name("etl")  # a 404 page, not "work queue not found"
        assert isinstance(wrong.api_healthcheck(), NotAnOrionAPI)
    script = shutil.which("orion", path=os.path.dirname(sys.executable))
    env = dict(server.env, ORION_API_URL=root, ORION_API_RETRIES="0")
    result = subprocess.run([script, "work-queue", "ls"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {expected}"
    assert result.stdout == ""


def test_the_api_key_is_required(server):
    settings = Settings(api_retries=0)
    with OrionClient(server.url, settings=settings) as anonymous:
        with pytest.raises(Unauthorized, match="API key"):
            anonymous.read_flows()
    with OrionClient(server.url, settings=settings, api_key="wrong") as wrong:
        with pytest.raises(Unauthorized):
            wrong.read_flows()


def test_calls_survive_a_server_restart_without_duplicates(backend, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="client.http")
    orion_server = OrionServer(tmp_path, server_database_url(backend, tmp_path),
                               free_port_in_range())
    settings = Settings(api_retries=10, api_retry_delay_seconds=0.1,
                        api_retry_max_delay_seconds=1.0, api_timeout=10.0)
    tasks = 40
    progress = threading.Event()
    errors = []
    try:
        orion_server.start()
        with OrionClient(orion_server.url, settings=settings) as orion:
            flow_id = orion.create_flow_from_name("restart")
            run = orion.create_flow_run(flow_id)
            orion.set_flow_run_state(run.id, Running())

            def work():
                try:
                    for i in range(tasks):
                        task_run, result = orion.create_task_run_and_set_state(
                            make_task("restart.step", name="step"), run.id, i, Running())
                        assert result.status is SetStateStatus.ACCEPT, result.details
                        orion.create_logs([{"name": "step", "level": 20, "message": f"{i}",
                                            "timestamp": datetime.datetime.now(
                                                datetime.timezone.utc),
                                            "flow_run_id": run.id}])
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
            orion_server.start()
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
