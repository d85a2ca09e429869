"""What tests need from the machine: ports, databases, Redis, and servers to talk to.

Every test gets these from here, so that test runs sharing a machine, and the xdist workers
of one run (pytest.ini runs ``-n 2``), never share a port, a database or a Redis key. What a
test run may use comes from the environment:

- ``ORION_TEST_POSTGRES_URL``: the run's PostgreSQL database; the others are named after it
  (default ``postgresql://postgres@127.0.0.1:5432/orion_test``);
- ``ORION_TEST_REDIS_URL``: the Redis database the run may flush (default
  ``redis://127.0.0.1:6379/5``);
- ``ORION_TEST_PORTS``: the ports servers may listen on, ``"4500-4599"`` (default: any);
- ``ORION_TEST_BACKENDS``: the backends ``app``/``db`` run on (default ``sqlite,postgres``).

How the xdist workers share them (``PYTEST_XDIST_WORKER`` is ``gw0``, ``gw1``, ...):

- PostgreSQL: worker ``gwN`` appends ``_gwN`` to the database name (:data:`POSTGRES_URL`);
  a test that needs a database of its own asks :func:`isolated_database_url` for one named
  ``<that>_<purpose>``, created if missing and emptied.
- SQLite: files go in ``tmp_path`` folders, which pytest already makes per worker.
- Ports: each worker takes an equal slice of ``ORION_TEST_PORTS``; :func:`free_port` hands
  them out in turn.
- Redis: one numbered database for the whole run, not one per worker (Redis has 16, and a
  shared machine gives each test run one). Tests reach it only through the ``redis_db``
  fixture (tests/conftest.py), and every test that uses that fixture is put in the xdist
  group ``redis``, so one worker runs them, one after the other.

Tests that share a costly module-scoped fixture (a server, a browser) are grouped by
tests/conftest.py so that one worker runs them all, once per backend: such a module needs
nothing but a ``scope="module"`` fixture. Tests that must not run at the same time as each
other (one shared resource) share a mark ``@pytest.mark.xdist_group("<name>")``: one worker
runs them, one after the other.

Servers:

- :class:`OrionServer`: ``orion start`` in its own process, on a port of this worker, with
  a home folder and a database; ``start()``, ``stop()``, ``kill()`` (SIGKILL, as a crash),
  ``start()`` again (same port and database), ``output()``.
- :class:`ServerProcess`: any other command that serves HTTP (e.g. gunicorn directly).
- :func:`serving_in_thread`: a ``socketserver`` server (werkzeug's, ``http.server``)
  served from a thread of the test process for the duration of a ``with`` block.

Their processes see :func:`orion_env`: this interpreter's environment without the caller's
``ORION_*`` settings, plus the ones the test gives.

A module of tests against one real server per backend, for example::

    from tests.support import OrionServer, isolated_database_url

    @pytest.fixture(scope="module")
    def server(backend, tmp_path_factory):
        folder = tmp_path_factory.mktemp(f"things-{backend}")
        url = isolated_database_url(backend, folder, "things")
        with OrionServer(folder, database_url=url, SCHEDULER_ENABLED=False) as orion:
            yield orion          # orion.api_url for clients, orion.stop()/start() to restart

The same fixture with :func:`module_server`, which also names the folder and the database::

    @pytest.fixture(scope="module")
    def server(backend, tmp_path_factory):
        with module_server(tmp_path_factory, backend, "things", SCHEDULER_ENABLED=False) as orion:
            yield orion

Processes the test starts itself (agents, flow scripts) take ``orion_env(home,
ORION_API_URL=server.api_url, ...)``; timings there should be test-sized (agents:
``ORION_AGENT_QUERY_INTERVAL``, flows: ``ORION_HEARTBEAT_SECONDS``). :func:`start_logged`
starts one with its output in a file, :func:`stop_all` stops them.

Harness the test modules share, so that the next one reuses it rather than copying it:

- :func:`wait_for`: poll a condition until it holds, failing the test after a timeout;
- :class:`Agents`: ``orion agent start`` processes of one test (``AGENT_SETTINGS``: test-sized
  timings), and ``orion`` commands run with their environment (:meth:`Agents.command`);
  :data:`FLOWS`, :func:`write_flows`: the flows they run; :func:`due_runs`, :func:`states_of`,
  :func:`all_final`: runs made and read through an ``OrionClient``;
- :class:`JsonApi`: a tiny JSON-over-HTTP caller of a live server's API;
- :func:`offline_page`: a Playwright page that reaches 127.0.0.1 only and collects its errors.

Fixtures over these live in the conftest.py of the tests that use them (tests/conftest.py:
``orion``, a client of the module's ``server``; tests/agent/conftest.py: ``agents``,
``flows_dir``).
"""

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
from psycopg2 import sql

from client.api.states import Scheduled

REPO = Path(__file__).resolve().parents[1]
#: The ``orion`` console script of this interpreter (installed by ``pip install -e .``).
ORION = str(Path(sys.executable).parent / "orion")

BACKENDS = [b.strip() for b in os.environ.get("ORION_TEST_BACKENDS", "sqlite,postgres").split(",")]


def one_backend(preferred):
    """``[preferred]`` when the run tests that backend, else ``[the first it tests]``: the
    ``params`` of a module's own ``backend`` fixture, for tests whose subject is not the
    database (a browser on Prefect's UI), so they run once; the API under them runs on both."""
    return [preferred if preferred in BACKENDS else BACKENDS[0]]


# -- xdist workers ----------------------------------------------------------------------------

#: This process's xdist worker ("gw0", "gw1", ...), or None without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
WORKER_INDEX = int(WORKER[2:]) if WORKER else 0
WORKER_COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) if WORKER else 1


# -- databases --------------------------------------------------------------------------------


def _worker_postgres_url(url):
    if not WORKER:
        return url
    parts = urlsplit(url)
    return parts._replace(path=f"{parts.path}_{WORKER}").geturl()


#: This worker's PostgreSQL test database (the ``app`` fixture's).
POSTGRES_URL = _worker_postgres_url(
    os.environ.get("ORION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/orion_test")
)


def _server_connection(url):
    """An autocommit connection to the ``postgres`` database of ``url``'s server, and the name
    of ``url``'s database."""
    params = psycopg2.extensions.parse_dsn(url)
    name = params.pop("dbname")
    connection = psycopg2.connect(dbname="postgres", **params)
    connection.autocommit = True
    return connection, name


def ensure_postgres_database(url):
    """Create the PostgreSQL database named in ``url`` if it does not exist yet."""
    connection, name = _server_connection(url)
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()


def drop_postgres_database(url):
    """Drop the PostgreSQL database named in ``url``, closing its connections; no error if
    it does not exist."""
    connection, name = _server_connection(url)
    try:
        with connection.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        connection.close()


def empty_postgres_database(url):
    """Create the database named in ``url`` if missing, then drop every table in it."""
    ensure_postgres_database(url)
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            for (table,) in cur.fetchall():
                cur.execute(
                    sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table))
                )
    finally:
        connection.close()


def sqlite_url(folder):
    """URL of the SQLite database ``orion.db`` in ``folder``."""
    return f"sqlite:///{Path(folder) / 'orion.db'}"


def isolated_database_url(backend, tmp_path, purpose):
    """URL of an empty database of ``backend`` that only the caller uses.

    SQLite: ``orion.db`` in ``tmp_path``. PostgreSQL: this worker's test database name plus
    ``_<purpose>`` (e.g. ``orion_test_gw1_migrations``), created if missing and emptied; one
    ``purpose`` per module or fixture, so no two users share it.
    """
    if backend == "sqlite":
        return sqlite_url(tmp_path)
    parts = urlsplit(POSTGRES_URL)
    url = parts._replace(path=f"{parts.path}_{purpose}").geturl()
    empty_postgres_database(url)
    return url


# -- Redis ------------------------------------------------------------------------------------

#: The Redis database tests may flush; use it through the ``redis_db`` fixture, which puts
#: the test in the xdist group "redis" (one worker at a time).
REDIS_URL = os.environ.get("ORION_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


# -- ports ------------------------------------------------------------------------------------


def worker_ports():
    """The ports of this worker: its equal slice of ``ORION_TEST_PORTS`` (inclusive range,
    ``"4500-4599"``), or None when that is unset (any free port will do)."""
    spec = os.environ.get("ORION_TEST_PORTS")
    if not spec:
        return None
    low, high = (int(part) for part in spec.split("-"))
    size = (high - low + 1) // WORKER_COUNT
    if size < 1:
        raise RuntimeError(
            f"ORION_TEST_PORTS={spec} has fewer ports than the {WORKER_COUNT} xdist workers"
        )
    start = low + WORKER_INDEX * size
    return range(start, start + size)


_PORTS = worker_ports()
# Handed out in turn, so a port just released (or handed out and not yet bound) is the last
# to come round again.
_next_ports = itertools.cycle(_PORTS) if _PORTS else None
_ports_lock = threading.Lock()


def _bindable(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port():
    """A TCP port of this worker that nothing listens on right now."""
    if _PORTS is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    with _ports_lock:
        for _ in range(len(_PORTS)):
            port = next(_next_ports)
            if _bindable(port):
                return port
    raise RuntimeError(
        f"No free port in {_PORTS.start}-{_PORTS.stop - 1} "
        f"(ORION_TEST_PORTS, worker {WORKER or 'main'})"
    )


# -- servers ----------------------------------------------------------------------------------


def orion_env(home=None, **variables):
    """The environment of an Orion process: this interpreter's, without the caller's
    ``ORION_*`` settings, with ``ORION_HOME=home`` (if given) and ``variables`` (full names,
    values made strings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env["PYTHONUNBUFFERED"] = "1"
    if home is not None:
        env["ORION_HOME"] = str(home)
    env.update({name: str(value) for name, value in variables.items()})
    return env


def answers(url, headers=None):
    """True when a GET of ``url`` answers 200 within a second."""
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class ServerProcess:
    """A command serving HTTP, in a session of its own (so :meth:`kill` takes it whole).

    ``argv`` is run in ``cwd`` with ``env``, its stdout (and stderr, unless ``stderr_path``
    keeps it apart) appended to ``log_path``. :meth:`start` returns once ``health_url``
    answers 200 (sent ``headers``); it can be called again after :meth:`stop` or
    :meth:`kill`, and counts in :attr:`starts`.
    """

    def __init__(
        self, argv, *, env, log_path, health_url, cwd=None, headers=None, stderr_path=None
    ):
        self.argv = list(argv)
        self.env = env
        self.log_path = Path(log_path)
        self.stderr_path = Path(stderr_path) if stderr_path else None
        self.health_url = health_url
        self.cwd = cwd
        self.headers = headers or {}
        self.process = None
        self.starts = 0

    def start(self, timeout=30):
        """Start the command; wait until it answers. Fails (stopping it) if it exits first or
        does not answer in ``timeout`` seconds."""
        self.starts += 1
        with open(self.log_path, "ab") as out:
            err = open(self.stderr_path, "ab") if self.stderr_path else subprocess.STDOUT
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    env=self.env,
                    cwd=self.cwd,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            finally:
                if self.stderr_path:
                    err.close()
        deadline = time.monotonic() + timeout
        while not answers(self.health_url, self.headers):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.argv[0]} exited with {self.process.returncode} "
                    f"before answering:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"{self.health_url} did not answer in {timeout} s:\n{self.output()}"
                )
            time.sleep(0.05)
        return self

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL if it has not exited in ``timeout`` seconds; returns the exit
        code (None if never started)."""
        if self.process is None:
            return None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait()

    def kill(self):
        """SIGKILL the whole session (master and workers), as a crash or power cut would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)

    def output(self):
        """Everything it wrote so far (stdout, then stderr if kept apart)."""
        paths = [self.log_path] + ([self.stderr_path] if self.stderr_path else [])
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def __enter__(self):
        return self.start() if self.process is None else self

    def __exit__(self, *exc):
        self.stop()


class OrionServer(ServerProcess):
    """``orion start`` (on its default host, 127.0.0.1) on a port of this worker.

    It runs in ``folder`` (its log, ``server.log``, goes there) with home ``home`` (default
    ``<folder>/home``) and database ``database_url`` (default: the home's SQLite file, as
    for a user). ``api_key``: required of clients if given; ``workers``, ``threads``:
    ``orion start``'s options (default: its own); ``settings``: ``ORION_<NAME>`` variables
    (``SCHEDULER_ENABLED=False`` sets ``ORION_SCHEDULER_ENABLED``).

    :attr:`url` is the server's root, :attr:`api_url` its API (what ``ORION_API_URL`` takes).
    """

    def __init__(
        self,
        folder,
        *,
        home=None,
        database_url=None,
        api_key=None,
        workers=None,
        threads=None,
        port=None,
        stderr_path=None,
        **settings,
    ):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        self.api_key = api_key
        variables = {f"ORION_{name}": value for name, value in settings.items()}
        if database_url:
            variables["ORION_DATABASE_URL"] = database_url
        if api_key:
            variables["ORION_API_KEY"] = api_key
        argv = [ORION, "start", "--port", str(self.port)]
        for flag, value in (("--workers", workers), ("--threads", threads)):
            if value is not None:
                argv += [flag, str(value)]
        super().__init__(
            argv,
            env=orion_env(home or folder / "home", **variables),
            cwd=str(folder),
            log_path=folder / "server.log",
            stderr_path=stderr_path,
            health_url=f"{self.api_url}/health",
            headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
        )


@contextmanager
def serving_in_thread(server):
    """Serve ``server`` (a ``socketserver.BaseServer``: werkzeug's ``make_server``,
    ``http.server``) from a daemon thread for the block; shut down and closed after."""
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def module_server(tmp_path_factory, backend, purpose, **options):
    """``orion start`` (:class:`OrionServer`, with ``options``) in a new temporary folder, on
    an empty database of ``backend`` that only it uses (:func:`isolated_database_url`, named
    after ``purpose``); stopped after the block. What a module's ``server`` fixture yields."""
    folder = tmp_path_factory.mktemp(f"{purpose}-{backend}")
    database_url = isolated_database_url(backend, folder, purpose)
    with OrionServer(folder, database_url=database_url, **options) as server:
        yield server


# -- waiting ----------------------------------------------------------------------------------


def wait_for(condition, timeout, what, interval=0.1):
    """Call ``condition`` every ``interval`` seconds until it returns something true, and
    return that; fail the test once ``timeout`` seconds have passed without. ``what`` says
    what was awaited: a string, or a callable that says where things stand then."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            awaited = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout} s waiting for {awaited}")
        time.sleep(interval)


# -- processes of a test: agents, workers -----------------------------------------------------


def start_logged(argv, *, env, cwd, log_path):
    """Start ``argv`` in ``cwd`` with ``env``, in a session of its own (so ``os.killpg`` takes
    it whole), its stdout and stderr written to ``log_path`` (kept as ``process.log_path``)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    process.log_path = log_path
    return process


def stop_all(processes, timeout=30):
    """SIGTERM each of ``processes`` still running, then wait for them; the session of one not
    gone in ``timeout`` seconds is killed (SIGKILL)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)


#: Seconds between an agent's polls, and that a cancelled run's process has to stop before it
#: is killed, in :data:`AGENT_SETTINGS`.
AGENT_POLL = 0.3
AGENT_CANCEL_GRACE = 2
#: Agents of a test's size: they poll every 0.3 s without prefetching, and their flow runs
#: heartbeat every 0.5 s.
AGENT_SETTINGS = {
    "ORION_AGENT_QUERY_INTERVAL": AGENT_POLL,
    "ORION_AGENT_PREFETCH_SECONDS": 0,
    "ORION_AGENT_CANCEL_GRACE_SECONDS": AGENT_CANCEL_GRACE,
    "ORION_HEARTBEAT_SECONDS": 0.5,
}


class Agents:
    """``orion agent start`` processes of one test against ``server`` (anything with an
    ``api_url``: an :class:`OrionServer`), each logging to ``<folder>/agent-<n>.log``; call
    :meth:`kill_all` at the end.

    They run in ``folder``, with home ``<folder>/home`` and ``settings`` (``ORION_*``
    variables by their full names; default :data:`AGENT_SETTINGS`). :meth:`command` runs
    another ``orion`` command with the same environment (``deployment create``,
    ``flow-run cancel``...).
    """

    def __init__(self, server, folder, settings=None):
        self.server = server
        self.folder = Path(folder)
        self.settings = AGENT_SETTINGS if settings is None else settings
        self.processes = []

    def env(self, **extra):
        return orion_env(
            self.folder / "home",
            ORION_API_URL=self.server.api_url,
            **{**self.settings, **extra},
        )

    def start(self, *args, python=()):
        """Start ``orion agent start ARGS``; ``python``: the interpreter to run the console
        script with, as a one-item tuple (default: the script's own)."""
        process = start_logged(
            [*python, ORION, "agent", "start", *args],
            env=self.env(),
            cwd=self.folder,
            log_path=self.folder / f"agent-{len(self.processes)}.log",
        )
        self.processes.append(process)
        return process

    def command(self, *args, cwd=None, timeout=120):
        """Run ``orion ARGS`` (in ``cwd``) with the agents' environment, to its end: the
        finished process, its stdout and stderr as text."""
        return subprocess.run(
            [ORION, *args],
            env=self.env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @staticmethod
    def output(process):
        with open(process.log_path) as log:
            return log.read()

    def claims(self, process):
        return set(re.findall(r"Claimed flow run ([0-9a-f-]{36})", self.output(process)))

    def stop(self, process, timeout=60):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def kill_all(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


#: The flows agents run in tests (:func:`write_flows` puts them in ``flows.py``): ``quick``
#: (a task), ``sleepy`` (60 s unless told), ``holding`` (a task holding a slot of the
#: concurrency limit ``agent-test-db``, if there is one).
FLOWS = """
import time

from client.sdk.flows import flow
from client.sdk.tasks import task


@task
def add(x, y):
    return x + y


@task(tags=["agent-test-db"])
def hold(seconds):
    time.sleep(seconds)


@flow
def quick(x=1):
    return add(x, 1)


@flow
def sleepy(seconds=60):
    time.sleep(seconds)
    return seconds


@flow
def holding(seconds=60):
    hold(seconds)
"""


def write_flows(folder):
    """:data:`FLOWS` as ``<folder>/flows.py``; returns ``folder``."""
    (folder / "flows.py").write_text(FLOWS)
    return folder


def due_runs(orion, deployment, count, parameters=None):
    """Ids of ``count`` new runs of ``deployment``, Scheduled now (``orion``: an
    ``OrionClient``)."""
    return [
        orion.create_flow_run_from_deployment(
            deployment.id, state=Scheduled(), parameters=parameters
        ).id
        for _ in range(count)
    ]


def states_of(orion, run_ids):
    """``{run id: state type}`` of the runs found among ``run_ids``."""
    runs = []
    for start in range(0, len(run_ids), 200):
        runs += orion.read_flow_runs(
            flow_run_filter={"id": {"any_": run_ids[start : start + 200]}}, limit=200
        )
    return {run.id: run.state_type for run in runs}


def all_final(orion, run_ids):
    """Whether every run of ``run_ids`` is in a final state. Polled every 0.1 s while
    hundreds of flow processes share the two cores, so it counts (a request per 500 ids,
    ~5 ms of server CPU) instead of reading the runs (~45 ms of server CPU for 500, then the
    client's parsing: a third of a core at the rate of the poll)."""
    final = {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]}}
    done = sum(
        orion.count_flow_runs(
            flow_run_filter={"id": {"any_": run_ids[start : start + 500]}, "state": final}
        )
        for start in range(0, len(run_ids), 500)
    )
    return done == len(run_ids)


# -- the API over plain HTTP, and browser pages -----------------------------------------------


class JsonApi:
    """A live server's API over plain HTTP, JSON in and out: ``api("POST", "/flows/", body)``
    is the answer's body (None when empty); an error status raises ``HTTPError``. ``base``:
    the API's URL."""

    def __init__(self, base, timeout=10):
        self.base = base
        self.timeout = timeout

    def __call__(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read() or b"null")


@contextmanager
def offline_page(browser, *, timeout=15_000, offline_images=None, **options):
    """A Playwright page of a new context of ``browser`` (``options``: ``new_context``'s)
    that reaches 127.0.0.1 only: any other request is aborted and its URL listed in
    ``page.blocked`` (an image is answered with ``offline_images``, PNG bytes, if given).
    Uncaught script errors and console errors are listed in ``page.problems``; the caller
    checks both lists. The context is closed after the block."""
    context = browser.new_context(**options)
    problems, blocked = [], []

    def route(request_route):
        request = request_route.request
        if urlsplit(request.url).hostname == "127.0.0.1":
            request_route.continue_()
        elif offline_images is not None and request.resource_type == "image":
            request_route.fulfill(status=200, content_type="image/png", body=offline_images)
        else:
            blocked.append(request.url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(timeout)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"console: {message.text}"),
    )
    page.problems, page.blocked = problems, blocked
    try:
        yield page
    finally:
        context.close()
