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
    SQL,
    BooleanField,
    CharField,
    Column,
    FloatField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
    UUIDField,
    fn,
)

from app.db import database, for_update, is_sqlite
from app.models.base import BackendIndex, BackendSchema, BaseModel, UTCDateTimeField
from app.models.flows import Deployment, Flow
from app.models.work_pools import AGENT_POOL


class RunNameField(CharField):
    """A flow or task run's name, in the database's ``RUN_NAME`` column type (``app.db``):
    run names are often made from parameters (paths, keys), so they get more room than the
    ``varchar(255)`` of other names (migration 0039)."""

    field_type = "RUN_NAME"

    def get_modifiers(self):
        return None


class RunMixin(BaseModel):
    """Columns shared by flow runs and task runs."""

    name = RunNameField(index=True)
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

    @classmethod
    def locked(cls, condition):
        """The runs matching ``condition`` in id order, locked until the transaction ends.

        Call inside a transaction: PostgreSQL locks the rows (``SELECT ... FOR UPDATE``), in a
        fixed order so concurrent lockers queue instead of deadlocking; SQLite's transaction
        already holds the database write lock. Returns a list.
        """
        return list(for_update(cls.select().where(condition).order_by(cls.id)))


# Name substring filters on SQLite: an FTS5 trigram index of ``flow_run.name`` (external
# content: it stores the trigrams only, keyed by the run's rowid), kept in step by triggers on
# insert, delete and rename; state changes do not touch it (migration 0026 says why; PostgreSQL
# has its trigram index, below). Anything that rebuilds ``flow_run`` on SQLite (a copy into a
# new table) loses the triggers and renumbers rowids: it must recreate these and run the
# index's 'rebuild' command, as migration 0026 does.
FLOW_RUN_NAME_SEARCH = "flow_run_name_fts"
_SEARCH_ROW = '(rowid, "name") VALUES (new.rowid, new."name")'
_SEARCH_DELETE = (
    f'INSERT INTO "{FLOW_RUN_NAME_SEARCH}" ("{FLOW_RUN_NAME_SEARCH}", rowid, "name") '
    "VALUES ('delete', old.rowid, old.\"name\");"
)
_SEARCH_INSERT = f'INSERT INTO "{FLOW_RUN_NAME_SEARCH}" {_SEARCH_ROW};'
FLOW_RUN_NAME_SEARCH_SCHEMA = BackendSchema(
    backends=("sqlite",),
    create=(
        (
            f'CREATE VIRTUAL TABLE IF NOT EXISTS "{FLOW_RUN_NAME_SEARCH}" USING fts5("name", '
            "content='flow_run', content_rowid='rowid', columnsize=0, tokenize='trigram')"
        ),
        (
            f'CREATE TRIGGER IF NOT EXISTS "{FLOW_RUN_NAME_SEARCH}_insert" AFTER INSERT ON '
            f'"flow_run" BEGIN {_SEARCH_INSERT} END'
        ),
        (
            f'CREATE TRIGGER IF NOT EXISTS "{FLOW_RUN_NAME_SEARCH}_delete" AFTER DELETE ON '
            f'"flow_run" BEGIN {_SEARCH_DELETE} END'
        ),
        (
            f'CREATE TRIGGER IF NOT EXISTS "{FLOW_RUN_NAME_SEARCH}_update" AFTER UPDATE OF '
            f'"name" ON "flow_run" BEGIN {_SEARCH_DELETE} {_SEARCH_INSERT} END'
        ),
    ),
    drop=(f'DROP TABLE IF EXISTS "{FLOW_RUN_NAME_SEARCH}"',),
    tables=tuple(FLOW_RUN_NAME_SEARCH + suffix for suffix in ("", "_config", "_data", "_idx")),
)


class FlowRun(RunMixin):
    """One execution of a flow; unique by (flow, idempotency_key) when a key is given."""

    flow = ForeignKeyField(Flow, backref="flow_runs", on_delete="CASCADE")
    deployment = ForeignKeyField(Deployment, backref="flow_runs", null=True, on_delete="SET NULL")
    work_queue_name = CharField(null=True, index=True)
    flow_version = CharField(null=True, index=True)
    parameters = JSONField(default=dict)
    context = JSONField(default=dict)
    idempotency_key = CharField(null=True)
    parent_task_run_id = UUIDField(null=True)  # indexed where set, below (migration 0025)
    auto_scheduled = BooleanField(default=False)
    infrastructure_document_id = UUIDField(null=True)
    infrastructure_pid = CharField(null=True)
    created_by = JSONField(null=True)
    # When the running flow last reported it is alive (POST /api/flow_runs/{id}/heartbeat).
    last_heartbeat = UTCDateTimeField(null=True)
    # The pool queue the run was sent to (None: a queue of the agents' pool, by
    # work_queue_name). Not a foreign key: runs outlive deleted queues, as they keep their
    # queue's name.
    work_queue_id = UUIDField(null=True)
    # The code the run's infrastructure ended with, as the agent that started it saw it
    # (last: migration 0024 adds the column at the end).
    infrastructure_exit_code = IntegerField(null=True)
    # Prefect 2.20 (last: migration 0034 adds them): the variables of the run's job, which
    # its worker merges over its deployment's, and the version the deployment had when the
    # run was made.
    job_variables = JSONField(null=True)
    deployment_version = CharField(null=True)

    class Meta:
        table_name = "flow_run"
        backend_schema = FLOW_RUN_NAME_SEARCH_SCHEMA
        indexes = (
            (("flow", "idempotency_key"), True),
            # get_runs and the late-runs sweep: SCHEDULED runs of a queue by due time.
            (("state_type", "next_scheduled_start_time"), False),
            (("work_queue_id", "state_type", "next_scheduled_start_time"), False),
        )

    @classmethod
    def of_queue(cls, queue):
        """The condition selecting the runs sent to ``queue`` (a queue matching runs by name,
        not by the deprecated filter): those carrying its id; for a queue of the agents' pool,
        those carrying its name and its id or no queue id (runs of Prefect 2.7's agents and
        clients name only the queue; a run carries the name of the queue it has the id of)."""
        if queue.work_pool.name != AGENT_POOL:
            return cls.work_queue_id == queue.id
        return (cls.work_queue_name == queue.name) & (
            cls.work_queue_id.is_null() | (cls.work_queue_id == queue.id)
        )


# The state types of the partial indexes' conditions below, in the order the conditions
# write them (see :func:`state_type_in`).
FAILED_STATE_TYPES = ("FAILED", "CRASHED")
FINISHED_STATE_TYPES = ("CANCELLED", "COMPLETED", "CRASHED", "FAILED")


def state_type_in(column, values):
    """``column IN values`` for state types. When the values are the set of a partial index's
    condition (:data:`FAILED_STATE_TYPES`, :data:`FINISHED_STATE_TYPES`) they are written into
    the statement as that condition writes them: SQLite uses a partial index only when it can
    match the condition in the statement's text, never with bound parameters (it walked every
    run by expected start time for FAILED + CRASHED instead). Any other values are bound."""
    chosen = {str(getattr(value, "value", value)) for value in values}
    for types in (FAILED_STATE_TYPES, FINISHED_STATE_TYPES):
        if chosen == set(types):
            return column.in_(SQL(_listed(types)))
    return column.in_(values)


def _listed(types):
    """``('A', 'B')``: state types written as SQL literals."""
    return "(" + ", ".join(f"'{t}'" for t in types) + ")"


# The trigram index finds texts of 3 characters or more; past this many matches a run list
# (newest first, 51 a page) is quicker found by walking the runs in order and testing names
# than by reading every match and sorting (bench/README.md: 100,000 matches of "otter" cost
# 75 ms that way, the walk 1 ms; 1,110 matches of "otter-12" 1 ms, the walk 122 ms).
NAME_SEARCH_MIN_LENGTH = 3
NAME_SEARCH_MAX_MATCHES = 10_000


def name_contains(text):
    """Flow runs whose name holds ``text``, ignoring case (``ILIKE '%text%'``, its wildcards
    escaped; SQLite's ``LIKE`` folds ASCII letters only), as a condition on :class:`FlowRun`.

    On SQLite, when ``text`` is long enough for the trigram index (migration 0026) and the
    index holds fewer than :data:`NAME_SEARCH_MAX_MATCHES` names containing it (one capped
    count, under a millisecond), the condition also limits the runs to the index's matches by
    rowid, so SQLite reads only those. The index folds case beyond ASCII, so its matches are a
    superset and the ``LIKE`` stays as the exact test. Elsewhere the ``LIKE`` alone
    (PostgreSQL's trigram index serves it)."""
    condition = FlowRun.name.contains(text)
    if not is_sqlite() or len(text) < NAME_SEARCH_MIN_LENGTH:
        return condition
    phrase = '"' + text.replace('"', '""') + '"'
    matches = f'SELECT rowid FROM "{FLOW_RUN_NAME_SEARCH}" WHERE "{FLOW_RUN_NAME_SEARCH}" MATCH ?'
    (found,) = database.execute_sql(
        f"SELECT count(*) FROM ({matches} LIMIT ?)", (phrase, NAME_SEARCH_MAX_MATCHES)
    ).fetchone()
    if found >= NAME_SEARCH_MAX_MATCHES:
        return condition
    return condition & Column(FlowRun, "rowid").in_(SQL(f"({matches})", [phrase]))


# The START_TIME_* sorts order by the start, or the expected start of runs not yet started.
# On SQLite the index also holds the expression's columns and the tiebreak (id, last: see
# migration 0028), so a page's rowids are chosen from the index alone, however deep the page
# (``app.services.runs.read_page``).
_STARTED = fn.COALESCE(FlowRun.start_time, FlowRun.expected_start_time)
FlowRun.add_index(
    BackendIndex(
        FlowRun, (_STARTED,), backends=("postgres",), name="flow_run_start_time_or_expected"
    )
)
FlowRun.add_index(
    BackendIndex(
        FlowRun,
        (_STARTED, FlowRun.start_time, FlowRun.expected_start_time, FlowRun.id),
        backends=("sqlite",),
        name="flow_run_start_time_or_expected_id",
    )
)
# Pages of runs in one state, or of one flow, newest first; END_TIME_DESC; the dashboard's
# failed runs (migration 0007 says why each).
FlowRun.add_index(
    FlowRun.index(FlowRun.state_type, _STARTED, name="flow_run_state_type_start_or_expected")
)
FlowRun.add_index(FlowRun.index(FlowRun.flow, _STARTED, name="flow_run_flow_id_start_or_expected"))
FlowRun.add_index(FlowRun.index(FlowRun.end_time, FlowRun.id, name="flow_run_end_time_id"))
FlowRun.add_index(
    FlowRun.index(
        FlowRun.expected_start_time,
        name="flow_run_failed_expected_start_time",
        where=SQL('"state_type" IN ' + _listed(FAILED_STATE_TYPES)),
    )
)
# A run's subflows, by their parent task run: partial, as nearly every run has none
# (migration 0025 says why).
FlowRun.add_index(
    FlowRun.index(
        FlowRun.parent_task_run_id,
        name="flow_run_parent_task_run_id",
        where=SQL('"parent_task_run_id" IS NOT NULL'),
    )
)
# A deployment's recent runs, and its next scheduled runs (migration 0010).
FlowRun.add_index(
    FlowRun.index(
        FlowRun.deployment,
        FlowRun.expected_start_time,
        name="flow_run_deployment_id_expected_start_time",
    )
)
FlowRun.add_index(
    FlowRun.index(
        FlowRun.deployment,
        FlowRun.next_scheduled_start_time,
        name="flow_run_deployment_id_scheduled",
        where=SQL("\"state_type\" = 'SCHEDULED'"),
    )
)
# Runs of the last day by flow and state, on the flows list and a flow's page (0011).
FlowRun.add_index(
    FlowRun.index(
        FlowRun.flow, FlowRun.expected_start_time, name="flow_run_flow_id_expected_start_time"
    )
)
# Retention: finished runs by the time they finished, oldest first (migration 0023).
FlowRun.add_index(
    FlowRun.index(
        FlowRun.state_timestamp,
        name="flow_run_finished_state_timestamp",
        where=SQL('"state_type" IN ' + _listed(FINISHED_STATE_TYPES)),
    )
)
# The dashboard's chart and the rollup's refresh: runs by expected start with the columns they
# count and sum, so SQLite reads the index alone (migration 0027; PostgreSQL's plans read
# the table in order and need none).
FlowRun.add_index(
    BackendIndex(
        FlowRun,
        (
            FlowRun.expected_start_time,
            FlowRun.state_type,
            FlowRun.total_run_time,
            FlowRun.state_timestamp,
        ),
        backends=("sqlite",),
        name="flow_run_expected_start_time_state",
    )
)
# The agents' pool's queues' SCHEDULED runs by due time (get_runs, the late-runs sweep), and
# counted by queue name and id from the index alone (work_queues.scheduled_run_counts; with
# the queue id only in the rows, counting 100,000 runs read each one's row: migration 0031).
FlowRun.add_index(
    FlowRun.index(
        FlowRun.work_queue_name,
        FlowRun.state_type,
        FlowRun.next_scheduled_start_time,
        FlowRun.work_queue_id,
        name="flow_run_work_queue_name_state_type_due_queue_id",
    )
)
# The runs list's pages of one state or one flow by end time or by name, and (PostgreSQL) of
# one state by expected start: one range of the index in the sort's order (both backends
# walked the sort's index testing each run's state or flow). Migration 0029 made the state
# ones on SQLite, 0030 the rest; SQLite sorts a state's runs by expected start within budget.
for _sorted_by in (FlowRun.end_time, FlowRun.name):
    for _filtered_by in (FlowRun.state_type, FlowRun.flow):
        FlowRun.add_index(
            FlowRun.index(
                _filtered_by,
                _sorted_by,
                FlowRun.id,
                name=f"flow_run_{_filtered_by.column_name}_{_sorted_by.name}_id",
            )
        )
FlowRun.add_index(
    BackendIndex(
        FlowRun,
        (FlowRun.state_type, FlowRun.expected_start_time, FlowRun.id),
        backends=("postgres",),
        name="flow_run_state_type_expected_start_time_id",
    )
)
# Name substring filters (ILIKE '%text%'), PostgreSQL only: a trigram index (migration 0009).
FlowRun.add_index(
    BackendIndex(
        FlowRun,
        (SQL('"name" gin_trgm_ops'),),
        backends=("postgres",),
        requires=("CREATE EXTENSION IF NOT EXISTS pg_trgm",),
        using="GIN",
        name="flow_run_name_trgm",
    )
)


class TaskRun(RunMixin):
    """One execution of a task inside a flow run; unique by (flow run, task_key, dynamic_key)."""

    # No index of its own: the unique (flow_run, task_key, dynamic_key) index starts with it.
    flow_run = ForeignKeyField(FlowRun, backref="task_runs", on_delete="CASCADE", index=False)
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

    # No index of its own: the unique (flow_run, timestamp) index starts with it.
    flow_run = ForeignKeyField(FlowRun, backref="states", on_delete="CASCADE", index=False)

    class Meta:
        table_name = "flow_run_state"
        indexes = ((("flow_run", "timestamp"), True),)


class TaskRunState(StateMixin):
    """A state a task run has been in; unique by (run, timestamp)."""

    # No index of its own: the unique (task_run, timestamp) index starts with it.
    task_run = ForeignKeyField(TaskRun, backref="states", on_delete="CASCADE", index=False)

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


class FlowRunInput(BaseModel):
    """A keyed text value a flow run receives (Prefect 2.20's flow run input): the JSON schema
    of the input a paused run waits for, the input its resume sent, or a message another run
    sent it. One value per run and key; deleted with the run."""

    flow_run = ForeignKeyField(FlowRun, on_delete="CASCADE", index=False)
    key = CharField()
    value = TextField()
    sender = CharField(null=True)

    class Meta:
        table_name = "flow_run_input"
        # Also serves a run's inputs by key prefix (its leading column), hence no FK index.
        indexes = ((("flow_run", "key"), True),)
