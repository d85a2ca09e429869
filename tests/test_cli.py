"""The ``orion`` command line (app.cli): database commands in-process, ``orion start`` for real.

Database commands run with click's CliRunner against a private database of each backend
(PostgreSQL: ``<test database>_cli``), configured through ``ORION_*`` variables as a user would.
"""
import os

import pytest
from click.testing import CliRunner
from playhouse.migrations import Migration

from app import migrations
from app.cli import orion_cli
from app.db import open_database
from app.models import TABLES
from tests.support import ORION, OrionServer, isolated_database_url
from tests.test_migrations import (
    FUTURE,
    add_run_with_state,
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
    assert len(cdb.get_tables()) == len(TABLES) + 1

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
    from app import create_app

    monkeypatch.setenv("ORION_DATABASE_URL", "sqlite:////nonexistent/ignored.db")
    with restored_binding():
        app = create_app({"TESTING": True, "HOME": str(tmp_path), "DATABASE_URL": cli_url})
        assert app.cli.commands["orion"] is orion_cli
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["orion", "db", "upgrade"])

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
