"""Deployments: upsert on (flow, name), reads, updates, schedules, runs from a deployment.

A change to anything a deployment's scheduled runs copy (schedule, active flag, parameters,
tags, work queue, infrastructure) replaces its future auto-scheduled runs still Scheduled in
the same transaction as the change (see ``scheduler.reschedule_deployment``); a new
deployment gets its first runs in the transaction that creates it. So its runs exist as soon
as the API answers, with or without the background services.
"""

import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.db import database, for_update
from app.exceptions import Conflict
from app.models import Deployment, Flow, FlowRun, utcnow
from app.models.rollups import mark_deleted_runs_stale
from app.schedules import ScheduleError
from app.services import filters, flow_runs, scheduler, work_pools
from app.services.common import Body, Id, get_or_raise, require_exists

# Fields a deployment's scheduled runs copy or depend on: changing one reschedules.
RUN_FIELDS = (
    "schedule",
    "is_schedule_active",
    "parameters",
    "tags",
    "work_queue_name",
    "work_queue_id",
    "infrastructure_document_id",
)
_DEFAULTS = {"is_schedule_active": True, "parameters": {}, "tags": [], "infra_overrides": {}}


def _run_fields(deployment: Deployment) -> tuple[Any, ...]:
    return tuple(getattr(deployment, name) for name in RUN_FIELDS)


def _apply(
    deployment: Deployment,
    changes: Mapping[str, Any],
    now: datetime.datetime,
    settings: scheduler.SchedulerSettings,
) -> None:
    """Write ``changes`` to a locked deployment row; reschedule if its runs are affected."""
    before = _run_fields(deployment)
    changes = work_pools.place_deployment(deployment, changes)
    for key, value in changes.items():
        setattr(deployment, key, value)
    if not changes:
        return
    deployment.save()
    if _run_fields(deployment) != before:
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
            values = work_pools.place_deployment(None, {**_DEFAULTS, **data})
            (
                Deployment.insert(
                    id=new_id, flow=flow_id, name=name, created=now, updated=now, **values
                )
                .on_conflict_ignore()
                .execute()
            )
            existing = for_update(Deployment.select().where(where)).get()
            if existing.id == new_id:
                scheduler.schedule_deployment_runs(existing, now, settings)
                return existing, True
        data.pop("created_by", None)
        _apply(existing, data, now, settings)
    return existing, False


def read_deployment(deployment_id: Id) -> Deployment:
    """The deployment with this id; ObjectNotFound if there is none."""
    return get_or_raise(
        Deployment.select().where(Deployment.id == deployment_id), "Deployment", deployment_id
    )


def read_deployment_by_name(flow_name: str, deployment_name: str) -> Deployment:
    """The deployment ``deployment_name`` of the flow ``flow_name``; ObjectNotFound if none."""
    query = (
        Deployment.select(Deployment)
        .join(Flow)
        .where((Flow.name == flow_name) & (Deployment.name == deployment_name))
    )
    return get_or_raise(query, "Deployment", repr(f"{flow_name}/{deployment_name}"))


def update_deployment(
    deployment_id: Id,
    changes: Mapping[str, Any],
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> None:
    """Apply a DeploymentUpdate (only the fields given); reschedules when runs are affected."""
    now = now or utcnow()
    with database.atomic():
        deployment = get_or_raise(
            for_update(Deployment.select().where(Deployment.id == deployment_id)),
            "Deployment",
            deployment_id,
        )
        _apply(deployment, dict(changes), now, settings)


def set_schedule_active(
    deployment_id: Id,
    active: bool,
    settings: scheduler.SchedulerSettings,
    now: datetime.datetime | None = None,
) -> None:
    """Resume (True) or pause (False) a deployment's schedule; pausing deletes its future
    auto-scheduled runs, resuming schedules them."""
    update_deployment(deployment_id, {"is_schedule_active": active}, settings, now)


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
    """Deployments matching a filter body (deployments/flows/flow_runs/task_runs), paged."""
    query = filters.apply_filters(Deployment.select(), Deployment, body)
    return list(filters.sort_and_page(query, Deployment, body))


def count_deployments(body: Body) -> int:
    """How many deployments match a filter body."""
    return filters.apply_filters(Deployment.select(), Deployment, body).count()


def _union(first: Iterable[Any], second: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys([*first, *second]))


def create_flow_run_from_deployment(deployment_id: Id, data: Mapping[str, Any]) -> tuple[Any, bool]:
    """Create a flow run of a deployment: its parameters overridden by ``data["parameters"]``,
    its tags plus ``data["tags"]``, its work queue and infrastructure unless given.

    ``data`` is a loaded DeploymentFlowRunCreate body (state default Pending; a Scheduled
    state may be in the future). Idempotent on the flow and ``idempotency_key``. Returns
    ``(run, created)``.
    """
    deployment = read_deployment(deployment_id)
    run = dict(data)
    run.update(
        flow_id=deployment.flow_id,
        deployment_id=deployment.id,
        parameters={**deployment.parameters, **data.get("parameters", {})},
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
    would be new. Conflict if the deployment has no schedule.
    """
    now = now or utcnow()
    deployment = read_deployment(deployment_id)
    if not deployment.schedule:
        raise Conflict(f"Deployment {deployment_id} has no schedule.")
    start = start_time or now
    end = end_time or start + settings.max_scheduled_time
    if min_runs is not None or min_time is not None:
        min_runs = min_runs or 0
        min_time = min_time or datetime.timedelta(0)
    try:
        dates = scheduler.schedule_dates(
            deployment.schedule, start, end, max_runs or settings.max_runs, min_runs, min_time
        )
    except ScheduleError as error:
        raise Conflict(f"Deployment {deployment_id} has an unusable schedule: {error}") from None
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
