"""Shared fixtures: an app per database backend, clean tables per test, HTTP test client.

Every test that asks for ``app``, ``db`` or ``client`` runs once on SQLite and once on
PostgreSQL. ``ORION_TEST_BACKENDS=sqlite`` (comma-separated) narrows that for quick local runs;
``ORION_TEST_POSTGRES_URL`` points at another server (default: local, user postgres).
"""
import os

import psycopg2
import pytest
from psycopg2 import sql

from app import bind_process_state, create_app, migrations
from app.config import load_config
from app.db import database, init_database, is_sqlite
from app.models import TABLES

POSTGRES_URL = os.environ.get(
    "ORION_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/orion_test"
)
BACKENDS = [
    b.strip() for b in os.environ.get("ORION_TEST_BACKENDS", "sqlite,postgres").split(",")
]


def ensure_postgres_database(url):
    """Create the test database named in ``url`` if it does not exist yet."""
    params = psycopg2.extensions.parse_dsn(url)
    name = params.pop("dbname")
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()


def database_url(backend, tmp_path_factory):
    """A fresh, empty database of the given backend; returns its URL."""
    if backend == "sqlite":
        return "sqlite:///" + str(tmp_path_factory.mktemp("orion") / "orion.db")
    ensure_postgres_database(POSTGRES_URL)
    return POSTGRES_URL


def test_settings(url, tmp_path_factory):
    """Settings every test app gets: its own home folder and database."""
    return {
        "TESTING": True,
        "HOME": str(tmp_path_factory.mktemp("orion-home")),
        "DATABASE_URL": url,
        "REDIS_URL": None,
        "API_KEY": None,
    }


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    """The database backend under test: "sqlite" or "postgres"."""
    return request.param


@pytest.fixture(scope="session")
def app(backend, tmp_path_factory):
    """An Orion app on a freshly migrated database of the current backend."""
    url = database_url(backend, tmp_path_factory)
    init_database(load_config(test_settings(url, tmp_path_factory)))
    with database.connection_context():
        migrations.reset(database)
    application = create_app(test_settings(url, tmp_path_factory))
    yield application
    database.close_all()


def clear_tables():
    """Delete every row of every table (children first)."""
    with database.connection_context():
        if is_sqlite():
            with database.atomic():
                for model in reversed(TABLES):
                    model.delete().execute()
        else:
            names = ", ".join(f'"{m._meta.table_name}"' for m in TABLES)
            database.execute_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture
def db(app):
    """The bound database, emptied after the test."""
    yield database
    clear_tables()


@pytest.fixture
def client(app, db):
    """Flask test client for the API on clean tables."""
    return app.test_client()


@pytest.fixture
def make_app(app, db):
    """Build extra apps with setting overrides; the shared ``app``'s database is rebound after.

    peewee's ``database`` is one proxy per process, so a second app takes it over; tests that
    need one (other settings, a broken database) use this factory to hand it back.
    """
    def build(**overrides):
        settings = {key: app.config[key] for key in ("TESTING", "HOME", "DATABASE_URL")}
        settings.update(overrides)
        return create_app(settings)

    yield build
    bind_process_state(app)


@pytest.fixture
def flow(client):
    """A flow named "etl", as the API returns it."""
    return client.post("/api/flows/", json={"name": "etl"}).get_json()


@pytest.fixture
def flow_run(client, flow):
    """A Pending flow run of ``flow``, as the API returns it."""
    return client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()


def assert_422(response, *loc):
    """Assert an Orion-shaped 422 whose detail names the location ``loc`` (a prefix)."""
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["exception_message"] == "Invalid request received."
    locations = [tuple(d["loc"][: len(loc)]) for d in body["exception_detail"]]
    assert tuple(loc) in locations, body["exception_detail"]
    return body
