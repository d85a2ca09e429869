"""The initial Orion schema: every table, index and unique key of Orion 0.1.

The models below are frozen copies of ``app.models`` as of this migration, so later model
changes never rewrite history. They carry only what shapes the DDL (column types, nullability,
indexes, unique keys, foreign keys): Python-side defaults and behaviour live in the real models.
Timestamps are plain ``DateTimeField`` columns, the same DDL as the app's ``UTCDateTimeField``
(``DATETIME`` on SQLite, ``TIMESTAMP`` on PostgreSQL).
"""

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
    UUIDField,
)


class _Base(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField(index=True)

    class Meta:
        # Index names are "<table_name>_<columns>" (the legacy naming uses the class name).
        legacy_table_names = False


class Flow(_Base):
    name = CharField(unique=True)
    tags = JSONField()

    class Meta:
        table_name = "flow"


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
        indexes = ((("flow", "name"), True),)


class _Run(_Base):
    name = CharField(index=True)
    tags = JSONField()
    empirical_policy = JSONField()
    state_id = UUIDField(null=True, index=True)
    state_type = CharField(null=True, index=True)
    state_name = CharField(null=True, index=True)
    state_timestamp = DateTimeField(null=True)
    run_count = IntegerField()
    expected_start_time = DateTimeField(null=True, index=True)
    next_scheduled_start_time = DateTimeField(null=True, index=True)
    start_time = DateTimeField(null=True, index=True)
    end_time = DateTimeField(null=True, index=True)
    total_run_time = FloatField()


class FlowRun(_Run):
    flow = ForeignKeyField(Flow, on_delete="CASCADE")
    deployment = ForeignKeyField(Deployment, null=True, on_delete="SET NULL")
    work_queue_name = CharField(null=True, index=True)
    flow_version = CharField(null=True, index=True)
    parameters = JSONField()
    context = JSONField()
    idempotency_key = CharField(null=True)
    parent_task_run_id = UUIDField(null=True, index=True)
    auto_scheduled = BooleanField()
    infrastructure_document_id = UUIDField(null=True)
    infrastructure_pid = CharField(null=True)
    created_by = JSONField(null=True)

    class Meta:
        table_name = "flow_run"
        indexes = (
            (("flow", "idempotency_key"), True),
            (("state_type", "next_scheduled_start_time"), False),
            (("work_queue_name", "state_type", "next_scheduled_start_time"), False),
        )


class TaskRun(_Run):
    flow_run = ForeignKeyField(FlowRun, on_delete="CASCADE")
    task_key = CharField()
    dynamic_key = CharField()
    cache_key = TextField(null=True)
    cache_expiration = DateTimeField(null=True)
    task_version = CharField(null=True)
    task_inputs = JSONField()
    flow_run_run_count = IntegerField()

    class Meta:
        table_name = "task_run"
        indexes = ((("flow_run", "task_key", "dynamic_key"), True),)


class _State(_Base):
    type = CharField()
    name = CharField()
    timestamp = DateTimeField()
    message = TextField(null=True)
    data = JSONField(null=True)
    state_details = JSONField()


class FlowRunState(_State):
    flow_run = ForeignKeyField(FlowRun, on_delete="CASCADE")

    class Meta:
        table_name = "flow_run_state"
        indexes = ((("flow_run", "timestamp"), True),)


class TaskRunState(_State):
    task_run = ForeignKeyField(TaskRun, on_delete="CASCADE")

    class Meta:
        table_name = "task_run_state"
        indexes = ((("task_run", "timestamp"), True),)


class TaskRunStateCache(_Base):
    cache_key = TextField()
    cache_expiration = DateTimeField(null=True)
    task_run_state = ForeignKeyField(TaskRunState, on_delete="CASCADE")

    class Meta:
        table_name = "task_run_state_cache"
        indexes = ((("cache_key", "created"), False),)


class WorkQueue(_Base):
    name = CharField(unique=True)
    description = TextField()
    is_paused = BooleanField()
    concurrency_limit = IntegerField(null=True)
    filter = JSONField(null=True)
    last_polled = DateTimeField(null=True)

    class Meta:
        table_name = "work_queue"


class ConcurrencyLimit(_Base):
    tag = CharField(unique=True)
    concurrency_limit = IntegerField()

    class Meta:
        table_name = "concurrency_limit"


class Log(_Base):
    name = CharField()
    level = IntegerField(index=True)
    message = TextField()
    timestamp = DateTimeField(index=True)
    flow_run_id = UUIDField(index=True)
    task_run_id = UUIDField(null=True, index=True)

    class Meta:
        table_name = "log"


class SavedSearch(_Base):
    name = CharField(unique=True)
    filters = JSONField()

    class Meta:
        table_name = "saved_search"


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (
    Flow,
    Deployment,
    FlowRun,
    FlowRunState,
    TaskRun,
    TaskRunState,
    TaskRunStateCache,
    WorkQueue,
    ConcurrencyLimit,
    Log,
    SavedSearch,
)


def up(migrator, db):
    """Create every table with its indexes; fails if any of them already exists."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop every table this migration created, with its data."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
