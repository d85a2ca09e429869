"""Deployments: upsert on (flow, name), reads, updates, schedules, runs from a deployment.

A deployment has any number of schedules (``deployment_schedule`` rows, each active or not,
listed in the order they were added) and is ``paused`` or not (Prefect 2.20). A 0.8.4 client's
one ``schedule`` and ``is_schedule_active`` map onto them as Prefect 2.20 maps them: reading,
``schedule`` is the first schedule and ``is_schedule_active`` is ``not paused``; writing
``schedule`` replaces the schedules with that one, and ``is_schedule_active`` sets both
``paused`` and that schedule's ``active`` (see :func:`_schedule_changes`).

A change to anything a deployment's scheduled runs copy (schedules, paused, parameters, tags,
work queue, infrastructure) replaces its future auto-scheduled runs still Scheduled in the
same transaction as the change (see ``scheduler.reschedule_deployment``); a new deployment
gets its first runs in the transaction that creates it. So its runs exist as soon as the API
answers, with or without the background services. Prefect 2.20 deletes them and leaves the
new ones to its scheduler service: the runs it ends up with are the same.
"""

import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.db import database, for_update
from app.exceptions import Conflict, InvalidData, ObjectNotFound
from app.models import Deployment, DeploymentSchedule, Flow, FlowRun, utcnow
from app.models.rollups import mark_deleted_runs_stale
from app.schedules import ScheduleError
from app.services import filters, flow_runs, scheduler, work_pools
from app.services.common import Body, Id, get_or_raise, require_exists
from app.services.work_queues import due_runs

# Fields a deployment's scheduled runs copy or depend on: changing one reschedules.
RUN_FIELDS = (
    "paused",
    "parameters",
    "tags",
    "work_queue_name",
    "work_queue_id",
    "infrastructure_document_id",
)
_DEFAULTS = {"paused": False, "parameters": {}, "tags": [], "infra_overrides": {}}
# A schedule's fields besides the schedule itself, with their defaults.
SCHEDULE_DEFAULTS = {
    "active": True,
    "max_active_runs": None,
    "max_scheduled_runs": None,
    "catchup": False,
}
_MULTIPLE = (
    "Deployment {} has {} schedules: `schedule` and `is_schedule_active` set only a "
    "deployment's one schedule. Change its schedules with `schedules` or "
    "/api/deployments/{{id}}/schedules."
)


def _run_fields(deployment: Deployment) -> tuple[Any, ...]:
    return tuple(getattr(deployment, name) for name in RUN_FIELDS)


def read_schedules(deployment_ids: Iterable[Id]) -> dict[Any, list[Any]]:
    """Per deployment id, its schedule rows in the order they were added."""
    found: dict[Any, list[Any]] = {}
    query = (
        DeploymentSchedule.select()
        .where(DeploymentSchedule.deployment.in_(list(deployment_ids)))
        .order_by(DeploymentSchedule.created, DeploymentSchedule.id)
    )
    for row in query:
        found.setdefault(row.deployment_id, []).append(row)
    return found


def with_schedules(deployments: list[Any]) -> list[Any]:
    """Give each deployment row its schedules as ``schedule_rows`` (one query), as the API
    and the dashboard show them; returns the list."""
    schedules = read_schedules([d.id for d in deployments])
    for deployment in deployments:
        deployment.schedule_rows = schedules.get(deployment.id, [])
    return deployments


def _schedule_changes(
    data: dict[str, Any], existing: Any | None, schedule_count: int
) -> tuple[list[dict[str, Any]] | None, bool | None]:
    """Take the schedule fields out of a loaded create or update body: ``(schedules, paused)``,
    either None when unchanged. ``existing`` is the deployment being changed (None when new),
    with ``schedule_rows``; ``schedule_count`` how many schedules it has.

    As Prefect 2.20: ``schedules`` replaces the schedules, and when it holds any, the 0.8.4
    fields say nothing of them (2.20's clients send ``"schedule": null`` beside them). Else a
    0.8.4 ``schedule`` replaces them with that one (``None``: with none), active as
    ``is_schedule_active`` (default: not paused); on an update, ``is_schedule_active`` alone
    sets the one schedule's ``active``, and either field is refused (422) for a deployment
    with several schedules. ``paused``, or else ``not is_schedule_active``, sets ``paused``.
    """
    schedules = data.pop("schedules", None)
    has_schedule, schedule = "schedule" in data, data.pop("schedule", None)
    active = data.pop("is_schedule_active", None)
    paused = data.pop("paused", None)
    if schedules:
        pass
    elif existing is None:
        if schedule is not None:
            schedules = [{"schedule": schedule, "active": True if active is None else active}]
        elif schedules is None and has_schedule:
            schedules = []
    elif has_schedule or active is not None:
        if schedule_count > 1:
            raise InvalidData(
                _MULTIPLE.format(existing.id, schedule_count),
                ["body", "schedule" if has_schedule else "is_schedule_active"],
            )
        if not has_schedule:
            schedule = existing.schedule_rows[0].schedule if existing.schedule_rows else None
        if active is None:
            active = not existing.paused
        schedules = [] if schedule is None else [{"schedule": schedule, "active": active}]
    if paused is None and active is not None:
        paused = not active
    return schedules, paused


def _replace_schedules(
    deployment_id: Id, schedules: Iterable[Mapping[str, Any]], now: datetime.datetime
) -> list[Any]:
    """Delete a deployment's schedules and add ``schedules`` in their place (in a
    transaction)."""
    DeploymentSchedule.delete().where(DeploymentSchedule.deployment == deployment_id).execute()
    return _add_schedules(deployment_id, schedules, now)


def _add_schedules(
    deployment_id: Id, schedules: Iterable[Mapping[str, Any]], now: datetime.datetime
) -> list[Any]:
    """Insert schedules of a deployment, stamped a microsecond apart so they list in the
    order given. Returns the rows."""
    rows = []
    for offset, schedule in enumerate(schedules):
        stamp = now + datetime.timedelta(microseconds=offset)
        values = {**SCHEDULE_DEFAULTS, **schedule}
        rows.append(
            DeploymentSchedule.create(
                id=uuid.uuid4(), deployment=deployment_id, created=stamp, updated=stamp, **values
            )
        )
    return rows


def _same_schedules(rows: Iterable[Any], schedules: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``schedules`` are the stored ``rows`` again (a form saved twice changes
    nothing, and keeps the runs it scheduled)."""
    rows, wanted = list(rows), [{**SCHEDULE_DEFAULTS, **schedule} for schedule in schedules]
    return len(rows) == len(wanted) and all(
        {key: getattr(row, key) for key in want} == want for row, want in zip(rows, wanted)
    )


def _check_defaults(deployment: Any) -> None:
    """A deployment that enforces its parameter schema must have parameters that match it
    (required ones may be left to its runs), as Prefect 2.20 checks on create and update."""
    if deployment.enforce_parameter_schema and isinstance(
        deployment.parameter_openapi_schema, dict
    ):
        check_parameters(deployment, deployment.parameters, partial=True)


def _apply(
    deployment: Deployment,
    changes: Mapping[str, Any],
    now: datetime.datetime,
    settings: scheduler.SchedulerSettings,
) -> None:
    """Write ``changes`` to a locked deployment row (with its ``schedule_rows``); reschedule if
    its runs are affected."""
    changes = dict(changes)
    schedules, paused = _schedule_changes(changes, deployment, len(deployment.schedule_rows))
    if paused is not None:
        changes["paused"] = paused
    before = _run_fields(deployment)
    changes = work_pools.place_deployment(deployment, changes)
    for key, value in changes.items():
        setattr(deployment, key, value)
    if not changes and schedules is None:
        return
    if {"parameters", "enforce_parameter_schema", "parameter_openapi_schema"} & set(changes):
        _check_defaults(deployment)
    if schedules is not None and _same_schedules(deployment.schedule_rows, schedules):
        schedules = None
    deployment.save()
    if schedules is not None:
        deployment.schedule_rows = _replace_schedules(deployment.id, schedules, now)
    if schedules is not None or _run_fields(deployment) != before:
        scheduler.reschedule_deployment(deployment, now, settings)


def create_deployment(
    data: Mapping[str, Any],
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> tuple[Deployment, bool]:
    """Create a deployment, or update the one with the same flow and name (fields given).

    ``data`` is a loaded DeploymentCreate body. Returns ``(deployment, created)``.
    """
    now = now or utcnow()
    data = dict(data)
    flow_id, name = data.pop("flow_id"), data.pop("name")
    where = (Deployment.flow == flow_id) & (Deployment.name == name)
    with database.atomic():
        require_exists(Flow, flow_id, "Flow")
        existing = for_update(Deployment.select().where(where)).first()
        if existing is None:
            new_id = uuid.uuid4()
            values = dict(data)
            schedules, paused = _schedule_changes(values, None, 0)
            values = work_pools.place_deployment(None, {**_DEFAULTS, **values})
            if paused is not None:
                values["paused"] = paused
            (
                Deployment.insert(
                    id=new_id, flow=flow_id, name=name, created=now, updated=now, **values
                )
                .on_conflict_ignore()
                .execute()
            )
            existing = for_update(Deployment.select().where(where)).get()
            if existing.id == new_id:
                _check_defaults(existing)
                existing.schedule_rows = _add_schedules(new_id, schedules or (), now)
                scheduler.schedule_deployment_runs(existing, now, settings)
                return existing, True
        with_schedules([existing])
        data.pop("created_by", None)
        _apply(existing, data, now, settings)
    return existing, False


def read_deployment(deployment_id: Id) -> Deployment:
    """The deployment with this id (with its ``schedule_rows``); ObjectNotFound if none."""
    deployment = get_or_raise(
        Deployment.select().where(Deployment.id == deployment_id), "Deployment", deployment_id
    )
    return with_schedules([deployment])[0]


def read_deployment_by_name(flow_name: str, deployment_name: str) -> Deployment:
    """The deployment ``deployment_name`` of the flow ``flow_name``; ObjectNotFound if none."""
    query = (
        Deployment.select(Deployment)
        .join(Flow)
        .where((Flow.name == flow_name) & (Deployment.name == deployment_name))
    )
    deployment = get_or_raise(query, "Deployment", repr(f"{flow_name}/{deployment_name}"))
    return with_schedules([deployment])[0]


def update_deployment(
    deployment_id: Id,
    changes: Mapping[str, Any],
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> None:
    """Apply a DeploymentUpdate (only the fields given); reschedules when runs are affected."""
    now = now or utcnow()
    with database.atomic():
        deployment = _lock(deployment_id)
        _apply(deployment, dict(changes), now, settings)


def _lock(deployment_id: Id) -> Any:
    """The deployment, locked until the transaction ends, with its ``schedule_rows``."""
    deployment = get_or_raise(
        for_update(Deployment.select().where(Deployment.id == deployment_id)),
        "Deployment",
        deployment_id,
    )
    return with_schedules([deployment])[0]


def set_paused(
    deployment_id: Id,
    paused: bool,
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> None:
    """Pause or resume a deployment; pausing deletes its future auto-scheduled runs, resuming
    schedules them. A deployment's one schedule follows (active when resumed), as Prefect
    2.20 keeps a 0.8.4 client's ``is_schedule_active`` and the schedule in step; several
    schedules keep their own flags (Prefect 2.20 refuses to pause such a deployment)."""
    now = now or utcnow()
    with database.atomic():
        deployment = _lock(deployment_id)
        rows = deployment.schedule_rows
        one_follows = len(rows) == 1 and rows[0].active == paused
        if one_follows:
            _update_schedule_row(rows[0], {"active": not paused}, now)
        if one_follows or deployment.paused != paused:
            deployment.paused = paused
            deployment.save()
            scheduler.reschedule_deployment(deployment, now, settings)


def _update_schedule_row(row: Any, changes: Mapping[str, Any], now: datetime.datetime) -> None:
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated = now
    DeploymentSchedule.update(updated=now, **changes).where(
        DeploymentSchedule.id == row.id
    ).execute()


def read_deployment_schedules(deployment_id: Id) -> list[Any]:
    """A deployment's schedules in the order they were added; ObjectNotFound if it does not
    exist."""
    return read_deployment(deployment_id).schedule_rows


def create_deployment_schedules(
    deployment_id: Id,
    schedules: Iterable[Mapping[str, Any]],
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> list[Any]:
    """Add schedules (loaded DeploymentScheduleCreate bodies) to a deployment, after its
    others; its runs are rescheduled. Returns the new rows."""
    now = now or utcnow()
    with database.atomic():
        deployment = _lock(deployment_id)
        rows = _add_schedules(deployment.id, schedules, now)
        deployment.schedule_rows += rows
        scheduler.reschedule_deployment(deployment, now, settings)
    return rows


def _schedule_of(deployment: Any, schedule_id: Id) -> Any:
    for row in deployment.schedule_rows:
        if str(row.id) == str(schedule_id):
            return row
    raise ObjectNotFound(f"Schedule {schedule_id} of deployment {deployment.id} not found.")


def update_deployment_schedule(
    deployment_id: Id,
    schedule_id: Id,
    changes: Mapping[str, Any],
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> None:
    """Change one of a deployment's schedules (a loaded DeploymentScheduleUpdate: the fields
    given); its future auto-scheduled runs are replaced by those its schedules now give.
    ObjectNotFound for an unknown deployment or a schedule that is not the deployment's."""
    now = now or utcnow()
    with database.atomic():
        deployment = _lock(deployment_id)
        _update_schedule_row(_schedule_of(deployment, schedule_id), changes, now)
        scheduler.reschedule_deployment(deployment, now, settings)


def delete_deployment_schedule(
    deployment_id: Id,
    schedule_id: Id,
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> None:
    """Delete one of a deployment's schedules; its future auto-scheduled runs are replaced by
    those its other schedules give. ObjectNotFound as for an update."""
    now = now or utcnow()
    with database.atomic():
        deployment = _lock(deployment_id)
        row = _schedule_of(deployment, schedule_id)
        DeploymentSchedule.delete().where(DeploymentSchedule.id == row.id).execute()
        deployment.schedule_rows.remove(row)
        scheduler.reschedule_deployment(deployment, now, settings)


def delete_deployment(deployment_id: Id, now: datetime.datetime | None = None) -> None:
    """Delete a deployment and its runs SCHEDULED for the future that never started (nothing
    could run them); its other runs stay, without a deployment. A run waiting to retry
    (AwaitingRetry) has started, and its engine may still be waiting for it: it stays."""
    now = now or utcnow()
    never_started = (
        (FlowRun.deployment == deployment_id)
        & (FlowRun.state_type == scheduler.SCHEDULED)
        & (FlowRun.run_count == 0)
        & (FlowRun.next_scheduled_start_time > now)
    )
    with database.atomic():
        mark_deleted_runs_stale(never_started)
        FlowRun.delete().where(never_started).execute()
        deleted = Deployment.delete().where(Deployment.id == deployment_id).execute()
    if not deleted:
        read_deployment(deployment_id)


def read_deployments(body: Body) -> list[Deployment]:
    """Deployments matching a filter body (deployments/flows/flow_runs/task_runs), paged,
    with their schedules and their pools' names loaded (three queries for the page)."""
    query = filters.apply_filters(Deployment.select(), Deployment, body)
    found = list(filters.sort_and_page(query, Deployment, body))
    return Deployment.load_work_pool_names(with_schedules(found))


def count_deployments(body: Body) -> int:
    """How many deployments match a filter body."""
    return filters.apply_filters(Deployment.select(), Deployment, body).count()


def _union(first: Iterable[Any], second: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys([*first, *second]))


def create_flow_run_from_deployment(deployment_id: Id, data: Mapping[str, Any]) -> tuple[Any, bool]:
    """Create a flow run of a deployment: its parameters overridden by ``data["parameters"]``,
    its tags plus ``data["tags"]``, its work queue and infrastructure unless given.

    ``data`` is a loaded DeploymentFlowRunCreate body (state default Pending; a Scheduled
    state may be in the future). With the deployment's ``enforce_parameter_schema`` (or the
    body's, which wins) the merged parameters must match its ``parameter_openapi_schema``
    (see :func:`check_parameters`). The run's own ``job_variables`` must suit the template
    of the deployment's work pool. Idempotent on the flow and ``idempotency_key``. Returns
    ``(run, created)``.
    """
    deployment = read_deployment(deployment_id)
    run = dict(data)
    parameters = {**deployment.parameters, **data.get("parameters", {})}
    enforce = run.pop("enforce_parameter_schema", None)
    if deployment.enforce_parameter_schema if enforce is None else enforce:
        check_parameters(deployment, parameters)
    work_pools.check_queue_job_variables(deployment.work_queue_id, data.get("job_variables"))
    run.update(
        deployment_version=deployment.version,
        flow_id=deployment.flow_id,
        deployment_id=deployment.id,
        parameters=parameters,
        tags=_union(deployment.tags, data.get("tags", [])),
        work_queue_name=data.get("work_queue_name") or deployment.work_queue_name,
        # A queue named other than the deployment's is the agents' pool's, by name.
        work_queue_id=(
            deployment.work_queue_id
            if data.get("work_queue_name") in (None, deployment.work_queue_name)
            else None
        ),
        infrastructure_document_id=(
            data.get("infrastructure_document_id") or deployment.infrastructure_document_id
        ),
    )
    return flow_runs.create_flow_run(run)


def check_parameters(deployment: Any, parameters: Mapping[str, Any], partial: bool = False) -> None:
    """Check a run's parameters against the deployment's ``parameter_openapi_schema``.

    InvalidData (422, at ``body.parameters.<name>``) naming the first parameter that is
    missing or does not match, and the rule it breaks (never its value); Conflict if the
    deployment has no usable schema to check against (as Prefect 2.20). ``partial`` (a
    deployment's own defaults, which a run may complete) lets required parameters be
    missing.
    """
    schema = deployment.parameter_openapi_schema
    if not isinstance(schema, dict):
        raise Conflict(
            f"Deployment {deployment.id} enforces its parameter schema but has none "
            "(parameter_openapi_schema)."
        )
    import jsonschema  # on first use: app/services/__init__.py says why

    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    try:
        validator_class.check_schema(schema)
        errors = sorted(
            (
                error
                for error in validator_class(schema).iter_errors(dict(parameters))
                if not (partial and error.validator == "required")
            ),
            key=lambda e: [str(p) for p in e.absolute_path],
        )
    except (jsonschema.SchemaError, jsonschema.exceptions.RefResolutionError, RecursionError):
        raise Conflict(
            f"Deployment {deployment.id} has a parameter schema that cannot be used."
        ) from None
    if not errors:
        return
    error = errors[0]
    if error.validator == "required" and not error.absolute_path:
        missing = [name for name in error.validator_value if name not in parameters]
        name = missing[0] if missing else str(error.validator_value)
        raise InvalidData(
            f"Parameter {name!r} is required by the deployment's parameter schema.",
            ["body", "parameters", name],
        )
    path = [str(part) for part in error.absolute_path]
    rule = f"{error.validator}: {error.validator_value!r}" if error.validator != "$ref" else ""
    raise InvalidData(
        f"Parameter {path[0]!r} does not match the deployment's parameter schema"
        + (f" at {'.'.join(path[1:])!r}" if len(path) > 1 else "")
        + (f" ({rule})." if rule else "."),
        ["body", "parameters", *path],
    )


def get_scheduled_flow_runs(
    deployment_ids: Iterable[Id],
    scheduled_before: datetime.datetime | None = None,
    limit: int | None = None,
    now: datetime.datetime | None = None,
    record_poll: bool = True,
) -> list[Any]:
    """The SCHEDULED runs of these deployments due by ``scheduled_before`` (default now),
    earliest first, at most ``limit``: what Prefect 2.20's ``flow.serve()`` runner polls
    for. Handed out as agents' runs are (see ``work_queues.due_runs``), so two runners never
    both start a run. ``record_poll`` stamps the deployments' ``last_polled``."""
    now = now or utcnow()
    deployment_ids = list(deployment_ids)
    with database.atomic():
        if record_poll and deployment_ids:
            Deployment.update(last_polled=now).where(Deployment.id.in_(deployment_ids)).execute()
        return due_runs(
            FlowRun.deployment.in_(deployment_ids), scheduled_before or now, limit, record_poll
        )


@dataclass
class ScheduleResult:
    """What :func:`schedule_range` scheduled: every date, and how many runs were new."""

    dry_run: bool
    dates: list
    created: int
    existing: int


def schedule_range(
    deployment_id: Id,
    settings: scheduler.SchedulerSettings,
    start_time: datetime.datetime | None = None,
    end_time: datetime.datetime | None = None,
    min_time: datetime.timedelta | None = None,
    min_runs: int | None = None,
    max_runs: int | None = None,
    dry_run: bool = False,
    now: datetime.datetime | None = None,
) -> ScheduleResult:
    """Schedule a deployment's runs for an explicit range (a backfill, past or future).

    Every slot of its schedule from ``start_time`` (default ``now``) to ``end_time``
    (default start + max_scheduled_time), at most ``max_runs`` (default the scheduler's); with
    ``min_runs`` and/or ``min_time`` (a timedelta) it stops early as the scheduler does.
    Runs are the same auto-scheduled runs the scheduler makes (same idempotency keys), so a
    range never duplicates what exists. ``dry_run`` writes nothing and reports how many runs
    would be new. Every active schedule of the deployment counts (paused or not, as in
    Prefect 2.20); a time two schedules share is one run. Conflict if the deployment has no
    active schedule.
    """
    now = now or utcnow()
    deployment = read_deployment(deployment_id)
    schedules = [row.schedule for row in deployment.schedule_rows if row.active]
    if not schedules:
        raise Conflict(f"Deployment {deployment_id} has no active schedule.")
    start = start_time or now
    end = end_time or start + settings.max_scheduled_time
    if min_runs is not None or min_time is not None:
        min_runs = min_runs or 0
        min_time = min_time or datetime.timedelta(0)
    found: set[datetime.datetime] = set()
    for schedule in schedules:
        try:
            found.update(
                scheduler.schedule_dates(
                    schedule, start, end, max_runs or settings.max_runs, min_runs, min_time
                )
            )
        except ScheduleError as error:
            raise Conflict(
                f"Deployment {deployment_id} has an unusable schedule: {error}"
            ) from None
    dates = sorted(found)[: max_runs or settings.max_runs]
    runs, states = scheduler.build_scheduled_runs(deployment, dates, now)
    if dry_run:
        keys = [run["idempotency_key"] for run in runs]
        existing = 0
        for offset in range(0, len(keys), settings.insert_batch_size):
            batch = keys[offset : offset + settings.insert_batch_size]
            existing += (
                FlowRun.select()
                .where((FlowRun.flow == deployment.flow_id) & FlowRun.idempotency_key.in_(batch))
                .count()
            )
        return ScheduleResult(True, dates, len(dates) - existing, existing)
    created = 0
    for offset in range(0, len(runs), settings.insert_batch_size):
        end_offset = offset + settings.insert_batch_size
        with database.atomic():
            created += scheduler.insert_scheduled_runs(
                runs[offset:end_offset], states[offset:end_offset], settings.insert_batch_size
            )
    return ScheduleResult(False, dates, created, len(dates) - created)
