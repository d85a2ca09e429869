"""Flows and their deployments."""

from peewee import BooleanField, CharField, ForeignKeyField, JSONField, TextField, UUIDField

from app.models.base import BaseModel
from app.models.work_pools import WorkPool, WorkQueue


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
    schedule = JSONField(null=True)
    is_schedule_active = BooleanField(default=True, index=True)
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

    class Meta:
        indexes = ((("flow", "name"), True), (("created",), False))

    @property
    def work_pool_name(self):
        """The name of the pool of the deployment's queue (None without one); one query."""
        if self.work_queue_id is None:
            return None
        pool = WorkPool.select(WorkPool.name).join(WorkQueue)
        return pool.where(WorkQueue.id == self.work_queue_id).scalar()
