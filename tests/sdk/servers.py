"""Real processes for SDK tests: an ``orion start`` server and flow scripts run by Python.

Servers listen on the SDK tests' ports (4330-4339), keep their home in a temporary folder and
are always stopped. PostgreSQL servers use their own database, ``<test database>_server``,
dropped and created afresh for each server, so the suite's tables are never touched.
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

import psycopg2
from psycopg2 import sql

from tests.conftest import POSTGRES_URL

ORION = str(Path(sys.executable).parent / "orion")
REPO = str(Path(__file__).resolve().parents[2])


def fresh_postgres_url(suffix="_server"):
    """A just-created, empty database next to the suite's; returns its URL."""
    params = psycopg2.extensions.parse_dsn(POSTGRES_URL)
    name = params.pop("dbname") + suffix
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


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
