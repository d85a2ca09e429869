"""Deployments: request bodies, the response schema and its fast dumper.

Schedules are validated by :mod:`app.schedules` (a leaf module, like :mod:`app.states`) and
loaded as their normalised JSON; an invalid one is a 422 saying what is wrong.
"""

import re

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from app.clock import utcnow
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
    RunName,
    String,
    Tags,
    Text,
)
from app.schemas.core import ORMSchema, _str
from app.schemas.filters import PagedBody, PageLimit
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
    kwargs.setdefault("allow_none", True)
    return ScheduleField(
        metadata={
            "description": '{"interval": seconds, "anchor_date", "timezone"} | '
            '{"cron", "timezone", "day_or"} | {"rrule", "timezone"}'
        },
        **kwargs,
    )


class DeploymentScheduleCreateSchema(ActionSchema):
    """One schedule of a deployment (Prefect 2.20's DeploymentScheduleCreate): a body item of
    ``POST /api/deployments/{id}/schedules`` and of ``schedules`` on a deployment.

    ``max_active_runs``, ``max_scheduled_runs`` and ``catchup`` are stored and returned; as
    on Prefect 2.20's own server, nothing acts on them.
    """

    schedule = _schedule(required=True, allow_none=False)
    active = fields.Boolean(load_default=True)
    max_active_runs = fields.Integer(
        allow_none=True, validate=validate.Range(min=1, max=limits.INT32_MAX)
    )
    max_scheduled_runs = fields.Integer(
        allow_none=True, validate=validate.Range(min=1, max=limits.INT32_MAX)
    )
    catchup = fields.Boolean(load_default=False)


class DeploymentScheduleUpdateSchema(ActionSchema):
    """Body of ``PATCH /api/deployments/{id}/schedules/{schedule_id}``: the fields given
    change (``null`` leaves a field alone, as in Prefect 2.20)."""

    schedule = _schedule()
    active = fields.Boolean(allow_none=True)
    max_active_runs = fields.Integer(
        allow_none=True, validate=validate.Range(min=1, max=limits.INT32_MAX)
    )
    max_scheduled_runs = fields.Integer(
        allow_none=True, validate=validate.Range(min=1, max=limits.INT32_MAX)
    )
    catchup = fields.Boolean(allow_none=True)

    @post_load
    def drop_nulls(self, data, **kwargs):
        return {key: value for key, value in data.items() if value is not None}


class DeploymentScheduleReadSchema(ORMSchema):
    """One of a deployment's schedules as the API returns it."""

    deployment_id = fields.UUID(required=True)
    schedule = fields.Dict(required=True)
    active = fields.Boolean(required=True)
    max_active_runs = fields.Integer(allow_none=True)
    max_scheduled_runs = fields.Integer(allow_none=True)
    catchup = fields.Boolean(required=True)


class _DeploymentFields(ActionSchema):
    """Fields a deployment body may set; absent ones are left alone on update.

    ``schedules`` (Prefect 2.20) and the 0.8.4 ``schedule`` / ``is_schedule_active`` are
    passed on as given: how they combine with each other, ``paused`` and the deployment's
    current schedules is the service's (``app.services.deployments._schedule_changes``).
    """

    version = String(allow_none=True)
    description = Text(allow_none=True)
    schedule = _schedule()
    is_schedule_active = fields.Boolean(
        metadata={"description": "0.8.4: not paused; also the active flag of its one schedule."}
    )
    schedules = fields.List(
        fields.Nested(DeploymentScheduleCreateSchema),
        metadata={"description": "Prefect 2.18+: replaces the deployment's schedules."},
    )
    paused = fields.Boolean(
        allow_none=True,
        metadata={
            "description": "Prefect 2.10+: no auto-scheduled runs (wins over is_schedule_active)."
        },
    )
    enforce_parameter_schema = fields.Boolean(
        allow_none=True,
        metadata={
            "description": "Prefect 2.20: runs created from the deployment must have "
            "parameters matching parameter_openapi_schema."
        },
    )
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
    pull_steps = List(
        fields.Dict(keys=Text()),
        allow_none=True,
        metadata={
            "description": "Prefect 2.20: steps a run takes to fetch the flow's code, each "
            '{"fully.qualified.step": {its arguments}}, run by the client in order.'
        },
    )
    # Prefect 2.10+ name for infra_overrides.
    job_variables = fields.Dict(
        allow_none=True,
        load_only=True,
        metadata={
            "description": "Prefect 2.10+: infra_overrides under its new name (wins over it)."
        },
    )

    @post_load
    def apply_newer_names(self, data, **kwargs):
        """Fold Prefect 2.10+'s ``job_variables`` into ``infra_overrides``; a ``paused`` or
        ``enforce_parameter_schema`` of ``null`` (what 2.20 sends when unset) is no change."""
        for key in ("paused", "enforce_parameter_schema"):
            if key in data and data[key] is None:
                del data[key]
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

    name = RunName(allow_none=True)
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
    job_variables = fields.Dict(
        keys=Text(),
        allow_none=True,
        metadata={
            "description": "Prefect 2.20: this run's job variables, which its worker merges "
            "over the deployment's; checked against its work pool's template."
        },
    )
    created_by = fields.Dict(allow_none=True)
    enforce_parameter_schema = fields.Boolean(
        allow_none=True,
        metadata={"description": "Prefect 2.20: overrides the deployment's setting for this run."},
    )
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
    schedule = fields.Dict(
        allow_none=True, metadata={"description": "0.8.4: the first of its schedules."}
    )
    is_schedule_active = fields.Boolean(
        required=True, metadata={"description": "0.8.4: not paused."}
    )
    paused = fields.Boolean(required=True)
    schedules = fields.List(
        fields.Nested(DeploymentScheduleReadSchema),
        required=True,
        metadata={"description": "Prefect 2.18+: its schedules, in the order they were added."},
    )
    enforce_parameter_schema = fields.Boolean(required=True)
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
    pull_steps = fields.List(fields.Dict(), allow_none=True)
    created_by = fields.Dict(allow_none=True)
    updated_by = fields.Dict(allow_none=True)
    work_pool_name = fields.String(allow_none=True)
    work_queue_id = fields.UUID(
        allow_none=True, metadata={"description": "Prefect 2.20: the queue its runs go to."}
    )
    last_polled = DateTime(
        allow_none=True,
        metadata={
            "description": "Prefect 2.20: when a runner asked for its runs, or an agent or "
            "worker polled its queue, whichever was last."
        },
    )
    status = fields.String(
        validate=validate.OneOf(["READY", "NOT_READY"]),
        metadata={"description": "Prefect 2.20: READY when polled within the last minute."},
    )
    job_variables = fields.Dict(
        required=True, metadata={"description": "infra_overrides under Prefect 2.10+'s name."}
    )


def dump_deployment_schedule(row):
    """A DeploymentSchedule row as the API shows it."""
    return {
        "id": str(row.id),
        "created": row.created.isoformat(),
        "updated": row.updated.isoformat(),
        "deployment_id": str(row.deployment_id),
        "schedule": row.schedule,
        "active": row.active,
        "max_active_runs": row.max_active_runs,
        "max_scheduled_runs": row.max_scheduled_runs,
        "catchup": row.catchup,
    }


def dump_deployment(deployment, now=None):
    """A Deployment row, with its ``schedule_rows`` (see
    ``app.services.deployments.with_schedules``), as the API shows it."""
    rows = deployment.schedule_rows
    polled = deployment.polled
    return {
        "id": str(deployment.id),
        "created": deployment.created.isoformat(),
        "updated": deployment.updated.isoformat(),
        "name": deployment.name,
        "flow_id": str(deployment.flow_id),
        "version": deployment.version,
        "description": deployment.description,
        "schedule": rows[0].schedule if rows else None,
        "is_schedule_active": not deployment.paused,
        "paused": deployment.paused,
        "schedules": [dump_deployment_schedule(row) for row in rows],
        "enforce_parameter_schema": deployment.enforce_parameter_schema,
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
        "pull_steps": deployment.pull_steps,
        "created_by": deployment.created_by,
        "updated_by": deployment.updated_by,
        "work_pool_name": deployment.work_pool_name,
        "work_queue_id": _str(deployment.work_queue_id),
        "last_polled": None if polled is None else polled.isoformat(),
        "status": "READY" if deployment.is_ready(now or utcnow()) else "NOT_READY",
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


class DeploymentScheduledRunsSchema(ActionSchema):
    """Body of ``POST /api/deployments/get_scheduled_flow_runs`` (Prefect 2.20's runner)."""

    deployment_ids = List(fields.UUID(), required=True)
    scheduled_before = DateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "Only runs scheduled up to this time (default: now)."},
    )
    limit = fields.Integer(
        validate=PageLimit(),
        allow_none=True,
        metadata={"description": "Most runs returned; defaults to the largest allowed."},
    )

    @post_load
    def default_limit(self, data, **kwargs):
        if data.get("limit") is None:
            data["limit"] = PagedBody.max_limit
        return data
