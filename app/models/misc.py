"""Agents, task concurrency limits and their slot leases, global concurrency
limits and their leases, logs, saved searches, variables, artifacts and their keys' latest."""

from peewee import (
    BooleanField,
    CharField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
    UUIDField,
)

from app.db import database, for_update
from app.models.base import BaseModel, UTCDateTimeField, utcnow
from app.models.runs import TaskRun
from app.models.work_pools import WorkQueue


class Agent(BaseModel):
    """An agent, known from its polls and heartbeats: the queue it last polled and when,
    and when it last heartbeated.

    Created and updated by ``get_runs`` calls that carry the agent's id and by its
    heartbeats (``POST /api/agents/{id}/heartbeat``); the name defaults to ``agent-<id>``.
    """

    name = CharField(unique=True)
    work_queue = ForeignKeyField(WorkQueue, null=True, on_delete="SET NULL")
    last_activity_time = UTCDateTimeField(null=True, index=True)
    last_heartbeat = UTCDateTimeField(null=True)

    class Meta:
        table_name = "agent"


class ConcurrencyLimit(BaseModel):
    """The most task runs carrying ``tag`` that may be RUNNING at once."""

    tag = CharField(unique=True)
    concurrency_limit = IntegerField()

    class Meta:
        table_name = "concurrency_limit"

    @classmethod
    def locked_for_tags(cls, tags):
        """The limits on any of ``tags``, ordered by tag, locked until the transaction ends.

        Call inside a transaction. PostgreSQL locks the rows (``SELECT ... FOR UPDATE``) in tag
        order, so transactions locking overlapping sets of limits queue up instead of
        deadlocking; SQLite's transaction already holds the database write lock. Returns a
        list (empty, without a query, when ``tags`` is empty).
        """
        tags = sorted(set(tags))
        if not tags:
            return []
        return list(for_update(cls.select().where(cls.tag.in_(tags)).order_by(cls.tag)))


class ConcurrencySlot(BaseModel):
    """A lease of one slot of a concurrency limit by one task run, valid until ``expires``.

    A task run holds at most one lease per limit. Leases past ``expires`` no longer count
    against the limit, so a task run that died without reporting frees its slots by itself.
    """

    limit = ForeignKeyField(ConcurrencyLimit, on_delete="CASCADE", index=False)
    task_run = ForeignKeyField(TaskRun, on_delete="CASCADE")
    expires = UTCDateTimeField(index=True)

    class Meta:
        table_name = "concurrency_slot"
        # Also serves lookups by limit (its leading column), hence no index of its own.
        indexes = ((("limit", "task_run"), True),)

    @classmethod
    def lease(cls, limit_ids, task_run_ids, expires, now):
        """Lease every task run in ``task_run_ids`` one slot of every limit in ``limit_ids``
        until ``expires``; a lease a run already holds is renewed instead. One statement.

        Checks no limit: call inside the transaction that locked the limits and counted
        their free slots.
        """
        rows = [
            {
                "limit": limit_id,
                "task_run": run_id,
                "expires": expires,
                "created": now,
                "updated": now,
            }
            for limit_id in limit_ids
            for run_id in task_run_ids
        ]
        if rows:
            (
                cls.insert_many(rows)
                .on_conflict(
                    conflict_target=[cls.limit, cls.task_run],
                    update={cls.expires: expires, cls.updated: now},
                )
                .execute()
            )


class Log(BaseModel):
    """One log record emitted by a flow run or task run.

    Run ids are not foreign keys: logs are accepted in bulk without a lookup per record, and
    outlive deleted runs until retention removes them.
    """

    name = CharField()
    level = IntegerField(index=True)
    message = TextField()
    timestamp = UTCDateTimeField(index=True)
    flow_run_id = UUIDField()  # its lookups use the (flow_run_id, timestamp) index below
    task_run_id = UUIDField(null=True, index=True)

    class Meta:
        # A run's logs in time order: what the run page reads.
        indexes = ((("flow_run_id", "timestamp"), False),)


class SavedSearch(BaseModel):
    """A named set of dashboard filters."""

    name = CharField(unique=True)
    filters = JSONField(default=list)

    class Meta:
        table_name = "saved_search"


class Variable(BaseModel):
    """A named text value that flows read at run time (Prefect 2.20's variables)."""

    name = CharField(unique=True)
    value = TextField()
    tags = JSONField(default=list)

    class Meta:
        table_name = "variable"


class Artifact(BaseModel):
    """Something a flow or task run made for people to see (Prefect 2.20's artifacts): a
    markdown text, a table, a link or a result, ``data`` shaped by its ``type``. Artifacts
    sharing a ``key`` are versions of one; the newest is the key's latest."""

    key = CharField(null=True)
    type = CharField(null=True)
    description = TextField(null=True)
    data = JSONField(null=True)
    metadata_ = JSONField(null=True, column_name="metadata_")
    flow_run_id = UUIDField(null=True, index=True)
    task_run_id = UUIDField(null=True, index=True)

    class Meta:
        table_name = "artifact"
        # A key's versions, newest first.
        indexes = ((("key", "created"), False),)


class ArtifactCollection(Model):
    """A key's latest artifact (Prefect 2.20's ``artifact_collection``): its newest by
    ``created``, then by id. One row per key with artifacts, kept in step with every create
    and delete by ``app.services.artifacts``, so lists of each key's latest read one row per
    key rather than every version."""

    key = CharField(primary_key=True)
    latest_id = UUIDField(unique=True)
    latest_created = UTCDateTimeField()

    class Meta:
        database = database
        legacy_table_names = False
        table_name = "artifact_collection"
        # Lists of each key's latest, newest first.
        indexes = ((("latest_created", "latest_id"), False),)


class GlobalConcurrencyLimit(BaseModel):
    """A named pool of ``limit`` slots (Prefect 2.20's global concurrency limit, "v2").

    ``active_slots`` are taken; with ``slot_decay_per_second`` > 0 (a rate limit) they also
    free themselves at that rate, counted from ``decayed_at``. ``denied_slots`` and
    ``avg_slot_occupancy_seconds`` feed the ``Retry-After`` of a refused increment. An
    inactive limit limits nothing.
    """

    active = BooleanField(default=True)
    name = CharField(unique=True)
    limit = IntegerField()
    active_slots = IntegerField(default=0)
    denied_slots = IntegerField(default=0)
    slot_decay_per_second = FloatField(default=0.0)
    avg_slot_occupancy_seconds = FloatField(default=2.0)
    decayed_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "concurrency_limit_v2"


class GlobalConcurrencyLease(BaseModel):
    """``slots`` of a global limit taken by ``holder`` (one process's ``concurrency()``
    block) until ``expires``; the holder renews it while it runs. A lease past ``expires``
    is given back by the liveness service (``app.services.concurrency_limits_v2``)."""

    limit = ForeignKeyField(GlobalConcurrencyLimit, on_delete="CASCADE", index=False)
    holder = UUIDField()
    slots = IntegerField()
    expires = UTCDateTimeField(index=True)

    class Meta:
        table_name = "concurrency_lease_v2"
        indexes = ((("limit", "holder"), True), (("holder",), False))
