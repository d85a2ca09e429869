"""Chaos, bounded: real processes killed while they work, on SQLite and PostgreSQL.

- kill -9 of ``orion start`` (master and worker) under write load: every write the server
  acknowledged is there after the restart;
- a restart of PostgreSQL under load (a private cluster of this test, made with ``initdb``
  and driven with ``pg_ctl`` on a port of our own; the shared server is never touched):
  Orion answers 503 while it is down and serves again by itself, without a restart;
- kill -9 of an agent and of its flow run's process, with the default liveness settings
  (flows and agents heartbeat every 5 s, a 20 s timeout, a 5 s liveness loop): the run is
  Crashed, and the agent shown offline, within 30 s.

The Redis outage (services resume after a private redis-server is killed and started again)
is ``tests/workers/test_workers.py::test_services_recover_after_redis_is_killed_and_restarted``.

Each test prints its figures (writes lost, seconds to recover, seconds to Crashed); run with
``-s`` to see them. bench/README.md ("Chaos figures") keeps a set.
"""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import Agents, OrionServer, free_port, isolated_database_url, wait_for

# Budget of the issue: a dead flow run is Crashed within this many seconds by default.
CRASHED_WITHIN_SECONDS = 30
WRITERS = 4
# Seconds of write load before the kill, and the fewest acknowledged writes it must give.
LOAD_SECONDS = 3
MIN_ACKNOWLEDGED = 50


def report(figure):
    print(f"\nCHAOS {figure}")


def chunks(items, size=200):
    return [items[i : i + size] for i in range(0, len(items), size)]


class Writers:
    """``WRITERS`` threads creating flow runs (SCHEDULED) and moving each to RUNNING as fast
    as the server answers, until stopped. Each acknowledged write (a 2xx) is recorded:
    ``created`` (run ids), ``running`` (ids whose RUNNING was accepted). Failures (the server
    is gone or answers 5xx) are recorded with their time and the writers carry on."""

    def __init__(self, api_url, flow_id):
        self.api_url = api_url
        self.flow_id = flow_id
        self.created, self.running = [], []
        self.failures, self.successes = [], []
        self.statuses = set()
        self.answers = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work) for _ in range(WRITERS)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _failed(self, status, text=""):
        with self._lock:
            self.failures.append(time.monotonic())
            self.statuses.add(status)
            self.answers.append(f"{status} {text[:300]}")

    def _work(self):
        with httpx.Client(base_url=self.api_url, timeout=10) as api:
            while not self._stop.is_set():
                try:
                    response = api.post(
                        "/flow_runs/",
                        json={"flow_id": self.flow_id, "state": {"type": "SCHEDULED"}},
                    )
                    if response.status_code != 201:
                        self._failed(response.status_code, response.text)
                        continue
                    run_id = response.json()["id"]
                    with self._lock:
                        self.created.append(run_id)
                        self.successes.append(time.monotonic())
                    response = api.post(
                        f"/flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}}
                    )
                    if response.status_code != 201:
                        self._failed(response.status_code, response.text)
                        continue
                    assert response.json()["status"] == "ACCEPT", response.text
                    with self._lock:
                        self.running.append(run_id)
                        self.successes.append(time.monotonic())
                except httpx.TransportError:
                    self._failed("no answer")
                    time.sleep(0.05)


def states(api_url, run_ids):
    """``{run id: state type}`` of the runs found among ``run_ids``."""
    found = {}
    with httpx.Client(base_url=api_url, timeout=30) as api:
        for part in chunks(run_ids):
            response = api.post(
                "/flow_runs/filter", json={"flow_runs": {"id": {"any_": part}}, "limit": 200}
            )
            assert response.status_code == 200, response.text
            found.update({run["id"]: run["state_type"] for run in response.json()})
    return found


def lost_writes(api_url, writers):
    """Acknowledged writes missing after the restart: runs not found, RUNNING not kept."""
    found = states(api_url, writers.created)
    missing = [run_id for run_id in writers.created if run_id not in found]
    not_running = [run_id for run_id in writers.running if found.get(run_id) != "RUNNING"]
    return missing + not_running


def new_flow(api_url):
    response = httpx.post(f"{api_url}/flows/", json={"name": f"chaos-{uuid.uuid4().hex[:8]}"})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def test_kill_9_under_write_load_loses_no_acknowledged_write(backend, tmp_path):
    url = isolated_database_url(backend, tmp_path, "chaos_kill")
    server = OrionServer(tmp_path, database_url=url, workers=1, SCHEDULER_ENABLED=False)
    with server:
        flow_id = new_flow(server.api_url)
        with Writers(server.api_url, flow_id) as writers:
            time.sleep(LOAD_SECONDS)
            wait_for(lambda: len(writers.running) >= MIN_ACKNOWLEDGED, 60, "some writes")
            server.kill()
            killed = time.monotonic()
            time.sleep(0.5)  # writes keep failing against the dead server
        server.start()
        restarted = time.monotonic() - killed
        lost = lost_writes(server.api_url, writers)
    acknowledged = len(writers.created) + len(writers.running)
    report(
        f"kill -9 under write load [{backend}]: {acknowledged} acknowledged writes "
        f"({len(writers.created)} runs created, {len(writers.running)} moved to RUNNING), "
        f"{len(lost)} lost; restart to healthy {restarted:.1f} s"
    )
    assert lost == []
    assert server.starts == 2


# -- PostgreSQL restart -----------------------------------------------------------------------


def postgres_bin():
    """The newest installed PostgreSQL's bin folder (Debian's layout)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4])
    )
    if not found:
        pytest.fail("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of this test only: ``initdb`` in a temporary folder, served on
    ``port`` (127.0.0.1 and a socket in the folder), trust authentication for ``postgres``.
    As root, the server runs as the ``postgres`` user (PostgreSQL refuses root)."""

    def __init__(self):
        self.bin = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="orion-chaos-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/orion_chaos"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, program, *args):
        result = subprocess.run(
            [*self.as_user, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{program} failed: {result.stdout}{result.stderr}"

    def pg_ctl(self, action, *extra):
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            action,
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.folder / "postgres.log"),
            "-o",
            options,
            *extra,
        )

    def close(self):
        if (self.data / "postmaster.pid").exists():
            self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres():
    cluster = PrivatePostgres()
    cluster.pg_ctl("start")
    try:
        yield cluster
    finally:
        cluster.close()


def test_orion_recovers_from_a_postgresql_restart_by_itself(private_postgres, tmp_path):
    server = OrionServer(
        tmp_path, database_url=private_postgres.url, workers=1, SCHEDULER_ENABLED=False
    )
    with server:
        flow_id = new_flow(server.api_url)
        with Writers(server.api_url, flow_id) as writers:
            wait_for(lambda: len(writers.running) >= MIN_ACKNOWLEDGED, 60, "some writes")
            began = time.monotonic()
            private_postgres.pg_ctl("restart", "-m", "fast")
            back = time.monotonic()
            wait_for(
                lambda: any(t > back for t in writers.successes), 30, "a write after the restart"
            )
            time.sleep(1)  # and more, to show it keeps serving
        first_ok = min(t for t in writers.successes if t > back)
        assert server.running and server.starts == 1, "Orion was restarted"
        lost = lost_writes(server.api_url, writers)
        failures = [t for t in writers.failures if t >= began]
    report(
        f"PostgreSQL restart under write load: PostgreSQL down {back - began:.1f} s, "
        f"{len(failures)} failed requests ({sorted(map(str, writers.statuses))}), first write "
        f"{first_ok - back:.2f} s after it was back, {len(lost)} acknowledged writes lost "
        f"of {len(writers.created) + len(writers.running)}"
    )
    assert lost == []
    # While it is down, Orion says so (503) or the client gives up waiting; never a 500.
    assert writers.statuses <= {503, "no answer"}, writers.answers


# -- kill -9 of an agent and its flow ---------------------------------------------------------

FLOWS = """
import time

from client.sdk.flows import flow


@flow
def sleepy(seconds=300):
    time.sleep(seconds)
"""


def test_a_killed_agent_and_flow_are_crashed_within_30_s_by_default(backend, tmp_path):
    """Default liveness settings on the server, default heartbeats on the agent and the flow;
    only the agent's poll is quickened (so the run starts at once)."""
    url = isolated_database_url(backend, tmp_path, "chaos_agent")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "flows.py").write_text(FLOWS)
    server = OrionServer(tmp_path / "server", database_url=url, SCHEDULER_ENABLED=False)
    queue, name = f"chaos-{uuid.uuid4().hex[:6]}", f"chaos-agent-{uuid.uuid4().hex[:6]}"
    with server, httpx.Client(base_url=server.api_url, timeout=30) as api:
        flow_id = new_flow(server.api_url)
        deployment = api.post(
            "/deployments/",
            json={
                "flow_id": flow_id,
                "name": "sleepy",
                "path": str(tmp_path / "flows"),
                "entrypoint": "flows.py:sleepy",
                "work_queue_name": queue,
            },
        ).json()
        run_id = api.post(
            f"/deployments/{deployment['id']}/create_flow_run",
            json={"state": {"type": "SCHEDULED"}},
        ).json()["id"]
        group = Agents(server, tmp_path, {"ORION_AGENT_QUERY_INTERVAL": 0.5})
        agent = group.start("-q", queue, "--name", name, "--prefetch-seconds", "0")
        try:
            run = wait_for(
                lambda: (
                    (r := api.get(f"/flow_runs/{run_id}").json())["state_type"] == "RUNNING" and r
                ),
                90,
                "the flow run to start running",
            )
            queue_id = api.get(f"/work_queues/name/{queue}").json()["id"]
            agents = api.post("/agents/filter", json={"agents": {"name": {"any_": [name]}}})
            assert agents.json()[0]["last_heartbeat"] is not None, "the agent never heartbeated"
            page = f"{server.url}/work-queues/{queue_id}"
            assert f"Online: {name}" in httpx.get(page).text
            wait_for(
                lambda: api.get(f"/flow_runs/{run_id}").json()["last_heartbeat"],
                15,
                "the flow's first heartbeat",
            )
            flow_pid = int(run["infrastructure_pid"].rsplit(":", 1)[1])
            os.killpg(agent.pid, signal.SIGKILL)
            os.killpg(flow_pid, signal.SIGKILL)
            killed = time.monotonic()
            agent.wait(30)
            offline_after = crashed_after = None
            while time.monotonic() - killed < CRASHED_WITHIN_SECONDS + 10:
                now = time.monotonic() - killed
                if offline_after is None and f"): {name}" in httpx.get(page).text:
                    offline_after = now
                state = api.get(f"/flow_runs/{run_id}").json()["state"]
                if crashed_after is None and state["type"] == "CRASHED":
                    crashed_after = now
                if offline_after is not None and crashed_after is not None:
                    break
                time.sleep(0.25)
        finally:
            group.kill_all()
    report(
        f"kill -9 of agent and flow [{backend}]: run Crashed after "
        f"{crashed_after if crashed_after is None else round(crashed_after, 1)} s, agent "
        f"offline after {offline_after if offline_after is None else round(offline_after, 1)}"
        f" s (budget {CRASHED_WITHIN_SECONDS} s)"
    )
    assert crashed_after is not None and crashed_after <= CRASHED_WITHIN_SECONDS
    assert "no heartbeat for 20 s" in state["message"]
    assert offline_after is not None and offline_after <= CRASHED_WITHIN_SECONDS
