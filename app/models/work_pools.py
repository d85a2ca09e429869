"""Work pools, their work queues and the workers that poll them (Prefect 2.20's work pools).

Every queue belongs to a pool; queue names are unique within their pool. The queues of
Prefect 2.7's agents are the queues of the ``default-agent-pool`` pool (:data:`AGENT_POOL`),
which the old ``/api/work_queues`` paths address by queue name.
"""

from peewee import (
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
    UUIDField,
)

from app.db import for_update
from app.models.base import BaseModel, UTCDateTimeField

# The pool holding the queues agents poll (Prefect's name and type for it).
AGENT_POOL = "default-agent-pool"
AGENT_POOL_TYPE = "prefect-agent"
# The name of the queue every pool is created with, its default queue.
DEFAULT_QUEUE = "default"


class WorkPool(BaseModel):
    """A typed group of work queues that workers of its ``type`` poll.

    ``base_job_template`` is ``{"job_configuration": {...}, "variables": <JSON schema>}``: the
    variables a deployment may set (its ``job_variables``) and how a worker builds a job from
    them. ``default_queue_id`` is the queue a deployment naming no queue goes to (not a
    foreign key: the pool and its default queue are created together, and the default queue
    cannot be deleted). ``concurrency_limit`` bounds the pool's PENDING and RUNNING flow runs
    (None: unlimited).
    """

    name = CharField(unique=True)
    description = TextField(null=True)
    type = CharField()
    base_job_template = JSONField(default=dict)
    is_paused = BooleanField(default=False)
    concurrency_limit = IntegerField(null=True)
    default_queue_id = UUIDField(null=True)

    class Meta:
        table_name = "work_pool"

    @classmethod
    def locked(cls, condition):
        """The pool matching ``condition`` (or None), locked until the transaction ends."""
        return for_update(cls.select().where(condition)).first()


class WorkQueue(BaseModel):
    """A named queue of a pool that agents and workers poll for scheduled flow runs."""

    name = CharField()
    description = TextField(default="")
    is_paused = BooleanField(default=False)
    # None means unlimited.
    concurrency_limit = IntegerField(null=True)
    # Deprecated tag/deployment filter of Orion 2.0 queues.
    filter = JSONField(null=True)
    last_polled = UTCDateTimeField(null=True)
    # Prefect's rank: 1 is the highest. Agents polling several queues serve them in this order.
    priority = IntegerField(default=1)
    # The (pool, name) unique index also serves lookups by pool.
    work_pool = ForeignKeyField(WorkPool, backref="queues", on_delete="CASCADE", index=False)

    class Meta:
        table_name = "work_queue"
        indexes = ((("work_pool", "name"), True),)

    @classmethod
    def locked(cls, condition):
        """The queue matching ``condition`` (or None), locked until the transaction ends
        (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's transaction holds the write lock)."""
        return for_update(cls.select().where(condition)).first()

    @classmethod
    def pool_facts(cls, queue_ids):
        """``{queue id as a string: (pool id, pool name, queue's last poll)}`` of the queues
        ``queue_ids`` that exist, in one query (none for no ids)."""
        if not queue_ids:
            return {}
        rows = (
            cls.select(cls.id, WorkPool.id, WorkPool.name, cls.last_polled)
            .join(WorkPool)
            .where(cls.id.in_(list(queue_ids)))
            .tuples()
        )
        return {str(queue_id): facts for queue_id, *facts in rows}


class Worker(BaseModel):
    """A worker of a pool, known from its heartbeats; unique by (pool, name)."""

    work_pool = ForeignKeyField(WorkPool, backref="workers", on_delete="CASCADE", index=False)
    name = CharField()
    last_heartbeat_time = UTCDateTimeField(null=True, index=True)
    # How often the worker says it heartbeats (None: unknown); sets when it counts as offline.
    heartbeat_interval_seconds = IntegerField(null=True)

    class Meta:
        table_name = "worker"
        indexes = ((("work_pool", "name"), True),)
