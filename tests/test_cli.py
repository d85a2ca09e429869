"""The ``orion`` command line (app.cli): database commands in-process, ``orion start`` for real.

Database commands run with click's CliRunner against a private database of each backend
(PostgreSQL: ``<test database>_cli``), configured through ``ORION_*`` variables as a user would.
"""

import os
import uuid
from importlib.metadata import entry_points
from urllib.parse import urlsplit

import psycopg2
import pytest
from click.testing import CliRunner
from playhouse.migrations import Migration
from psycopg2 import sql

from app import migrations
from app.db import open_database
from orion_cli import orion_cli
from tests.support import ORION, POSTGRES_URL, OrionServer, isolated_database_url
from tests.test_migrations import (
    FUTURE,
    add_run_with_state,
    model_tables,
    record_future_migration,
    restored_binding,
    row_counts,
)

REAL_MIGRATIONS = [m.name for m in Migration.load_directory(migrations.DIRECTORY)]

# `orion start` must answer /api/health this soon (seconds) after being launched.
START_BUDGET_SECONDS = 10


@pytest.fixture
def cli_url(backend, tmp_path):
    """URL of an empty database of the current backend, private to this module."""
    return isolated_database_url(backend, tmp_path, "cli")


@pytest.fixture
def orion(cli_url, tmp_path, monkeypatch):
    """Run ``orion <args>`` in-process with ORION_DATABASE_URL set; returns the click Result."""
    monkeypatch.setenv("ORION_DATABASE_URL", cli_url)
    monkeypatch.setenv("ORION_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    with restored_binding():
        yield lambda *args, input=None: runner.invoke(orion_cli, list(args), input=input)


@pytest.fixture
def cdb(cli_url):
    """A peewee database on ``cli_url``, independent of the one the CLI binds."""
    db = open_database(cli_url)
    yield db
    db.close_all()


def test_db_upgrade_status_and_downgrade(orion, cdb):
    result = orion("db", "status")
    assert result.exit_code == 0, result.output
    assert f"[ ] {REAL_MIGRATIONS[0]}" in result.output
    assert "pending migration(s): run `orion db upgrade`" in result.output

    result = orion("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert [f"Applied {name}" for name in REAL_MIGRATIONS] == [
        line for line in result.output.splitlines() if line.startswith("Applied ")
    ]
    assert orion("db", "upgrade").output.endswith("Database schema is up to date.\n")

    result = orion("db", "status")
    assert result.exit_code == 0, result.output
    assert f"[x] {REAL_MIGRATIONS[-1]}" in result.output
    assert "Schema is up to date." in result.output

    result = orion("db", "downgrade", input="n\n")
    assert result.exit_code == 1
    assert "This reverts every migration in" in result.output
    assert set(cdb.get_tables()) == model_tables(cdb) | {migrations.HISTORY_TABLE}

    result = orion("db", "downgrade", "--yes")
    assert result.exit_code == 0, result.output
    assert f"Reverted {REAL_MIGRATIONS[0]}" in result.output
    assert cdb.get_tables() == [migrations.HISTORY_TABLE]


def test_reset_db_asks_first(orion, cdb):
    migrations.upgrade(cdb)
    add_run_with_state(cdb)

    result = orion("reset-db", input="n\n")
    assert result.exit_code == 1
    assert "This drops all Orion data in" in result.output
    assert "Aborted!" in result.output
    assert row_counts(cdb)["FlowRun"] == 1

    result = orion("reset-db", input="y\n")
    assert result.exit_code == 0, result.output
    assert row_counts(cdb)["FlowRun"] == 0


def test_reset_db_yes_skips_the_question(orion, cdb):
    migrations.upgrade(cdb)
    add_run_with_state(cdb)

    result = orion("reset-db", "--yes")

    assert result.exit_code == 0, result.output
    assert "Continue?" not in result.output
    assert "Dropped all Orion tables" in result.output
    assert f"Applied {REAL_MIGRATIONS[0]}" in result.output
    assert set(row_counts(cdb).values()) == {0}


def test_newer_database_gives_a_message_not_a_traceback(orion, cdb):
    migrations.upgrade(cdb)
    record_future_migration(cdb)

    for args in (("db", "status"), ("db", "upgrade"), ("db", "downgrade", "--yes")):
        result = orion(*args)
        assert result.exit_code == 1, result.output
        assert f"Error: database schema is at migration {FUTURE}" in result.output
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)


def test_prompt_masks_the_database_password(monkeypatch):
    monkeypatch.setenv("ORION_DATABASE_URL", "postgresql://orion:s3cret@db.example:5432/orion")
    with restored_binding():
        result = CliRunner().invoke(orion_cli, ["reset-db"], input="n\n")

    assert "postgresql://orion:***@db.example:5432/orion" in result.output
    assert "s3cret" not in result.output


def test_flask_orion_uses_the_app_settings(cli_url, tmp_path, monkeypatch):
    from flask.cli import cli as flask_cli

    from app import create_app

    monkeypatch.setenv("ORION_DATABASE_URL", "sqlite:////nonexistent/ignored.db")
    with restored_binding():
        app = create_app({"TESTING": True, "HOME": str(tmp_path), "DATABASE_URL": cli_url})
        # `flask orion` is Flask's plugin command from the `flask.commands` entry point (the
        # `flask` console script is `flask.cli.cli`); with no app context pushed, the command
        # pushes the one of the app Flask loads.
        assert "orion" not in app.cli.commands
        assert entry_points(group="flask.commands")["orion"].load() is orion_cli
        result = app.test_cli_runner().invoke(flask_cli, ["orion", "db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert f"Applied {REAL_MIGRATIONS[0]}" in result.output


def test_orion_start_serves_until_terminated(tmp_path):
    assert os.path.exists(ORION), "the orion console script is missing: run `pip install -e .`"
    server = OrionServer(tmp_path, workers=1, threads=2, stderr_path=tmp_path / "stderr.txt")

    try:
        server.start(timeout=START_BUDGET_SECONDS)
    finally:
        returncode = server.stop()

    output = server.log_path.read_text()
    assert returncode == 0, server.stderr_path.read_text()
    assert f"Applied {REAL_MIGRATIONS[0]}" in output
    assert f"ORION_API_URL=http://127.0.0.1:{server.port}/api" in output
    assert os.path.exists(tmp_path / "home" / "orion.db")


# ----------------------------------------------------------------------------- a missing database


@pytest.fixture
def fresh_postgres(backend):
    """``make(user=None)``: the URL of a PostgreSQL database (on the test server) that does
    not exist, named after the test database plus a random suffix, as ``user`` if given;
    every database and role made is dropped at the end."""
    if backend != "postgres":
        pytest.skip("PostgreSQL only: SQLite creates its file on first use")
    base = urlsplit(POSTGRES_URL)
    names, roles = [], []
    admin = psycopg2.connect(POSTGRES_URL)
    admin.autocommit = True

    def make(user=None):
        name = f"{base.path.lstrip('/')}_new_{uuid.uuid4().hex[:8]}"
        names.append(name)
        netloc = base.netloc if user is None else f"{user}@{base.hostname}:{base.port or 5432}"
        return base._replace(netloc=netloc, path=f"/{name}").geturl()

    def role(can_create):
        name = f"{base.path.lstrip('/')}_role_{uuid.uuid4().hex[:8]}"
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE ROLE {} LOGIN {}").format(
                    sql.Identifier(name), sql.SQL("CREATEDB" if can_create else "NOCREATEDB")
                )
            )
        roles.append(name)
        return name

    make.role = role
    make.exists = lambda name: _database_exists(admin, name)
    yield make
    with admin.cursor() as cursor:
        for name in names:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        for name in roles:
            cursor.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
    admin.close()


def _database_exists(connection, url):
    name = urlsplit(url).path.lstrip("/")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
        )
        row = cursor.fetchone()
    return row and row[0]


def run_orion(url, tmp_path, *args):
    """``orion ARGS`` in-process with ORION_DATABASE_URL=url; the click Result."""
    env = {"ORION_DATABASE_URL": url, "ORION_HOME": str(tmp_path / "home")}
    with restored_binding():
        return CliRunner(env=env).invoke(orion_cli, list(args))


def test_db_upgrade_creates_a_missing_postgres_database(fresh_postgres, tmp_path):
    url = fresh_postgres()
    status = run_orion(url, tmp_path, "db", "status")
    assert status.exit_code == 1 and not fresh_postgres.exists(url)
    name = urlsplit(url).path.lstrip("/")
    assert (
        f'Error: PostgreSQL database "{name}" does not exist: `orion db upgrade` creates it'
    ) in status.output and "Traceback" not in status.output

    result = run_orion(url, tmp_path, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"Created the database {url}" in result.output
    assert f"Applied {REAL_MIGRATIONS[-1]}" in result.output
    assert fresh_postgres.exists(url) == urlsplit(POSTGRES_URL).username
    again = run_orion(url, tmp_path, "db", "upgrade")
    assert again.exit_code == 0 and "Created" not in again.output
    assert "Database schema is up to date." in again.output


def test_a_user_who_may_create_databases_owns_the_one_created(fresh_postgres, tmp_path):
    user = fresh_postgres.role(can_create=True)
    url = fresh_postgres(user)
    result = run_orion(url, tmp_path, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert fresh_postgres.exists(url) == user


def test_a_user_who_may_not_create_databases_is_told_how(fresh_postgres, tmp_path):
    user = fresh_postgres.role(can_create=False)
    url = fresh_postgres(user)
    name = urlsplit(url).path.lstrip("/")
    base = urlsplit(POSTGRES_URL)
    result = run_orion(url, tmp_path, "db", "upgrade")
    assert result.exit_code == 1 and not fresh_postgres.exists(url)
    assert (
        f'Error: PostgreSQL database "{name}" does not exist, and user {user} cannot '
        "create it (permission denied to create database)"
    ) in result.output
    assert (
        f"`createdb -h {base.hostname} -p {base.port or 5432} -U postgres -O {user} {name}`"
    ) in result.output
    assert f'`CREATE DATABASE "{name}" OWNER "{user}";`' in result.output
    assert "Traceback" not in result.output


def test_orion_start_creates_a_missing_postgres_database(fresh_postgres, tmp_path):
    url = fresh_postgres()
    with OrionServer(tmp_path, database_url=url, workers=1) as server:
        output = server.output()
    assert f"Created the database {url}" in output and f"Applied {REAL_MIGRATIONS[0]}" in output
