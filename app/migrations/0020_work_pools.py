"""Work pools and workers (Prefect 2.20): ``work_pool`` and ``worker``, and every work queue
in a pool.

- ``work_queue.work_pool_id`` (NOT NULL, cascade): the existing queues, rows and ids unchanged,
  become the queues of a ``default-agent-pool`` pool created here when there are any (its
  default queue is the queue named ``default``, if there is one; without queues the server
  creates the pool when it first needs it). Queue names are unique per pool instead of
  globally.
- ``deployment.work_queue_id`` (nullable, SET NULL), right after ``work_queue_name``: the pool
  queue a deployment's runs go to.
- ``flow_run.work_queue_id`` (nullable, no foreign key: runs outlive their queue) and an index
  on it with the state type and due time, which a pool's ``get_scheduled_flow_runs`` reads.

SQLite cannot add a foreign key or change a column's unique key in place, so there
``work_queue`` and ``deployment`` are rebuilt (the documented create-copy-drop-rename
procedure) from the frozen models below, which are the whole tables; their indexes other than
the ones this migration changes are recreated from their own recorded SQL. Downgrading drops
the queues of every other pool first (their names may clash once unique again).
"""

import datetime
import uuid

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
    UUIDField,
)
from playhouse.migrate import SqliteMigrator

AGENT_POOL = "default-agent-pool"


class _Base(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)

    class Meta:
        legacy_table_names = False


class WorkPool(_Base):
    name = CharField(unique=True)
    description = TextField(null=True)
    type = CharField()
    base_job_template = JSONField()
    is_paused = BooleanField()
    concurrency_limit = IntegerField(null=True)
    default_queue_id = UUIDField(null=True)

    class Meta:
        table_name = "work_pool"


class Worker(_Base):
    work_pool = ForeignKeyField(WorkPool, on_delete="CASCADE", index=False)
    name = CharField()
    last_heartbeat_time = DateTimeField(null=True, index=True)
    heartbeat_interval_seconds = IntegerField(null=True)

    class Meta:
        table_name = "worker"
        indexes = ((("work_pool", "name"), True),)


class _QueueColumns(_Base):
    name = CharField()
    description = TextField()
    is_paused = BooleanField()
    concurrency_limit = IntegerField(null=True)
    filter = JSONField(null=True)
    last_polled = DateTimeField(null=True)
    priority = IntegerField()


class WorkQueue(_QueueColumns):
    work_pool = ForeignKeyField(WorkPool, on_delete="CASCADE", index=False)

    class Meta:
        table_name = "work_queue"
        indexes = ((("work_pool", "name"), True),)


class OldWorkQueue(_QueueColumns):
    """``work_queue`` before this migration (0001 and 0012)."""

    name = CharField(unique=True)

    class Meta:
        table_name = "work_queue"


class Flow(_Base):
    class Meta:
        table_name = "flow"


def _deployment(with_queue):
    """The frozen ``deployment`` table, with or without ``work_queue_id``."""

    class Deployment(_Base):
        name = CharField(index=True)
        flow = ForeignKeyField(Flow, on_delete="CASCADE")
        version = CharField(null=True)
        description = TextField(null=True)
        schedule = JSONField(null=True)
        is_schedule_active = BooleanField(index=True)
        parameters = JSONField()
        tags = JSONField()
        work_queue_name = CharField(null=True, index=True)
        if with_queue:
            work_queue = ForeignKeyField(WorkQueue, null=True, on_delete="SET NULL")
        parameter_openapi_schema = JSONField(null=True)
        path = CharField(null=True)
        entrypoint = CharField(null=True)
        manifest_path = CharField(null=True)
        storage_document_id = UUIDField(null=True)
        infrastructure_document_id = UUIDField(null=True)
        infra_overrides = JSONField()
        created_by = JSONField(null=True)
        updated_by = JSONField(null=True)

        class Meta:
            table_name = "deployment"

    return Deployment


Deployment = _deployment(with_queue=True)
OldDeployment = _deployment(with_queue=False)

# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (WorkPool, Worker)

_QUEUE_POOL_NAME_INDEX = "work_queue_work_pool_id_name"
_DEPLOYMENT_QUEUE_INDEX = "deployment_work_queue_id"
_RUN_QUEUE_INDEX = "flow_run_work_queue_id_state_type_next_scheduled_start_time"


def _now():
    """Now as the app stores it: naive UTC, fixed-width microseconds."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return now.isoformat(sep=" ", timespec="microseconds")


def _rebuild_sqlite_table(db, model, drop_indexes=()):
    """Rebuild ``model``'s table on SQLite with ``model``'s columns, copying the columns the
    old and new tables share, and recreate its indexes except ``drop_indexes`` (by name).
    Foreign-key enforcement is off while migrating, so dropping the old table cascades
    nothing."""
    table = model._meta.table_name
    indexes = [
        sql
        for name, sql in db.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        ).fetchall()
        if name not in drop_indexes
    ]
    old_columns = {column.name for column in db.get_columns(table)}
    shared = [f.column_name for f in model._meta.sorted_fields if f.column_name in old_columns]
    create, params = model._schema._create_table(safe=False).query()
    db.execute_sql(create.replace(f'"{table}"', f'"{table}__new"', 1), params)
    columns = ", ".join(f'"{column}"' for column in shared)
    db.execute_sql(f'INSERT INTO "{table}__new" ({columns}) SELECT {columns} FROM "{table}"')
    db.execute_sql(f'DROP TABLE "{table}"')
    db.execute_sql(f'ALTER TABLE "{table}__new" RENAME TO "{table}"')
    for sql in indexes:
        db.execute_sql(sql)


def up(migrator, db):
    """Create the tables, put every queue in ``default-agent-pool``, add the queue columns."""
    sqlite = isinstance(migrator, SqliteMigrator)
    with db.bind_ctx((*MODELS, WorkQueue, OldWorkQueue, Deployment, Flow)):
        db.create_tables(MODELS, safe=False)
        pool_id = uuid.uuid4()
        if OldWorkQueue.select().exists():
            now = _now()
            default = OldWorkQueue.select(OldWorkQueue.id).where(OldWorkQueue.name == "default")
            WorkPool.insert(
                id=pool_id,
                created=now,
                updated=now,
                name=AGENT_POOL,
                description=None,
                type="prefect-agent",
                base_job_template={},
                is_paused=False,
                concurrency_limit=None,
                default_queue_id=default.scalar(),
            ).execute()
        if sqlite:
            migrator.migrate(
                migrator.add_column("work_queue", "work_pool_id", UUIDField(null=True))
            )
            db.execute_sql('UPDATE "work_queue" SET "work_pool_id" = ?', (pool_id.hex,))
            _rebuild_sqlite_table(db, WorkQueue, drop_indexes=("work_queue_name",))
            _rebuild_sqlite_table(db, Deployment)
            # PostgreSQL's add_column of a foreign key indexes it too.
            migrator.migrate(migrator.add_index("deployment", ("work_queue_id",)))
        else:
            migrator.migrate(
                migrator.add_column(
                    "work_queue",
                    "work_pool_id",
                    ForeignKeyField(WorkPool, null=True, on_delete="CASCADE", field=WorkPool.id),
                ),
                migrator.drop_index("work_queue", "work_queue_name"),
                # add_column indexes a foreign key; the (pool, name) index serves instead.
                migrator.drop_index("work_queue", "work_queue_work_pool_id"),
            )
            db.execute_sql('UPDATE "work_queue" SET "work_pool_id" = %s', (str(pool_id),))
            migrator.migrate(
                migrator.add_not_null("work_queue", "work_pool_id"),
                migrator.add_column(
                    "deployment",
                    "work_queue_id",
                    ForeignKeyField(WorkQueue, null=True, on_delete="SET NULL", field=WorkQueue.id),
                ),
            )
        migrator.migrate(
            migrator.add_index("work_queue", ("work_pool_id", "name"), unique=True),
            migrator.add_column("flow_run", "work_queue_id", UUIDField(null=True)),
            migrator.add_index(
                "flow_run", ("work_queue_id", "state_type", "next_scheduled_start_time")
            ),
        )


def down(migrator, db):
    """Drop the pools: queues of other pools go, the agents' queues stay (names unique again)."""
    sqlite = isinstance(migrator, SqliteMigrator)
    with db.bind_ctx((*MODELS, WorkQueue, OldWorkQueue, OldDeployment, Flow)):
        agent_pool = WorkPool.select(WorkPool.id).where(WorkPool.name == AGENT_POOL)
        WorkQueue.delete().where(WorkQueue.work_pool.not_in(agent_pool)).execute()
        migrator.migrate(
            migrator.drop_index("flow_run", _RUN_QUEUE_INDEX),
            migrator.drop_column("flow_run", "work_queue_id"),
            migrator.drop_index("deployment", _DEPLOYMENT_QUEUE_INDEX),
            migrator.drop_index("work_queue", _QUEUE_POOL_NAME_INDEX),
        )
        if sqlite:
            _rebuild_sqlite_table(db, OldDeployment)
            _rebuild_sqlite_table(db, OldWorkQueue)
            migrator.migrate(migrator.add_index("work_queue", ("name",), unique=True))
        else:
            migrator.migrate(
                migrator.drop_column("deployment", "work_queue_id"),
                migrator.drop_column("work_queue", "work_pool_id"),
                migrator.add_index("work_queue", ("name",), unique=True),
            )
        db.drop_tables(MODELS, safe=False)
