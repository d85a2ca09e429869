"""Database layer: connections dropped by the server, SQLite locking, round trips."""

import threading
import uuid
from pathlib import Path

import psycopg2
import pytest
from peewee import IntegrityError

from app.db import SQLITE_SYNCHRONOUS, database, is_sqlite, open_database
from app.models import Flow, statements, utcnow
from tests.support import POSTGRES_URL


def test_recovers_when_postgres_drops_pooled_connections(app, client):
    if is_sqlite():
        pytest.skip("PostgreSQL only: the server dropping connections")
    # Several idle connections in the pool, as a threaded server leaves it.
    barrier = threading.Barrier(4)

    def read():
        with database.connection_context():
            barrier.wait()
            Flow.select().count()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.post("/api/flows/filter", json={}).status_code == 200
    admin = psycopg2.connect(POSTGRES_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    admin.close()
    # The first request may fail, with a 503 that says why, never a 500; the pool then
    # drops its other dead connections, so the next requests all succeed.
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


@pytest.fixture
def round_trips(app, db):
    """The SQL texts sent to the database server, one per round trip, while the test runs."""
    sent = []
    database.obj.query_hooks = [lambda event: sent.append(event.sql)]
    yield sent
    database.obj.query_hooks = []


def _insert_flow(name):
    now = utcnow()
    statements.insert_row(
        Flow,
        {"id": uuid.uuid4(), "name": name, "created": now, "updated": now, "tags": []},
        deferred=True,
    )


def test_deferred_writes_keep_their_order_and_values(app, db, round_trips):
    with database.atomic():
        _insert_flow("100% first")
        _insert_flow("second %s %(x)s")
        names = [f.name for f in Flow.select().order_by(Flow.name)]
    assert names == ["100% first", "second %s %(x)s"]
    if not is_sqlite():
        # Both inserts went with the SELECT; the COMMIT had nothing to carry.
        assert len(round_trips) == 1
        assert round_trips[0].startswith("BEGIN; ") and '"flow"' in round_trips[0]
        assert round_trips[0].count("EXECUTE ") == 2 and "SELECT" in round_trips[0]


def test_deferred_writes_travel_with_the_commit(app, db, round_trips):
    with database.atomic():
        _insert_flow("a")
        _insert_flow("b")
    assert sorted(f.name for f in Flow.select()) == ["a", "b"]
    if not is_sqlite():
        assert len(round_trips) == 2  # the transaction and the SELECT above
        assert round_trips[0].startswith("BEGIN; ") and round_trips[0].endswith("; COMMIT")
        assert round_trips[0].count("EXECUTE ") == 2


def test_deferred_writes_are_dropped_by_a_rollback(app, db):
    with pytest.raises(RuntimeError):
        with database.atomic():
            _insert_flow("never")
            raise RuntimeError("roll back")
    with database.atomic():
        _insert_flow("kept")
        with pytest.raises(RuntimeError):
            with database.atomic():
                _insert_flow("savepoint")
                raise RuntimeError("roll back the savepoint only")
    assert [f.name for f in Flow.select()] == ["kept"]


def test_a_failing_deferred_write_fails_and_undoes_its_transaction(app, db):
    with pytest.raises(IntegrityError):
        with database.atomic():
            Flow.create(name="written first")
            _insert_flow("duplicate")
            _insert_flow("duplicate")  # flow names are unique
    assert Flow.select().count() == 0
    with database.atomic():  # the connection is usable afterwards
        _insert_flow("after")
    assert [f.name for f in Flow.select()] == ["after"]


def test_a_state_transition_is_two_round_trips_and_a_creation_one(app, client, flow, round_trips):
    if is_sqlite():
        pytest.skip("PostgreSQL only: SQLite has no round trips")
    run = client.post(
        "/api/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "SCHEDULED"}}
    ).get_json()
    assert len(round_trips) == 1 and round_trips[0].endswith("; COMMIT")
    for state_type in ("PENDING", "RUNNING", "COMPLETED"):
        round_trips.clear()
        response = client.post(
            f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": state_type}}
        )
        assert response.status_code == 201
        # lock and read; then the state row, the run's columns, the queueing of matching
        # notifications and the commit together
        assert len(round_trips) == 2, round_trips
        assert "FOR UPDATE" in round_trips[0] or round_trips[0].count("EXECUTE ") == 2
        assert round_trips[1].count("EXECUTE ") == 3 and round_trips[1].endswith("; COMMIT")


def _require_postgres():
    if is_sqlite():
        pytest.skip("PostgreSQL only: server-side prepared statements")


def test_a_statement_is_prepared_once_per_connection(app, client, flow, round_trips):
    _require_postgres()
    run = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
    database.obj.close_idle()  # a new connection: nothing prepared on it yet
    round_trips.clear()
    for state_type in ("RUNNING", "COMPLETED"):
        assert (
            client.post(
                f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": state_type}}
            ).status_code
            == 201
        )
    first, second = round_trips[0], round_trips[2]
    assert first.count("PREPARE ") == 2 and "EXECUTE " in first  # the lock and the read
    assert "PREPARE " not in second and second.count("EXECUTE ") == 2


def test_prepared_statements_survive_a_failed_prepare(app, db, round_trips):
    """A round trip that carried a PREPARE failed: the connection cannot know whether the
    PREPARE ran, so it drops them all and prepares again."""
    _require_postgres()
    database.obj.close_idle()
    Flow.create(name="duplicate")
    with pytest.raises(IntegrityError):
        with database.atomic():
            _insert_flow("duplicate")  # PREPAREd in the trip that fails
            statements.exists(Flow, uuid.uuid4())
    round_trips.clear()
    with database.atomic():
        assert not statements.exists(Flow, uuid.uuid4())
    assert round_trips[0].startswith("BEGIN; DEALLOCATE ALL; PREPARE ")


def test_a_dropped_deferred_prepare_is_prepared_again(app, db, round_trips):
    _require_postgres()
    database.obj.close_idle()
    with pytest.raises(RuntimeError):
        with database.atomic():
            _insert_flow("never sent")  # PREPARE queued with it
            raise RuntimeError("roll back before anything was sent")
    with database.atomic():
        _insert_flow("sent")
    assert [f.name for f in Flow.select()] == ["sent"]
    assert "DEALLOCATE ALL; PREPARE " in round_trips[0]


def test_a_task_run_starts_in_two_round_trips_and_completes_in_two(
    app, client, flow_run, round_trips
):
    _require_postgres()
    client.post(f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    for index in range(2):  # the second time, every statement is already prepared
        round_trips.clear()
        response = client.post(
            "/api/task_runs/create_and_set_state",
            json={
                "flow_run_id": flow_run["id"],
                "task_key": "t",
                "dynamic_key": str(index),
                "proposed_state": {"type": "RUNNING"},
            },
        )
        assert response.status_code == 201
        assert response.get_json()["orchestration_result"]["status"] == "ACCEPT"
        # the run's INSERT with the read of its flow run; then its state, its columns, COMMIT
        assert len(round_trips) == 2, round_trips
        task_run = response.get_json()["task_run"]
        round_trips.clear()
        response = client.post(
            f"/api/task_runs/{task_run['id']}/set_state", json={"state": {"type": "COMPLETED"}}
        )
        assert response.status_code == 201
        assert len(round_trips) == 2, round_trips


@pytest.mark.parametrize("level, expected", [("normal", 1), ("FULL", 2), (" full ", 2)])
def test_sqlite_synchronous_is_a_setting(tmp_path, level, expected):
    """ORION_SQLITE_SYNCHRONOUS sets the pragma on every pooled connection (1 = NORMAL,
    2 = FULL in SQLite's numbering)."""
    db = open_database(f"sqlite:///{tmp_path}/s.db", sqlite_synchronous=level)
    with db.connection_context():
        assert db.execute_sql("PRAGMA synchronous").fetchone()[0] == expected
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close_all()


def test_a_bad_sqlite_synchronous_names_the_setting(tmp_path):
    with pytest.raises(ValueError, match="ORION_SQLITE_SYNCHRONOUS='off': use one of normal"):
        open_database(f"sqlite:///{tmp_path}/s.db", sqlite_synchronous="off")


def test_the_default_sqlite_synchronous_is_the_documented_one(tmp_path):
    from app.config import DefaultConfig

    assert DefaultConfig.SQLITE_SYNCHRONOUS in SQLITE_SYNCHRONOUS
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"`ORION_SQLITE_SYNCHRONOUS` (default `{DefaultConfig.SQLITE_SYNCHRONOUS}`)" in readme
