"""Work queues, task concurrency limits, logs and saved searches."""
from peewee import BooleanField, CharField, IntegerField, JSONField, TextField, UUIDField

from app.models.base import BaseModel, UTCDateTimeField


class WorkQueue(BaseModel):
    """A named queue agents poll for scheduled flow runs."""

    name = CharField(unique=True)
    description = TextField(default="")
    is_paused = BooleanField(default=False)
    # None means unlimited.
    concurrency_limit = IntegerField(null=True)
    # Deprecated tag/deployment filter of Orion 2.0 queues.
    filter = JSONField(null=True)
    last_polled = UTCDateTimeField(null=True)

    class Meta:
        table_name = "work_queue"


class ConcurrencyLimit(BaseModel):
    """The most task runs carrying ``tag`` that may be RUNNING at once."""

    tag = CharField(unique=True)
    concurrency_limit = IntegerField()

    class Meta:
        table_name = "concurrency_limit"


class Log(BaseModel):
    """One log record emitted by a flow run or task run.

    Run ids are not foreign keys: logs are accepted in bulk without a lookup per record, and
    outlive deleted runs until retention removes them.
    """

    name = CharField()
    level = IntegerField(index=True)
    message = TextField()
    timestamp = UTCDateTimeField(index=True)
    flow_run_id = UUIDField(index=True)
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
