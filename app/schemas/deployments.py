"""Deployments: request bodies, the response schema and its fast dumper.

Schedules are validated by :mod:`app.schedules` (a leaf module, like :mod:`app.states`) and
loaded as their normalised JSON; an invalid one is a 422 saying what is wrong.
"""

import re

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from app.schedules import ScheduleError, parse_schedule
from app.schemas import limits
from app.schemas.actions import FlowRunPolicySchema
from app.schemas.base import (
    ActionSchema,
    DateTime,
    List,
    Name,
    OrionSchema,
    Refused,
    String,
    Tags,
    Text,
)
from app.schemas.core import ORMSchema, _str
from app.schemas.states import StateCreateSchema

# "path/to/file.py:flow_function" (the path may itself hold ':' on Windows).
_ENTRYPOINT = re.compile(r"^.+\.py:[A-Za-z_][A-Za-z0-9_]*$")


class ScheduleField(fields.Field):
    """An interval, cron or rrule schedule; loads as its normalised JSON dict."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_schedule(value).to_json()
        except ScheduleError as error:
            raise ValidationError(str(error)) from None


def _validate_entrypoint(value):
    if not _ENTRYPOINT.match(value):
        raise ValidationError(
            f"Entrypoint {limits.excerpt(value)!r} must look like 'path/to/file.py:flow_function'."
        )


def _schedule(**kwargs):
    return ScheduleField(
        allow_none=True,
        metadata={
            "description": '{"interval": seconds, "anchor_date", "timezone"} | '
            '{"cron", "timezone", "day_or"} | {"rrule", "timezone"}'
        },
        **kwargs,
    )


class _DeploymentFields(ActionSchema):
    """Fields a deployment body may set; absent ones are left alone on update."""

    version = String(allow_none=True)
    description = Text(allow_none=True)
    schedule = _schedule()
    is_schedule_active = fields.Boolean()
    parameters = fields.Dict(keys=Text())
    tags = List(String())
    work_queue_name = String(min_length=1, allow_none=True)
    work_pool_name = String(
        min_length=1,
        allow_none=True,
        metadata={"description": "Prefect 2.20: the pool whose queue runs it (404 if none)."},
    )
    parameter_openapi_schema = fields.Dict(
        allow_none=True,
        metadata={"description": "JSON schema of the flow's parameters, stored as given."},
    )
    path = String(
        allow_none=True,
        metadata={
            "description": "Where the flow's code is: a local path or an fsspec URL "
            "(s3://bucket/flows, file:///srv/flows)."
        },
    )
    entrypoint = String(
        allow_none=True,
        validate=_validate_entrypoint,
        metadata={"description": "path/to/file.py:flow_function, relative to path."},
    )
    manifest_path = String(allow_none=True)
    storage_document_id = fields.UUID(allow_none=True)
    infrastructure_document_id = fields.UUID(allow_none=True)
    infra_overrides = fields.Dict()
    # Prefect 2.10+ names for the fields above.
    paused = fields.Boolean(
        allow_none=True,
        load_only=True,
        metadata={
            "description": "Prefect 2.10+: the opposite of is_schedule_active (wins over it)."
        },
    )
    job_variables = fields.Dict(
        allow_none=True,
        load_only=True,
        metadata={
            "description": "Prefect 2.10+: infra_overrides under its new name (wins over it)."
        },
    )
    schedules = fields.List(
        fields.Dict(),
        allow_none=True,
        load_only=True,
        metadata={
            "description": "Prefect 2.18+: at most one {schedule, active}, taken as schedule and "
            "is_schedule_active when those are not given."
        },
    )

    @validates_schema
    def check_schedules(self, data, **kwargs):
        if len(data.get("schedules") or ()) > 1:
            raise ValidationError(
                "A deployment has at most one schedule on this server; send one.", "schedules"
            )

    @post_load
    def apply_newer_names(self, data, **kwargs):
        """Fold Prefect 2.10+'s ``paused``, ``job_variables`` and ``schedules`` into the
        fields this server stores."""
        schedules = data.pop("schedules", None) or ()
        for entry in schedules:
            if "schedule" not in data:
                try:
                    data["schedule"] = self.fields["schedule"].deserialize(
                        entry.get("schedule"), "schedules", entry
                    )
                except ValidationError as error:
                    raise ValidationError(error.messages, "schedules") from None
            if "is_schedule_active" not in data and entry.get("active") is not None:
                data["is_schedule_active"] = bool(entry["active"])
        paused = data.pop("paused", None)
        if paused is not None:
            data["is_schedule_active"] = not paused
        job_variables = data.pop("job_variables", None)
        if job_variables is not None:
            data["infra_overrides"] = job_variables
        return data


class DeploymentCreateSchema(_DeploymentFields):
    """Body of ``POST /api/deployments/``: an upsert on (flow_id, name)."""

    name = Name()
    flow_id = fields.UUID(required=True)
    created_by = fields.Dict(allow_none=True)
    updated_by = fields.Dict(allow_none=True)


class DeploymentUpdateSchema(_DeploymentFields):
    """Body of ``PATCH /api/deployments/{id}``: only the fields given change."""

    updated_by = fields.Dict(allow_none=True)
    name = Refused("A deployment's name cannot be changed; create a new deployment.")
    flow_id = Refused("A deployment's flow cannot be changed; create a new deployment.")


class DeploymentFlowRunCreateSchema(ActionSchema):
    """Body of ``POST /api/deployments/{id}/create_flow_run``."""

    name = String(allow_none=True)
    parameters = fields.Dict(
        load_default=dict, metadata={"description": "Merged over the deployment's parameters."}
    )
    tags = Tags(metadata={"description": "Added to the deployment's tags."})
    state = fields.Nested(
        StateCreateSchema,
        allow_none=True,
        metadata={
            "description": "Initial state (default Pending), e.g. Scheduled at a future time."
        },
    )
    idempotency_key = String(limits.IDEMPOTENCY_KEY_MAX_LENGTH, min_length=1, allow_none=True)
    context = fields.Dict(load_default=dict)
    empirical_policy = fields.Nested(FlowRunPolicySchema, load_default=dict)
    infrastructure_document_id = fields.UUID(allow_none=True)
    parent_task_run_id = fields.UUID(allow_none=True)
    work_queue_name = String(allow_none=True)
    created_by = fields.Dict(allow_none=True)
    flow_id = Refused("A deployment's flow run runs the deployment's flow; leave flow_id out.")


class DeploymentScheduleSchema(ActionSchema):
    """Body of ``POST /api/deployments/{id}/schedule``: runs for an explicit range.

    Every slot of the schedule from ``start_time`` (default now) to ``end_time`` (default
    start + the scheduler's max_scheduled_time) is scheduled, at most ``max_runs``. Given
    ``min_runs`` and/or ``min_time``, generation stops early once both are met, as the
    scheduler service does.
    """

    start_time = DateTime(allow_none=True)
    end_time = DateTime(allow_none=True)
    min_time = fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, max=limits.SECONDS_MAX),
        metadata={"description": "Seconds after start_time the runs must reach."},
    )
    min_runs = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=limits.INT32_MAX))
    max_runs = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=limits.INT32_MAX))
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "Only list what would be scheduled; write nothing."},
    )

    # Set per app from SCHEDULER_MAX_BACKFILL_RUNS by the API layer.
    max_backfill_runs = 10000

    @validates_schema
    def check_range(self, data, **kwargs):
        start, end = data.get("start_time"), data.get("end_time")
        if start is not None and end is not None and end < start:
            raise ValidationError("end_time must not be before start_time.", "end_time")
        max_runs = data.get("max_runs")
        if max_runs is not None and max_runs > self.max_backfill_runs:
            raise ValidationError(f"max_runs must be at most {self.max_backfill_runs}.", "max_runs")


class ScheduleResultSchema(OrionSchema):
    """What ``POST /api/deployments/{id}/schedule`` scheduled (or would schedule)."""

    dry_run = fields.Boolean(required=True)
    scheduled_times = fields.List(
        DateTime(),
        required=True,
        metadata={"description": "Every slot in the range (up to max_runs), in order."},
    )
    created = fields.Integer(
        required=True,
        metadata={"description": "How many of them are new runs (the others existed already)."},
    )
    existing = fields.Integer(required=True)


class DeploymentSchema(ORMSchema):
    """A deployment as the API returns it."""

    name = fields.String(required=True)
    flow_id = fields.UUID(required=True)
    version = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    schedule = fields.Dict(allow_none=True)
    is_schedule_active = fields.Boolean(required=True)
    paused = fields.Boolean(
        required=True,
        metadata={"description": "not is_schedule_active (Prefect 2.10+ reads this name)."},
    )
    parameters = fields.Dict(required=True)
    tags = fields.List(fields.String(), required=True)
    work_queue_name = fields.String(allow_none=True)
    parameter_openapi_schema = fields.Dict(allow_none=True)
    path = fields.String(allow_none=True)
    entrypoint = fields.String(allow_none=True)
    manifest_path = String(allow_none=True)
    storage_document_id = fields.UUID(allow_none=True)
    infrastructure_document_id = fields.UUID(allow_none=True)
    infra_overrides = fields.Dict(required=True)
    created_by = fields.Dict(allow_none=True)
    updated_by = fields.Dict(allow_none=True)
    work_pool_name = fields.String(allow_none=True)
    job_variables = fields.Dict(
        required=True, metadata={"description": "infra_overrides under Prefect 2.10+'s name."}
    )


def dump_deployment(deployment):
    """A Deployment row as the API shows it."""
    return {
        "id": str(deployment.id),
        "created": deployment.created.isoformat(),
        "updated": deployment.updated.isoformat(),
        "name": deployment.name,
        "flow_id": str(deployment.flow_id),
        "version": deployment.version,
        "description": deployment.description,
        "schedule": deployment.schedule,
        "is_schedule_active": deployment.is_schedule_active,
        "paused": not deployment.is_schedule_active,
        "parameters": deployment.parameters,
        "tags": deployment.tags,
        "work_queue_name": deployment.work_queue_name,
        "parameter_openapi_schema": deployment.parameter_openapi_schema,
        "path": deployment.path,
        "entrypoint": deployment.entrypoint,
        "manifest_path": deployment.manifest_path,
        "storage_document_id": _str(deployment.storage_document_id),
        "infrastructure_document_id": _str(deployment.infrastructure_document_id),
        "infra_overrides": deployment.infra_overrides,
        "created_by": deployment.created_by,
        "updated_by": deployment.updated_by,
        "work_pool_name": deployment.work_pool_name,
        "job_variables": deployment.infra_overrides,
    }


def dump_schedule_result(result):
    """A ScheduleResult (see app.services.deployments) as the API shows it."""
    return {
        "dry_run": result.dry_run,
        "scheduled_times": [d.isoformat() for d in result.dates],
        "created": result.created,
        "existing": result.existing,
    }
