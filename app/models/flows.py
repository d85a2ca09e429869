"""Flows and their deployments."""

from peewee import BooleanField, CharField, ForeignKeyField, JSONField, TextField, UUIDField

from app.models.base import BaseModel


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
