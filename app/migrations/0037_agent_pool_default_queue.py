"""The agents' pool gets the default queue every other pool has, as Prefect 2.20's does.

``default-agent-pool`` was created without one unless a queue named ``default`` existed
(0020), and Prefect's clients refuse a pool whose ``default_queue_id`` is null: Prefect
2.20's ``prefect work-pool ls`` failed as soon as a Prefect 2.7 agent's queue existed. Its
queue named ``default`` becomes its default queue, created (unpaused, unlimited, the pool's
first free priority) if the pool has none of that name. Nothing to undo on the way down:
the queue is an ordinary one, and a default queue is what the server now keeps.
"""

import datetime
import uuid

from peewee import BooleanField, CharField, DateTimeField, IntegerField, Model, TextField, UUIDField

MODELS = ()

AGENT_POOL = "default-agent-pool"
DEFAULT_QUEUE = "default"


class _Base(Model):
    id = UUIDField(primary_key=True)
    created = DateTimeField()
    updated = DateTimeField()

    class Meta:
        legacy_table_names = False


class WorkPool(_Base):
    name = CharField()
    default_queue_id = UUIDField(null=True)

    class Meta:
        table_name = "work_pool"


class WorkQueue(_Base):
    name = CharField()
    description = TextField()
    is_paused = BooleanField()
    concurrency_limit = IntegerField(null=True)
    priority = IntegerField()
    work_pool_id = UUIDField()

    class Meta:
        table_name = "work_queue"


def _now():
    """Now as the app stores it: naive UTC, fixed-width microseconds."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return now.isoformat(sep=" ", timespec="microseconds")


def up(migrator, db):
    """Give the agents' pool, if it exists without one, its ``default`` queue as default."""
    with db.bind_ctx((WorkPool, WorkQueue)):
        pool = WorkPool.get_or_none(
            (WorkPool.name == AGENT_POOL) & WorkPool.default_queue_id.is_null()
        )
        if pool is None:
            return
        queue = WorkQueue.get_or_none(
            (WorkQueue.work_pool_id == pool.id) & (WorkQueue.name == DEFAULT_QUEUE)
        )
        if queue is None:
            taken = {
                q.priority for q in WorkQueue.select().where(WorkQueue.work_pool_id == pool.id)
            }
            priority = next(p for p in range(1, len(taken) + 2) if p not in taken)
            now = _now()
            queue = WorkQueue.create(
                id=uuid.uuid4(),
                created=now,
                updated=now,
                name=DEFAULT_QUEUE,
                description="",
                is_paused=False,
                concurrency_limit=None,
                priority=priority,
                work_pool_id=pool.id,
            )
        WorkPool.update(default_queue_id=queue.id).where(WorkPool.id == pool.id).execute()


def down(migrator, db):
    """Nothing: the default queue stays, an ordinary queue of the pool."""
