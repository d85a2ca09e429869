"""Settings: Prefect's names as aliases (ours win), and Prefect's database URLs."""

import logging

import pytest

import app as app_package
from app.config import database_url_from_prefect, load_config


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("ORION_DATABASE_URL", "PREFECT_ORION_DATABASE_CONNECTION_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "url, ours",
    [
        ("sqlite+aiosqlite:////var/lib/prefect/orion.db", "sqlite:////var/lib/prefect/orion.db"),
        ("postgresql+asyncpg://u:p@db:5432/prefect", "postgresql://u:p@db:5432/prefect"),
        ("POSTGRESQL+ASYNCPG://u@db/prefect", "postgresql://u@db/prefect"),
        ("postgresql://u@db/orion", "postgresql://u@db/orion"),
        ("sqlite:///orion.db", "sqlite:///orion.db"),
    ],
)
def test_prefect_database_urls_are_understood(url, ours):
    assert database_url_from_prefect(url) == ours


def test_prefect_database_url_is_used_when_ours_is_unset(clean_env, tmp_path):
    clean_env.setenv(
        "PREFECT_ORION_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{tmp_path}/prefect.db"
    )
    config = load_config()
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/prefect.db"
    assert config["SETTING_NOTES"] == [
        "ORION_DATABASE_URL taken from PREFECT_ORION_DATABASE_CONNECTION_URL (Prefect's name)."
    ]


def test_ours_wins_when_both_are_set(clean_env, tmp_path):
    clean_env.setenv("PREFECT_ORION_DATABASE_CONNECTION_URL", "postgresql+asyncpg://x/prefect")
    clean_env.setenv("ORION_DATABASE_URL", f"sqlite:///{tmp_path}/orion.db")
    config = load_config()
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/orion.db"
    assert config["SETTING_NOTES"] == [
        "PREFECT_ORION_DATABASE_CONNECTION_URL is ignored: ORION_DATABASE_URL is set and wins."
    ]


def test_an_async_url_in_our_own_setting_works_too(clean_env, tmp_path):
    clean_env.setenv("ORION_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/orion.db")
    assert load_config()["DATABASE_URL"] == f"sqlite:///{tmp_path}/orion.db"


def test_no_alias_no_note(clean_env):
    assert load_config()["SETTING_NOTES"] == []


def test_the_server_says_so_once_at_start(clean_env, tmp_path, caplog, db, make_app):
    clean_env.setenv("PREFECT_ORION_DATABASE_CONNECTION_URL", "postgresql+asyncpg://x/prefect")
    clean_env.setenv("ORION_DATABASE_URL", "sqlite:///unused.db")
    app_package._NOTES_LOGGED.clear()
    caplog.set_level(logging.WARNING, logger="app")
    # make_app passes the test database as an override, so the environment is only read.
    make_app()
    make_app()
    notes = [r.getMessage() for r in caplog.records if "PREFECT_ORION" in r.getMessage()]
    assert notes == [
        "PREFECT_ORION_DATABASE_CONNECTION_URL is ignored: ORION_DATABASE_URL is set and wins."
    ]
