"""Database layer: connections dropped by the server, SQLite locking."""
import threading

import psycopg2
import pytest

from app.db import database, is_sqlite
from app.models import Flow
from tests.conftest import POSTGRES_URL


def test_recovers_when_postgres_drops_pooled_connections(app, client):
    if is_sqlite():
        pytest.skip("PostgreSQL only: the server dropping connections")
    assert client.post("/api/flows/filter", json={}).status_code == 200
    admin = psycopg2.connect(POSTGRES_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    admin.close()
    # The dead connection may fail one request, with a 503 that says why, never a 500.
    first = client.post("/api/flows/filter", json={})
    assert first.status_code in (200, 503)
    if first.status_code == 503:
        assert "Database unavailable" in first.get_json()["detail"]
    for _ in range(3):
        assert client.post("/api/flows/filter", json={}).status_code == 200


def test_concurrent_writers_wait_for_each_other_instead_of_failing(app, client):
    """Many threads writing at once (SQLite: BEGIN IMMEDIATE + busy_timeout, never locked)."""
    errors = []

    def write(index):
        try:
            for n in range(10):
                response = client.post("/api/flows/", json={"name": f"f{index}-{n}"})
                assert response.status_code == 201, response.get_json()
        except AssertionError as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.connection_context():
        assert Flow.select().count() == 80


def test_a_transaction_is_all_or_nothing(app, db):
    """Holds with PostgreSQL's lazy BEGIN too: the first statement opens the transaction."""
    with pytest.raises(RuntimeError):
        with database.atomic():
            Flow.create(name="first")
            Flow.create(name="second")
            raise RuntimeError("roll back")
    assert Flow.select().count() == 0
    with database.atomic():
        Flow.create(name="kept")
        with pytest.raises(RuntimeError):
            with database.atomic():
                Flow.create(name="savepoint")
                raise RuntimeError("roll back the savepoint only")
    assert [f.name for f in Flow.select()] == ["kept"]


def test_a_transaction_that_runs_nothing_sends_nothing(app, db):
    executed = []
    database.obj.query_hooks = [lambda event: executed.append(event.sql)]
    try:
        with database.atomic():
            pass
        with database.atomic():
            Flow.select().count()
    finally:
        database.obj.query_hooks = []
    assert len(executed) == 1
    if not is_sqlite():
        assert executed[0].startswith("BEGIN; SELECT")
