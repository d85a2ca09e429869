"""Flows and their deployments."""

from peewee import (
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    JSONField,
    TextField,
    UUIDField,
)

from app.models.base import BaseModel, UTCDateTimeField
from app.models.work_pools import WorkQueue

# A deployment is READY (Prefect 2.20's status) while polled within this many seconds, as
# Prefect's PREFECT_API_SERVICES_FOREMAN_DEPLOYMENT_LAST_POLLED_TIMEOUT_SECONDS says.
READY_POLL_SECONDS = 60


class Flow(BaseModel):
    """A named flow; names are unique across the server."""

    name = CharField(unique=True)
    tags = JSONField(default=list)

    class Meta:
        # The CREATED_DESC sort.
        indexes = ((("created",), False),)


class Deployment(BaseModel):
    """A flow packaged to be run on a schedule or on demand; unique by (flow, name)."""

    name = CharField(index=True)
    flow = ForeignKeyField(Flow, backref="deployments", on_delete="CASCADE")
    version = CharField(null=True)
    description = TextField(null=True)
    parameters = JSONField(default=dict)
    tags = JSONField(default=list)
    work_queue_name = CharField(null=True, index=True)
    # The queue (of its pool) the deployment's runs go to; work_queue_name is its name.
    work_queue = ForeignKeyField(WorkQueue, null=True, on_delete="SET NULL")
    parameter_openapi_schema = JSONField(null=True)
    path = CharField(null=True)
    entrypoint = CharField(null=True)
    manifest_path = CharField(null=True)
    storage_document_id = UUIDField(null=True)
    infrastructure_document_id = UUIDField(null=True)
    infra_overrides = JSONField(default=dict)
    created_by = JSONField(null=True)
    updated_by = JSONField(null=True)
    # Prefect 2.20: a paused deployment gets no auto-scheduled runs, whatever its schedules say
    # (is_schedule_active, the 0.8.4 name, is its negation).
    paused = BooleanField(default=False, index=True)
    # Prefect 2.20: runs created from the deployment must have parameters that match
    # parameter_openapi_schema.
    enforce_parameter_schema = BooleanField(default=False)
    # Columns that migrations added to the table come last, in the migrations' order.
    # Prefect 2.20: the steps a flow run of the deployment runs to fetch its code before it
    # starts (``[{"prefect.deployments.steps.git_clone": {...}}, ...]``), stored as given
    # (migration 0033).
    pull_steps = JSONField(null=True)
    # When a Prefect 2.20 runner (``flow.serve()``) last asked for the deployment's runs
    # (migration 0035). Polls of its work queue are the queue's ``last_polled``.
    last_polled = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("flow", "name"), True), (("created",), False))

    @property
    def work_pool_name(self):
        """The name of the pool of the deployment's queue (None without one): the name
        :meth:`load_work_pool_names` gave the row for its current queue, else one query."""
        return self._queue_facts()[0]

    @property
    def polled(self):
        """When something last asked for the deployment's runs (None: never): a runner, by
        the deployment, or an agent or worker, by its queue (Prefect 2.20's ``last_polled``)."""
        by_queue = self._queue_facts()[1]
        if by_queue is None or (self.last_polled is not None and self.last_polled > by_queue):
            return self.last_polled
        return by_queue

    def is_ready(self, now):
        """Prefect 2.20's ``status``: READY when polled in the last ``READY_POLL_SECONDS``."""
        polled = self.polled
        return polled is not None and (now - polled).total_seconds() <= READY_POLL_SECONDS

    def _queue_facts(self):
        """(pool name, queue's last poll) of the deployment's current queue: what
        :meth:`load_work_pool_names` read for the row, else one query."""
        if self.work_queue_id is None:
            return None, None
        loaded = getattr(self, "_queue_loaded", None)
        if loaded is None or loaded[0] != self.work_queue_id:
            self.load_work_pool_names([self])
        return self._queue_loaded[1]

    @classmethod
    def load_work_pool_names(cls, deployments):
        """Read the pool names and last polls of ``deployments``' queues in one query, so
        that :attr:`work_pool_name` and :attr:`polled` cost none for these rows (a list of
        deployments); returns ``deployments``."""
        queued = [d for d in deployments if d.work_queue_id is not None]
        facts = WorkQueue.pool_facts({d.work_queue_id for d in queued})
        for deployment in queued:
            _, name, polled = facts.get(str(deployment.work_queue_id), (None, None, None))
            deployment._queue_loaded = (deployment.work_queue_id, (name, polled))
        return deployments


class DeploymentSchedule(BaseModel):
    """One of a deployment's schedules (Prefect 2.20); listed in the order they were added.

    ``max_active_runs``, ``max_scheduled_runs`` and ``catchup`` are stored and returned as
    Prefect 2.20's server does, which does not act on them either.
    """

    deployment = ForeignKeyField(Deployment, backref="schedules", on_delete="CASCADE")
    schedule = JSONField()
    active = BooleanField(default=True)
    max_active_runs = IntegerField(null=True)
    max_scheduled_runs = IntegerField(null=True)
    catchup = BooleanField(default=False)

    class Meta:
        table_name = "deployment_schedule"
