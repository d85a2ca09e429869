"""Versioned migrations (app.migrations) on SQLite and PostgreSQL.

Each test gets its own empty database and its own peewee database object, so nothing here
touches the shared ``app`` fixture's database or binding: SQLite uses a temp file, PostgreSQL
a dedicated ``<test database>_migrations`` database emptied before every test
(tests.support.isolated_database_url).
"""

import datetime
import json
import os
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from peewee import DatabaseError, SqliteDatabase, Table
from playhouse.migrations import Migration, MigrationError

from app import migrations
from app.db import database, open_database
from app.exceptions import SchemaTooNew
from app.models import (
    AGENT_POOL,
    AGENT_POOL_TYPE,
    TABLES,
    Deployment,
    Flow,
    FlowRun,
    FlowRunState,
    WorkPool,
    WorkQueue,
    utcnow,
)
from tests.support import isolated_database_url

REAL_MIGRATIONS = [m.name for m in Migration.load_directory(migrations.DIRECTORY)]
FUTURE = "9999_from_a_newer_orion"

ADD_NOTE = '''"""Test migration: a nullable note on flows."""
from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column("flow", "note", TextField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("flow", "note"))
'''

BROKEN = '''"""Test migration: creates a table, then fails."""


def up(migrator, db):
    db.execute_sql('CREATE TABLE "half_done" (id INTEGER)')
    db.execute_sql("THIS IS NOT SQL")
'''


@pytest.fixture
def mdb_url(backend, tmp_path):
    """URL of an empty database of the current backend, private to this module."""
    return isolated_database_url(backend, tmp_path, "migrations")


@pytest.fixture
def mdb(mdb_url):
    """An unbound peewee database on ``mdb_url``."""
    db = open_database(mdb_url)
    yield db
    db.close_all()


@pytest.fixture
def extra_migrations(tmp_path, monkeypatch):
    """Point app.migrations at a copy of the real migrations plus the given extra files.

    Returns a function ``add(name, source)`` writing one more migration file.
    """
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name in REAL_MIGRATIONS:
        shutil.copy(os.path.join(migrations.DIRECTORY, name + ".py"), folder)
    monkeypatch.setattr(migrations, "DIRECTORY", str(folder))
    return lambda name, source: (folder / f"{name}.py").write_text(source)


@contextmanager
def restored_binding():
    """Give ``app.db.database`` back to whatever it was bound to before the block."""
    previous = database.obj
    try:
        yield
    finally:
        if database.obj is not None and database.obj is not previous:
            database.close_all()
        database.initialize(previous)


def schema_snapshot(db):
    """Tables, columns, indexes and constraints as the database reports them."""
    snapshot = {}
    for table in db.get_tables():
        if table == migrations.HISTORY_TABLE:
            continue
        snapshot[table] = {
            "columns": sorted(
                (c.name, c.data_type.lower(), c.null, c.primary_key) for c in db.get_columns(table)
            ),
            "indexes": sorted((i.name, tuple(i.columns), i.unique) for i in db.get_indexes(table)),
            "foreign_keys": sorted(
                (f.column, f.dest_table, f.dest_column) for f in db.get_foreign_keys(table)
            ),
        }
    if isinstance(db, SqliteDatabase):
        ddl = db.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE tbl_name != ? ORDER BY name",
            (migrations.HISTORY_TABLE,),
        ).fetchall()
    else:
        ddl = db.execute_sql(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text != %s "
            "ORDER BY 1, 2",
            (migrations.HISTORY_TABLE,),
        ).fetchall()
        # Column sizes (get_columns gives "character varying" without its length).
        ddl += db.execute_sql(
            "SELECT table_name || '.' || column_name, character_maximum_length::text "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "AND character_maximum_length IS NOT NULL AND table_name != %s ORDER BY 1",
            (migrations.HISTORY_TABLE,),
        ).fetchall()
        # Index definitions in full: method (GIN, B-tree), operator classes, expressions.
        ddl += db.execute_sql(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename != %s ORDER BY 1, 2",
            (migrations.HISTORY_TABLE,),
        ).fetchall()
    snapshot["ddl"] = ddl
    return snapshot


def model_tables(db):
    """Names of the tables the models make on ``db``'s backend: theirs, and those of their
    backend schema (SQLite's full-text index of run names and its shadow tables)."""
    backend = "sqlite" if isinstance(db, SqliteDatabase) else "postgres"
    names = {m._meta.table_name for m in TABLES}
    for model in TABLES:
        extra = getattr(model._meta, "backend_schema", None)
        if extra is not None and backend in extra.backends:
            names.update(extra.tables)
    return names


def add_run_with_state(db):
    """Insert a flow, a flow run and a state of it (a chain of foreign keys)."""
    with db.bind_ctx(TABLES):
        flow = Flow.create(name="etl")
        run = FlowRun.create(flow=flow, name="run-1")
        FlowRunState.create(flow_run=run, type="PENDING", name="Pending", timestamp=utcnow())


def insert_flow_by_sql(db):
    """Insert a flow named "etl" with plain SQL, for migrations whose schema the models no
    longer describe: ``(flow id, creation stamp, the backend's parameter mark)``, the id in
    hex, as peewee's UUIDField writes ids on SQLite (PostgreSQL reads it too)."""
    flow_id, stamp = "7a0c2d2e000040008000000000000001", "2026-01-02 03:04:05.000006"
    param = "?" if isinstance(db, SqliteDatabase) else "%s"
    db.execute_sql(
        f"INSERT INTO flow (id, created, updated, name, tags) VALUES ({param}, {param}, {param}, "
        "'etl', '[]')",
        (flow_id, stamp, stamp),
    )
    return flow_id, stamp, param


def row_counts(db):
    """Rows per model table."""
    with db.bind_ctx(TABLES):
        return {model.__name__: model.select().count() for model in TABLES}


def record_future_migration(db):
    """Make the history claim a migration this Orion does not have."""
    history = Table(migrations.HISTORY_TABLE, ("id", "name", "applied")).bind(db)
    history.insert(name=FUTURE, applied=datetime.datetime.now()).execute()


def test_upgrade_from_empty_then_down_and_up_again(mdb):
    assert migrations.status(mdb) == [(name, False) for name in REAL_MIGRATIONS]
    migrations.check_schema(mdb)

    assert migrations.upgrade(mdb) == REAL_MIGRATIONS
    assert migrations.status(mdb) == [(name, True) for name in REAL_MIGRATIONS]
    assert migrations.upgrade(mdb) == []
    expected_tables = model_tables(mdb) | {migrations.HISTORY_TABLE}
    assert set(mdb.get_tables()) == expected_tables

    assert migrations.downgrade(mdb) == REAL_MIGRATIONS[::-1]
    assert mdb.get_tables() == [migrations.HISTORY_TABLE]
    assert migrations.downgrade(mdb) == []

    assert migrations.upgrade(mdb) == REAL_MIGRATIONS
    assert set(mdb.get_tables()) == expected_tables


def test_migrated_schema_matches_the_models(mdb):
    migrations.upgrade(mdb)
    migrated = schema_snapshot(mdb)

    migrations.downgrade(mdb)
    with mdb.bind_ctx(TABLES):
        mdb.create_tables(TABLES)
    assert migrated == schema_snapshot(mdb)
    assert set(migrated) - {"ddl"} == model_tables(mdb)


def test_every_foreign_key_leads_an_index(mdb):
    """A foreign key's column is the first column of a whole-table index, so deleting a row
    it references (retention, cascades) finds the referencing rows without a scan; 0036
    dropped the single-column ones a composite index already starts with."""
    migrations.upgrade(mdb)
    unindexed = []
    for table in mdb.get_tables():
        leading = {
            index.columns[0]
            for index in mdb.get_indexes(table)
            if index.columns and " WHERE " not in (index.sql or "").upper()
        }
        leading |= set(mdb.get_primary_keys(table)[:1])
        unindexed += [
            f"{table}.{fk.column}" for fk in mdb.get_foreign_keys(table) if fk.column not in leading
        ]
    assert unindexed == []


def test_prefix_index_drop_keeps_the_composite_and_reverts(mdb):
    """0036 drops the four run id indexes, leaves the composites that start with the same
    column, and its downgrade brings the schema back as it was."""
    migrations.upgrade(mdb, target="0035_deployment_last_polled")
    before = schema_snapshot(mdb)
    dropped = {
        "task_run": "task_run_flow_run_id",
        "flow_run_state": "flow_run_state_flow_run_id",
        "task_run_state": "task_run_state_task_run_id",
        "log": "log_flow_run_id",
    }
    for table, name in dropped.items():
        assert name in {i.name for i in mdb.get_indexes(table)}
    migrations.upgrade(mdb, target="0036_drop_run_id_prefix_indexes")
    for table, name in dropped.items():
        names = {i.name for i in mdb.get_indexes(table)}
        assert name not in names
        assert any(other.startswith(name + "_") for other in names), names
    migrations.downgrade(mdb, target="0035_deployment_last_polled")
    assert schema_snapshot(mdb) == before


def test_run_name_search_is_filled_from_existing_runs_on_sqlite(mdb):
    """0026 builds SQLite's trigram index of run names from the runs already stored, and its
    downgrade leaves no trace; on PostgreSQL it does nothing."""
    migrations.upgrade(mdb, target="0025_flow_run_subflow_index")
    add_run_with_state(mdb)
    before = schema_snapshot(mdb)
    migrations.upgrade(mdb, target="0026_flow_run_name_search")
    if not isinstance(mdb, SqliteDatabase):
        assert schema_snapshot(mdb) == before
        return
    search = 'SELECT rowid FROM "flow_run_name_fts" WHERE "flow_run_name_fts" MATCH ?'
    (rowid,) = mdb.execute_sql(
        'SELECT rowid FROM "flow_run" WHERE "name" = ?', ("run-1",)
    ).fetchone()
    assert mdb.execute_sql(search, ('"UN-1"',)).fetchall() == [(rowid,)]
    migrations.downgrade(mdb, target="0025_flow_run_subflow_index")
    assert schema_snapshot(mdb) == before


def test_artifact_keys_get_their_newest_version_as_latest(mdb):
    """0038 records each key's newest artifact (by creation time, then id) as its latest;
    keyless artifacts have none; its downgrade drops the table and keeps the artifacts."""
    migrations.upgrade(mdb, target="0037_agent_pool_default_queue")
    param = "?" if isinstance(mdb, SqliteDatabase) else "%s"
    tie = sorted(uuid.uuid4().hex for _ in range(2))
    rows = [
        ("a" * 32, "daily", "2026-12-01 00:00:00.000000"),
        ("b" * 32, "daily", "2026-12-02 00:00:00.000000"),
        (tie[0], "tie", "2026-12-01 00:00:00.000000"),
        (tie[1], "tie", "2026-12-01 00:00:00.000000"),
        ("c" * 32, None, "2026-12-03 00:00:00.000000"),
    ]
    for artifact_id, key, stamp in rows:
        mdb.execute_sql(
            f"INSERT INTO artifact (id, created, updated, key) VALUES ({param}, {param}, "
            f"{param}, {param})",
            (artifact_id, stamp, stamp, key),
        )
    migrations.upgrade(mdb, target="0038_artifact_collection")
    latest = mdb.execute_sql("SELECT key, latest_id FROM artifact_collection ORDER BY key")
    assert [(key, uuid.UUID(str(i)).hex) for key, i in latest.fetchall()] == [
        ("daily", "b" * 32),
        ("tie", tie[1]),
    ]
    migrations.downgrade(mdb, target="0037_agent_pool_default_queue")
    assert "artifact_collection" not in mdb.get_tables()
    assert mdb.execute_sql("SELECT COUNT(*) FROM artifact").fetchone() == (5,)


def test_backend_specific_indexes_exist_on_their_backend_only(mdb):
    """The trigram index on flow run names is PostgreSQL's (BackendIndex): the migrated
    schema and the models' schema both have it there, and neither has it on SQLite."""
    migrations.upgrade(mdb)
    migrated = {i.name for i in mdb.get_indexes("flow_run")}
    migrations.downgrade(mdb)
    with mdb.bind_ctx(TABLES):
        mdb.create_tables(TABLES)
    from_models = {i.name for i in mdb.get_indexes("flow_run")}
    on_postgres = not isinstance(mdb, SqliteDatabase)
    assert ("flow_run_name_trgm" in migrated) is on_postgres
    assert ("flow_run_name_trgm" in from_models) is on_postgres
    if on_postgres:
        (definition,) = mdb.execute_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'flow_run_name_trgm'"
        ).fetchone()
        assert "USING gin (name gin_trgm_ops)" in definition


def test_upgrade_to_target_is_behind_then_catches_up(mdb, extra_migrations):
    extra_migrations("9001_add_flow_note", ADD_NOTE)
    latest_real = REAL_MIGRATIONS[-1]

    assert migrations.upgrade(mdb, target=latest_real) == REAL_MIGRATIONS
    assert migrations.status(mdb)[-1] == ("9001_add_flow_note", False)
    migrations.check_schema(mdb)

    assert migrations.upgrade(mdb) == ["9001_add_flow_note"]
    assert "note" in {c.name for c in mdb.get_columns("flow")}

    assert migrations.downgrade(mdb, target=latest_real) == ["9001_add_flow_note"]
    assert "note" not in {c.name for c in mdb.get_columns("flow")}
    assert migrations.downgrade(mdb, target=latest_real) == []
    with pytest.raises(MigrationError, match="not an applied migration"):
        migrations.downgrade(mdb, target="9001_add_flow_note")
    with pytest.raises(MigrationError, match="unknown migration"):
        migrations.upgrade(mdb, target="0042_nope")


def test_failed_migration_rolls_back_the_whole_run(mdb, extra_migrations):
    extra_migrations("9001_add_flow_note", ADD_NOTE)
    extra_migrations("9002_broken", BROKEN)

    with pytest.raises(DatabaseError):
        migrations.upgrade(mdb)

    assert mdb.get_tables() == []
    assert not any(applied for _, applied in migrations.status(mdb))


def test_newer_database_is_refused(mdb):
    migrations.upgrade(mdb)
    record_future_migration(mdb)

    message = (
        f"database schema is at migration {FUTURE}, newer than this Orion knows "
        f"(latest {REAL_MIGRATIONS[-1]}); upgrade Orion"
    )
    with pytest.raises(SchemaTooNew) as refused:
        migrations.check_schema(mdb)
    assert str(refused.value) == message
    with pytest.raises(SchemaTooNew):
        migrations.upgrade(mdb)
    with pytest.raises(SchemaTooNew):
        migrations.downgrade(mdb)
    assert (FUTURE, True) in migrations.status(mdb)


def test_check_schema_inside_a_transaction_on_an_empty_database(mdb):
    with mdb.atomic():
        migrations.check_schema(mdb)
        assert mdb.execute_sql("SELECT 1").fetchone() == (1,)


def test_create_app_refuses_a_newer_database(mdb, mdb_url, tmp_path):
    from app import create_app

    migrations.upgrade(mdb)
    record_future_migration(mdb)
    with restored_binding():
        with pytest.raises(SchemaTooNew, match="newer than this Orion knows"):
            create_app({"TESTING": True, "HOME": str(tmp_path), "DATABASE_URL": mdb_url})


def test_reset_empties_a_migrated_database(mdb):
    migrations.upgrade(mdb)
    add_run_with_state(mdb)
    assert row_counts(mdb)["FlowRunState"] == 1

    assert migrations.reset(mdb) == REAL_MIGRATIONS

    assert set(row_counts(mdb).values()) == {0}
    assert migrations.status(mdb) == [(name, True) for name in REAL_MIGRATIONS]


def test_reset_a_database_created_without_migrations(mdb):
    with mdb.bind_ctx(TABLES):
        mdb.create_tables(TABLES)
    add_run_with_state(mdb)

    assert migrations.reset(mdb) == REAL_MIGRATIONS

    assert set(row_counts(mdb).values()) == {0}
    migrations.check_schema(mdb)


def test_reset_an_empty_or_newer_database(mdb):
    assert migrations.reset(mdb) == REAL_MIGRATIONS
    record_future_migration(mdb)

    assert migrations.reset(mdb) == REAL_MIGRATIONS
    assert migrations.status(mdb) == [(name, True) for name in REAL_MIGRATIONS]


def test_concurrent_upgrades_apply_each_migration_once(mdb):
    start = threading.Barrier(2)

    def race():
        start.wait()
        try:
            return migrations.upgrade(mdb)
        finally:
            mdb.close()

    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(race), pool.submit(race)]]

    assert sorted(results) == [[], REAL_MIGRATIONS]
    history = mdb.execute_sql(f'SELECT name FROM "{migrations.HISTORY_TABLE}"').fetchall()
    assert sorted(name for (name,) in history) == REAL_MIGRATIONS


def test_deployment_schedules_migrate_into_their_table_and_back(mdb):
    """0021 moves each deployment's one schedule into deployment_schedule (active as it was)
    and sets paused to NOT is_schedule_active; down puts them back."""
    migrations.upgrade(mdb, target="0019_global_concurrency_limits")
    flow_id, stamp, param = insert_flow_by_sql(mdb)
    rows = {
        "7a0c2d2e0000400080000000000000a1": ('{"interval": 3600.0}', True),
        "7a0c2d2e0000400080000000000000a2": ('{"cron": "0 9 * * *"}', False),
        "7a0c2d2e0000400080000000000000a3": (None, False),
        "7a0c2d2e0000400080000000000000a4": (None, True),
    }
    for number, (deployment_id, (schedule, active)) in enumerate(rows.items()):
        mdb.execute_sql(
            "INSERT INTO deployment (id, created, updated, name, flow_id, schedule, "
            "is_schedule_active, parameters, tags, infra_overrides) VALUES "
            f"({', '.join([param] * 10)})",
            (
                deployment_id,
                stamp,
                stamp,
                f"d{number}",
                flow_id,
                schedule,
                active,
                "{}",
                "[]",
                "{}",
            ),
        )

    migrations.upgrade(mdb)

    paused = dict(mdb.execute_sql("SELECT id, paused FROM deployment").fetchall())
    assert {uuid.UUID(str(k)).hex: bool(v) for k, v in paused.items()} == {
        deployment_id: not active for deployment_id, (_, active) in rows.items()
    }
    schedules = mdb.execute_sql(
        "SELECT deployment_id, schedule, active, catchup, created FROM deployment_schedule"
    ).fetchall()
    loaded = {
        uuid.UUID(str(d)).hex: (
            s if isinstance(s, dict) else json.loads(s),
            bool(a),
            bool(c),
            str(when).removesuffix("+00:00"),
        )
        for d, s, a, c, when in schedules
    }
    assert loaded == {
        "7a0c2d2e0000400080000000000000a1": ({"interval": 3600.0}, True, False, stamp),
        "7a0c2d2e0000400080000000000000a2": ({"cron": "0 9 * * *"}, False, False, stamp),
    }
    columns = {c.name for c in mdb.get_columns("deployment")}
    assert "schedule" not in columns and "is_schedule_active" not in columns

    migrations.downgrade(mdb, target="0019_global_concurrency_limits")

    back = mdb.execute_sql("SELECT id, schedule, is_schedule_active FROM deployment").fetchall()
    assert {
        uuid.UUID(str(d)).hex: (s if s is None or isinstance(s, dict) else json.loads(s), bool(a))
        for d, s, a in back
    } == {
        deployment_id: (json.loads(schedule) if schedule else None, active)
        for deployment_id, (schedule, active) in rows.items()
    }


def test_work_pools_migration_moves_queues_into_the_agents_pool(mdb):
    """0020: existing queues keep their rows and ids in ``default-agent-pool`` (its default
    queue is ``default``); deployments keep their queue names; downgrading keeps them."""
    migrations.upgrade(mdb, target="0019_global_concurrency_limits")
    queue = Table("work_queue").bind(mdb)
    now = utcnow().replace(tzinfo=None)
    ids = {}
    for name, priority in (("default", 1), ("gpu", 2)):
        ids[name] = uuid.uuid4()
        queue.insert(
            id=ids[name].hex,
            created=now,
            updated=now,
            name=name,
            description="",
            is_paused=name == "gpu",
            priority=priority,
        ).execute()
    with mdb.bind_ctx([Flow]):
        flow = Flow.create(name="etl")
    Table("deployment").bind(mdb).insert(
        id=uuid.uuid4().hex,
        created=now,
        updated=now,
        name="nightly",
        flow_id=flow.id.hex,
        is_schedule_active=True,
        parameters="{}",
        tags="[]",
        work_queue_name="gpu",
        infra_overrides="{}",
    ).execute()

    migrations.upgrade(mdb)
    with mdb.bind_ctx(TABLES):
        pool = WorkPool.get(WorkPool.name == AGENT_POOL)
        assert pool.type == AGENT_POOL_TYPE
        assert pool.default_queue_id == ids["default"]
        queues = {q.name: q for q in WorkQueue.select()}
        assert {n: q.id for n, q in queues.items()} == ids
        assert {q.work_pool_id for q in queues.values()} == {pool.id}
        assert queues["gpu"].is_paused and queues["gpu"].priority == 2
        assert Deployment.get().work_queue_name == "gpu"

    migrations.downgrade(mdb, target="0019_global_concurrency_limits")
    assert sorted(r["name"] for r in queue.select(queue.c.name).dicts()) == ["default", "gpu"]


def test_start_time_index_is_replaced_and_analyzed_on_an_analyzed_sqlite_database(mdb):
    """0028 replaces 0002's start-time index by the covering one on SQLite, and on a
    database that has statistics gives it statistics too (without them SQLite chose it
    for a page of FAILED runs: 300 ms instead of 6 with 1,000,000 runs); the downgrade
    does the reverse. PostgreSQL keeps 0002's index."""
    migrations.upgrade(mdb, target="0027_flow_run_chart_index")
    add_run_with_state(mdb)
    if not isinstance(mdb, SqliteDatabase):
        migrations.upgrade(mdb)
        names = {i.name for i in mdb.get_indexes("flow_run")}
        assert "flow_run_start_time_or_expected" in names
        assert "flow_run_start_time_or_expected_id" not in names
        return
    mdb.execute_sql("ANALYZE")

    def analyzed():
        rows = mdb.execute_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'flow_run'")
        return {idx for (idx,) in rows if idx.startswith("flow_run_start_time_or_expected")}

    assert analyzed() == {"flow_run_start_time_or_expected"}
    migrations.upgrade(mdb)
    assert analyzed() == {"flow_run_start_time_or_expected_id"}
    migrations.downgrade(mdb, target="0027_flow_run_chart_index")
    assert analyzed() == {"flow_run_start_time_or_expected"}


def test_state_sort_indexes_are_added_and_analyzed_on_an_analyzed_sqlite_database(mdb):
    """0029 adds the (state type, end time, id) and (state type, name, id) indexes on SQLite,
    analyzed when the database has statistics, and drops them on the way down; PostgreSQL
    gets neither (0030 adds them there)."""
    migrations.upgrade(mdb, target="0028_flow_run_start_time_page_index")
    add_run_with_state(mdb)
    added = {"flow_run_state_type_end_time_id", "flow_run_state_type_name_id"}
    if not isinstance(mdb, SqliteDatabase):
        migrations.upgrade(mdb, target="0029_flow_run_state_sort_indexes")
        assert not added & {i.name for i in mdb.get_indexes("flow_run")}
        return
    mdb.execute_sql("ANALYZE")

    def analyzed():
        rows = mdb.execute_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'flow_run'")
        return {idx for (idx,) in rows} & added

    migrations.upgrade(mdb, target="0029_flow_run_state_sort_indexes")
    assert added <= {i.name for i in mdb.get_indexes("flow_run")}
    assert analyzed() == added
    migrations.downgrade(mdb, target="0028_flow_run_start_time_page_index")
    assert not added & {i.name for i in mdb.get_indexes("flow_run")}


def test_flow_and_state_sort_indexes_are_added_on_each_backend(mdb):
    """0030 adds the (flow, end time, id) and (flow, name, id) indexes on both backends, on
    SQLite analyzed when the database has statistics, and on PostgreSQL also the state type
    ones (end time and name, which 0029 made on SQLite only, and expected start); the
    downgrade drops what it added, SQLite keeping 0029's."""
    migrations.upgrade(mdb, target="0029_flow_run_state_sort_indexes")
    add_run_with_state(mdb)
    flow_indexes = {"flow_run_flow_id_end_time_id", "flow_run_flow_id_name_id"}
    state_indexes = {"flow_run_state_type_end_time_id", "flow_run_state_type_name_id"}
    expected_start_index = "flow_run_state_type_expected_start_time_id"
    sqlite = isinstance(mdb, SqliteDatabase)
    if sqlite:
        mdb.execute_sql("ANALYZE")
    before = {i.name for i in mdb.get_indexes("flow_run")}
    assert not (flow_indexes | {expected_start_index}) & before
    assert (state_indexes <= before) is sqlite

    migrations.upgrade(mdb, target="0030_flow_run_state_and_flow_sort_indexes")
    after = {i.name for i in mdb.get_indexes("flow_run")}
    added = flow_indexes if sqlite else flow_indexes | state_indexes | {expected_start_index}
    assert after - before == added
    if sqlite:
        rows = mdb.execute_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'flow_run'")
        assert flow_indexes <= {idx for (idx,) in rows}
    else:
        (definition,) = mdb.execute_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (expected_start_index,)
        ).fetchone()
        assert "USING btree (state_type, expected_start_time, id)" in definition

    migrations.downgrade(mdb, target="0029_flow_run_state_sort_indexes")
    assert {i.name for i in mdb.get_indexes("flow_run")} == before


def test_queue_name_index_gains_the_queue_id_on_both_backends(mdb):
    """0031 replaces the (queue name, state type, due time) index by one ending with the
    queue id, on both backends, analyzed on a SQLite database that has statistics, and puts
    the old one back on the way down."""
    old = "flow_run_work_queue_name_state_type_next_scheduled_start_time"
    new = "flow_run_work_queue_name_state_type_due_queue_id"
    migrations.upgrade(mdb, target="0030_flow_run_state_and_flow_sort_indexes")
    add_run_with_state(mdb)
    sqlite = isinstance(mdb, SqliteDatabase)
    if sqlite:
        mdb.execute_sql("ANALYZE")

    def indexes():
        found = {i.name: i.columns for i in mdb.get_indexes("flow_run")}
        return {name: columns for name, columns in found.items() if name in (old, new)}

    def analyzed():
        rows = mdb.execute_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'flow_run'")
        return {idx for (idx,) in rows} & {old, new}

    assert indexes() == {old: ["work_queue_name", "state_type", "next_scheduled_start_time"]}
    migrations.upgrade(mdb)
    assert indexes() == {
        new: ["work_queue_name", "state_type", "next_scheduled_start_time", "work_queue_id"]
    }
    if sqlite:
        assert analyzed() == {new}
    migrations.downgrade(mdb, target="0030_flow_run_state_and_flow_sort_indexes")
    assert indexes() == {old: ["work_queue_name", "state_type", "next_scheduled_start_time"]}
    if sqlite:
        assert analyzed() == {old}


def assert_sqlite_schema_unchanged_by(mdb, target):
    """Upgrade the SQLite ``mdb`` to ``target`` and assert its schema did not change."""
    before = mdb.execute_sql("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    migrations.upgrade(mdb, target=target)
    assert mdb.execute_sql("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before


def test_run_name_statistics_target_is_raised_on_postgres_only(mdb):
    """0032 gives ``flow_run.name`` a statistics target of 1,000 on PostgreSQL (the default,
    -1, again on the way down); SQLite's schema is left as it was."""
    previous = "0031_flow_run_queue_name_index_queue_id"
    this = "0032_flow_run_name_statistics"
    migrations.upgrade(mdb, target=previous)
    if isinstance(mdb, SqliteDatabase):
        assert_sqlite_schema_unchanged_by(mdb, this)
        return

    def target():
        (value,) = mdb.execute_sql(
            "SELECT coalesce(attstattarget, -1) FROM pg_attribute "
            "WHERE attrelid = 'flow_run'::regclass AND attname = 'name'"
        ).fetchone()
        return value

    assert target() == -1
    migrations.upgrade(mdb, target=this)
    assert target() == 1000
    migrations.downgrade(mdb, target=previous)
    assert target() == -1


def test_deployment_pull_steps_column_comes_and_goes(mdb):
    """0033 adds the nullable ``deployment.pull_steps``; a deployment made before it keeps
    its fields and has none; down drops the column, the deployment stays."""
    previous = "0032_flow_run_name_statistics"
    migrations.upgrade(mdb, target=previous)
    flow_id, stamp, param = insert_flow_by_sql(mdb)
    deployment_id = "7a0c2d2e0000400080000000000000d1"
    mdb.execute_sql(
        "INSERT INTO deployment (id, created, updated, name, flow_id, paused, "
        "enforce_parameter_schema, parameters, tags, infra_overrides, entrypoint) VALUES "
        f"({', '.join([param] * 11)})",
        (deployment_id, stamp, stamp, "d", flow_id, False, False, "{}", "[]", "{}", "f.py:etl"),
    )

    def columns():
        return {c.name for c in mdb.get_columns("deployment")}

    assert "pull_steps" not in columns()
    migrations.upgrade(mdb)
    assert "pull_steps" in columns()
    assert mdb.execute_sql("SELECT entrypoint, pull_steps FROM deployment").fetchall() == [
        ("f.py:etl", None)
    ]
    migrations.downgrade(mdb, target=previous)
    assert "pull_steps" not in columns()
    assert mdb.execute_sql("SELECT entrypoint FROM deployment").fetchall() == [("f.py:etl",)]


def test_flow_run_job_variables_and_deployment_version_come_and_go(mdb):
    """0034 adds the nullable ``flow_run.job_variables`` and ``deployment_version``; a run
    made before it has neither; down drops both, the run stays."""
    previous = "0033_deployment_pull_steps"
    migrations.upgrade(mdb, target=previous)
    add_run_with_state(mdb)

    def columns():
        return {c.name for c in mdb.get_columns("flow_run")} & {
            "job_variables",
            "deployment_version",
        }

    assert columns() == set()
    migrations.upgrade(mdb)
    assert columns() == {"job_variables", "deployment_version"}
    assert mdb.execute_sql("SELECT job_variables, deployment_version FROM flow_run").fetchall() == [
        (None, None)
    ]
    migrations.downgrade(mdb, target=previous)
    assert columns() == set()
    assert mdb.execute_sql("SELECT count(*) FROM flow_run").fetchone() == (1,)


def test_deployment_last_polled_column_comes_and_goes(mdb):
    """0035 adds the nullable ``deployment.last_polled``; down drops it."""
    previous = "0034_flow_run_job_variables"
    migrations.upgrade(mdb, target=previous)

    def columns():
        return {c.name for c in mdb.get_columns("deployment")}

    assert "last_polled" not in columns()
    migrations.upgrade(mdb)
    assert "last_polled" in columns()
    migrations.downgrade(mdb, target=previous)
    assert "last_polled" not in columns()


@pytest.mark.parametrize("has_default", [False, True], ids=["created", "adopted"])
def test_the_agents_pool_gets_a_default_queue(mdb, has_default):
    """0037: an agents' pool without a default queue gets its queue named ``default`` as one,
    created at the first free priority when it has none of that name."""
    migrations.upgrade(mdb, target="0036_drop_run_id_prefix_indexes")
    now = utcnow().replace(tzinfo=None)
    pool_id = uuid.uuid4()
    Table("work_pool").bind(mdb).insert(
        id=pool_id.hex,
        created=now,
        updated=now,
        name=AGENT_POOL,
        type=AGENT_POOL_TYPE,
        base_job_template="{}",
        is_paused=False,
    ).execute()
    names = ["etl", "default"] if has_default else ["etl"]
    for priority, name in enumerate(names, start=1):
        Table("work_queue").bind(mdb).insert(
            id=uuid.uuid4().hex,
            created=now,
            updated=now,
            name=name,
            description="",
            is_paused=False,
            priority=priority,
            work_pool_id=pool_id.hex,
        ).execute()

    migrations.upgrade(mdb)
    with mdb.bind_ctx(TABLES):
        pool = WorkPool.get(WorkPool.name == AGENT_POOL)
        default = WorkQueue.get_by_id(pool.default_queue_id)
        assert (default.name, default.work_pool_id, default.priority) == ("default", pool.id, 2)
        assert sorted(q.name for q in WorkQueue.select()) == ["default", "etl"]


def test_run_names_widen_to_2000_bytes_on_postgres_only(mdb):
    """0039 makes flow and task run names ``varchar(2000)`` on PostgreSQL without rewriting
    the tables, and ``varchar(255)`` again on the way down, cutting longer names; SQLite's
    schema is left as it was."""
    previous = "0038_artifact_collection"
    this = "0039_run_names_up_to_2000_bytes"
    migrations.upgrade(mdb, target=previous)
    if isinstance(mdb, SqliteDatabase):
        assert_sqlite_schema_unchanged_by(mdb, this)
        return

    def sizes():
        return dict(
            mdb.execute_sql(
                "SELECT table_name, character_maximum_length FROM information_schema.columns "
                "WHERE column_name = 'name' AND table_name IN ('flow_run', 'task_run')"
            ).fetchall()
        )

    def files():
        return mdb.execute_sql(
            "SELECT relname, relfilenode FROM pg_class WHERE relname IN "
            "('flow_run', 'task_run', 'flow_run_name', 'flow_run_state_type_name_id') "
            "ORDER BY 1"
        ).fetchall()

    assert sizes() == {"flow_run": 255, "task_run": 255}
    stored = files()
    assert len(stored) == 4, stored
    migrations.upgrade(mdb, target=this)
    assert sizes() == {"flow_run": 2000, "task_run": 2000}
    assert files() == stored  # neither the tables nor their name indexes were rewritten
    with mdb.bind_ctx(TABLES):
        run = FlowRun.create(flow=Flow.create(name="long"), name="n" * 2000)
    migrations.downgrade(mdb, target=previous)
    assert sizes() == {"flow_run": 255, "task_run": 255}
    (name,) = mdb.execute_sql("SELECT name FROM flow_run WHERE id = %s", (str(run.id),)).fetchone()
    assert name == "n" * 255
