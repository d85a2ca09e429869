"""Real Prefect 2 clients against a real ``orion start``: the compatibility contract.

Each Prefect release lives in its own venv, never in Orion's: ``.venv-prefect-2.7`` (Prefect
2.7.12, API 0.8.4, the line Orion's API follows) and ``.venv-prefect-2.20`` (Prefect 2.20.x),
built by ``scripts/test`` from the pins in ``tests/compat/requirements/``.
``ORION_TEST_PREFECT_2_7`` / ``ORION_TEST_PREFECT_2_20`` name other ready venvs instead.

Every Prefect command and flow script runs as a subprocess with its own ``PREFECT_HOME`` (a
temporary folder) and ``PREFECT_API_URL`` pointing at the module's server; every assertion reads
what happened through Orion's API (plain httpx), never through Prefect. One server per backend
per test module, with its own database (``<test database>_compat_<module>`` on PostgreSQL), so
the two clients' runs share it and are told apart by names carrying the client's label.

``ORION_TEST_COMPAT_REFERENCE_URL`` (e.g. ``http://127.0.0.1:4538/api`` of a ``prefect orion
start`` from the 2.7 venv) runs the same tests against that server instead of Orion: the
check that the tests themselves expect what Prefect's own server does.
"""

import os
import subprocess
import textwrap
import time
import types
import uuid
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.support import BACKENDS, OrionServer, isolated_database_url, start_logged

REPO = Path(__file__).resolve().parents[2]

# label -> (environment variable naming a ready venv, default venv in the repository)
CLIENTS = {
    "2.7": ("ORION_TEST_PREFECT_2_7", REPO / ".venv-prefect-2.7"),
    "2.20": ("ORION_TEST_PREFECT_2_20", REPO / ".venv-prefect-2.20"),
}


class Prefect:
    """One Prefect release's venv: runs its ``prefect`` CLI and Python scripts against ``api_url``.

    ``label`` ("2.7" or "2.20") and ``tag`` (label, backend and a random part, e.g.
    "27-sqlite-3f9a0c") name what a test creates, so clients sharing a server never see each
    other's objects.
    """

    def __init__(self, label, venv, api_url, backend, workdir):
        self.label = label
        self.venv = Path(venv)
        self.api_url = api_url
        self.tag = f"{label.replace('.', '')}-{backend}-{uuid.uuid4().hex[:6]}"
        self.workdir = workdir
        self.python = str(self.venv / "bin" / "python")
        self.prefect = str(self.venv / "bin" / "prefect")

    def env(self, home, **extra):
        """The environment of one Prefect process: nothing of the caller's Orion or Prefect
        settings, this venv first on PATH, its own PREFECT_HOME."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORION_", "PREFECT_", "VIRTUAL_ENV", "PYTHON"))
        }
        env.update(
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            PREFECT_HOME=str(home),
            PREFECT_API_URL=self.api_url,
            PREFECT_LOGGING_LEVEL="INFO",
            # The agent looks for work (and for runs to cancel) every second, not every ten.
            PREFECT_AGENT_QUERY_INTERVAL="1",
            PYTHONUNBUFFERED="1",
        )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def _home(self):
        home = self.workdir / f"prefect-home-{time.monotonic_ns()}"
        home.mkdir()
        return home

    def run(self, *args, cwd=None, timeout=120, check=True, **env):
        """Run ``prefect *args`` to its end; returns its output (stdout and stderr together).
        Fails the test, showing the output, if it exits non-zero and ``check`` is true."""
        return self._run([self.prefect, *args], cwd, timeout, check, env)

    def script(self, source, *args, cwd=None, timeout=120, check=True, **env):
        """Run Python ``source`` (dedented) with this venv's interpreter; returns its output."""
        path = self.workdir / f"script-{time.monotonic_ns()}.py"
        path.write_text(textwrap.dedent(source))
        return self._run([self.python, str(path), *args], cwd, timeout, check, env)

    def _run(self, argv, cwd, timeout, check, env):
        done = subprocess.run(
            argv,
            cwd=str(cwd or self.workdir),
            env=self.env(self._home(), **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"Prefect {self.label}: {' '.join(argv[:4])} exited "
                f"{done.returncode}:\n{done.stdout[-6000:]}",
                pytrace=False,
            )
        return done.stdout

    def start(self, *args, cwd=None, log_name="process", **env):
        """Start ``prefect *args`` in the background; returns (Popen, path of its output)."""
        return self._start([self.prefect, *args], cwd, log_name, env)

    def start_script(self, source, *args, cwd=None, log_name="script", **env):
        """Start Python ``source`` (dedented) in the background; returns (Popen, path of its
        output)."""
        path = self.workdir / f"script-{time.monotonic_ns()}.py"
        path.write_text(textwrap.dedent(source))
        return self._start([self.python, str(path), *args], cwd, log_name, env)

    def _start(self, argv, cwd, log_name, env):
        log_path = self.workdir / f"{log_name}-{time.monotonic_ns()}.log"
        process = start_logged(
            argv,
            env=self.env(self._home(), **env),
            cwd=str(cwd or self.workdir),
            log_path=log_path,
        )
        return process, log_path


def prefect_venv(label):
    """The venv of Prefect ``label``; fails (never skips) when it is missing."""
    variable, default = CLIENTS[label]
    venv = Path(os.environ.get(variable) or default)
    if not (venv / "bin" / "prefect").exists():
        pytest.fail(
            f"No Prefect {label} venv at {venv}: run the suite through scripts/test "
            f"(it builds it) or set {variable} to a ready venv.",
            pytrace=False,
        )
    return venv


class Servers:
    """The module's ``orion start`` servers, one per backend, each on a fresh database; only
    one runs at a time (asking for another backend stops the last one).

    Concurrency-limited task runs are told to wait 1 s, not 30, so limits show in seconds.
    """

    def __init__(self, module, tmp_path_factory, settings):
        self.module = module
        self.tmp_path_factory = tmp_path_factory
        self.settings = {"TASK_CONCURRENCY_SLOT_WAIT_SECONDS": 1, **settings}
        self.current = None

    def get(self, backend):
        reference = os.environ.get("ORION_TEST_COMPAT_REFERENCE_URL")
        if reference:
            return types.SimpleNamespace(api_url=reference, backend="reference")
        if self.current is not None and self.current.backend == backend:
            return self.current
        self.stop()
        home = self.tmp_path_factory.mktemp("orion-compat-home")
        url = isolated_database_url(backend, home, f"compat_{self.module}")
        server = OrionServer(home, database_url=url, **self.settings)
        server.backend = backend
        server.start()
        self.current = server
        return server

    def stop(self):
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="module")
def servers(request, tmp_path_factory):
    """This module's servers (see :class:`Servers`), with the module's ``SERVER_SETTINGS``
    (``orion start``'s ``ORION_<NAME>`` settings) if it has them; stopped at its end."""
    pool = Servers(
        request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"),
        tmp_path_factory,
        getattr(request.module, "SERVER_SETTINGS", {}),
    )
    yield pool
    pool.stop()


# One parameter for both axes, in this order, so that each backend's server starts once per
# module (pytest would interleave two separately parametrised module fixtures).
COMBINATIONS = [(label, backend) for backend in BACKENDS for label in CLIENTS]


@pytest.fixture(scope="module", params=COMBINATIONS, ids=[f"{c}-{b}" for c, b in COMBINATIONS])
def prefect(request, servers, tmp_path_factory):
    """A Prefect client release pointed at the module's server of a backend."""
    label, backend = request.param
    venv = prefect_venv(label)
    server = servers.get(backend)
    workdir = tmp_path_factory.mktemp(f"prefect-{label}")
    return Prefect(label, venv, server.api_url, server.backend, workdir)


def prefect_220_only(workdir):
    """A module's ``prefect`` fixture for what only Prefect 2.20 has (it replaces the one
    above in that module): 2.20 pointed at the module's server of each backend, working in
    a fresh folder named ``workdir``."""

    @pytest.fixture(scope="module", params=BACKENDS)
    def prefect(request, servers, tmp_path_factory):
        server = servers.get(request.param)
        folder = tmp_path_factory.mktemp(workdir)
        return Prefect("2.20", prefect_venv("2.20"), server.api_url, server.backend, folder)

    return prefect


@pytest.fixture(scope="module")
def api(prefect):
    """Orion's API over plain HTTP: how every test reads what the Prefect client did (of the
    module's own ``prefect`` when it has one)."""
    with httpx.Client(base_url=prefect.api_url + "/", timeout=30) as http:
        yield http


def ok(response):
    """The JSON body of a 2xx response; fails with the body otherwise."""
    assert response.is_success, (
        f"{response.request.method} {response.request.url} -> "
        f"{response.status_code}: {response.text}"
    )
    return response.json() if response.content else None


def wait_for(predicate, timeout, what, interval=0.5):
    """:func:`tests.support.wait_for`, polling every half second unless told."""
    return support.wait_for(predicate, timeout, what, interval)


def flow_runs(api, **flow_run_filter):
    """Flow runs matching a ``flow_runs`` filter body, oldest first."""
    return ok(
        api.post(
            "flow_runs/filter",
            json={"flow_runs": flow_run_filter, "sort": "EXPECTED_START_TIME_ASC"},
        )
    )


def task_runs(api, flow_run_id):
    """Every task run of a flow run."""
    return ok(api.post("task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}))


def state_history(api, task_run_id=None, flow_run_id=None):
    """A run's states, oldest first, as (type, name) pairs."""
    if task_run_id:
        states = ok(api.get("task_run_states/", params={"task_run_id": task_run_id}))
    else:
        states = ok(api.get("flow_run_states/", params={"flow_run_id": flow_run_id}))
    states.sort(key=lambda s: s["timestamp"])
    return [(s["type"], s["name"]) for s in states]


def log_messages(api, flow_run_id):
    """Every log message of a flow run (its tasks' included), in order."""
    messages, offset = [], 0
    while True:
        page = ok(
            api.post(
                "logs/filter",
                json={
                    "logs": {"flow_run_id": {"any_": [flow_run_id]}},
                    "sort": "TIMESTAMP_ASC",
                    "limit": 200,
                    "offset": offset,
                },
            )
        )
        if not page:
            return messages
        messages.extend(log["message"] for log in page)
        offset += len(page)
