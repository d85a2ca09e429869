"""Real processes for SDK tests: an ``orion start`` server and flow scripts run by Python.

Servers listen on a port from ``ORION_TEST_PORTS`` (any free one if unset), keep their home
in a temporary folder and are always stopped. PostgreSQL servers use their own database,
``<test database>_sdk_server``, emptied for each server, so no other test's tables are touched.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import POSTGRES_URL
from tests.test_migrations import isolated_database_url

ORION = str(Path(sys.executable).parent / "orion")
REPO = str(Path(__file__).resolve().parents[2])


def server_database_url(backend, tmp_path):
    """An empty database for an SDK test server: SQLite in ``tmp_path``, or the PostgreSQL
    database ``<test database>_sdk_server``, emptied (no other test module uses it)."""
    name = urlsplit(POSTGRES_URL).path.lstrip("/") + "_sdk_server"
    return isolated_database_url(backend, tmp_path, name)


class Server:
    """An ``orion start`` process on ``port`` with ``env``; start/stop as often as needed."""

    def __init__(self, port, env, log_path):
        self.port = port
        self.env = env
        self.log_path = log_path
        self.process = None
        self.api_url = f"http://127.0.0.1:{port}/api"

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [ORION, "start", "--port", str(self.port), "--workers", "1", "--threads", "8"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"orion start exited: {Path(self.log_path).read_text()}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"orion start did not answer: {Path(self.log_path).read_text()}")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def base_env(home, **extra):
    """The environment of servers and flow scripts: this interpreter's, without ORION_*
    settings of the caller, plus ``home`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORION_")}
    env.update(ORION_HOME=str(home), PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_script(tmp_path, name, source, env):
    """Write ``source`` (dedented) to ``<tmp>/<name>.py`` and run it; returns the Popen."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    out = open(tmp_path / f"{name}.out", "ab")
    process = subprocess.Popen([sys.executable, str(path)], env=env, stdout=out,
                               stderr=subprocess.STDOUT, cwd=str(tmp_path))
    out.close()
    return process


def run_script(tmp_path, name, source, env, timeout=120):
    """Run a script to its end; returns (exit code, its output)."""
    process = start_script(tmp_path, name, source, env)
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, (tmp_path / f"{name}.out").read_text()
