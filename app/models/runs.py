"""Flow runs, task runs, their state histories and the task result cache.

Each run keeps a denormalised copy of its current state (``state_id``, ``state_type``,
``state_name``, ``state_timestamp``) so filters and sorts never join the state tables. The
current-state link and a subflow's ``parent_task_run_id`` are plain indexed UUID columns rather
than foreign keys: both point "backwards" into tables that reference the run, and a foreign key
each way would need ``ALTER TABLE ... ADD CONSTRAINT``, which SQLite lacks. Services keep them
consistent (a state row is never deleted without its run; deleting a task run clears the
``parent_task_run_id`` pointing at it).
"""
from peewee import (
    BooleanField,
    CharField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
    UUIDField,
    fn,
)

from app.models.base import BaseModel, UTCDateTimeField
from app.models.flows import Deployment, Flow


class RunMixin(BaseModel):
    """Columns shared by flow runs and task runs."""

    name = CharField(index=True)
    tags = JSONField(default=list)
    empirical_policy = JSONField(default=dict)
    state_id = UUIDField(null=True, index=True)
    state_type = CharField(null=True, index=True)
    state_name = CharField(null=True, index=True)
    state_timestamp = UTCDateTimeField(null=True)
    run_count = IntegerField(default=0)
    expected_start_time = UTCDateTimeField(null=True, index=True)
    next_scheduled_start_time = UTCDateTimeField(null=True, index=True)
    start_time = UTCDateTimeField(null=True, index=True)
    end_time = UTCDateTimeField(null=True, index=True)
    # Seconds spent in RUNNING, summed over every attempt.
    total_run_time = FloatField(default=0.0)


class FlowRun(RunMixin):
    """One execution of a flow; unique by (flow, idempotency_key) when a key is given."""

    flow = ForeignKeyField(Flow, backref="flow_runs", on_delete="CASCADE")
    deployment = ForeignKeyField(
        Deployment, backref="flow_runs", null=True, on_delete="SET NULL"
    )
    work_queue_name = CharField(null=True, index=True)
    flow_version = CharField(null=True, index=True)
    parameters = JSONField(default=dict)
    context = JSONField(default=dict)
    idempotency_key = CharField(null=True)
    parent_task_run_id = UUIDField(null=True, index=True)
    auto_scheduled = BooleanField(default=False)
    infrastructure_document_id = UUIDField(null=True)
    infrastructure_pid = CharField(null=True)
    created_by = JSONField(null=True)
    # When the running flow last reported it is alive (POST /api/flow_runs/{id}/heartbeat).
    last_heartbeat = UTCDateTimeField(null=True)

    class Meta:
        table_name = "flow_run"
        indexes = (
            (("flow", "idempotency_key"), True),
            # get_runs and the late-runs sweep: SCHEDULED runs of a queue by due time.
            (("state_type", "next_scheduled_start_time"), False),
            (("work_queue_name", "state_type", "next_scheduled_start_time"), False),
        )


# The START_TIME_* sorts order by the start, or the expected start of runs not yet started.
FlowRun.add_index(
    FlowRun.index(fn.COALESCE(FlowRun.start_time, FlowRun.expected_start_time),
                  name="flow_run_start_time_or_expected")
)


class TaskRun(RunMixin):
    """One execution of a task inside a flow run; unique by (flow run, task_key, dynamic_key)."""

    flow_run = ForeignKeyField(FlowRun, backref="task_runs", on_delete="CASCADE")
    task_key = CharField()
    dynamic_key = CharField()
    cache_key = TextField(null=True)
    cache_expiration = UTCDateTimeField(null=True)
    task_version = CharField(null=True)
    task_inputs = JSONField(default=dict)
    flow_run_run_count = IntegerField(default=0)

    class Meta:
        table_name = "task_run"
        indexes = ((("flow_run", "task_key", "dynamic_key"), True),)


class StateMixin(BaseModel):
    """Columns shared by flow run and task run state rows."""

    type = CharField()
    name = CharField()
    timestamp = UTCDateTimeField()
    message = TextField(null=True)
    data = JSONField(null=True)
    state_details = JSONField(default=dict)


class FlowRunState(StateMixin):
    """A state a flow run has been in; unique by (run, timestamp)."""

    flow_run = ForeignKeyField(FlowRun, backref="states", on_delete="CASCADE")

    class Meta:
        table_name = "flow_run_state"
        indexes = ((("flow_run", "timestamp"), True),)


class TaskRunState(StateMixin):
    """A state a task run has been in; unique by (run, timestamp)."""

    task_run = ForeignKeyField(TaskRun, backref="states", on_delete="CASCADE")

    class Meta:
        table_name = "task_run_state"
        indexes = ((("task_run", "timestamp"), True),)


class TaskRunStateCache(BaseModel):
    """A cached COMPLETED task state, looked up by cache key until it expires."""

    cache_key = TextField()
    cache_expiration = UTCDateTimeField(null=True)
    task_run_state = ForeignKeyField(TaskRunState, on_delete="CASCADE")

    class Meta:
        table_name = "task_run_state_cache"
        indexes = ((("cache_key", "created"), False),)
