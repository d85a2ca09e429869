"""The scheduler and late-runs services: plain functions with an explicit ``now``.

Both are idempotent and safe to run at the same time from several threads or processes:

- A deployment is scheduled when it is not paused, from each of its active schedules.
- Scheduled runs carry the idempotency key ``scheduled {deployment_id} {UTC ISO time}`` and
  are inserted with ``ON CONFLICT DO NOTHING`` on the (flow, idempotency_key) unique index, so
  overlapping schedulers never duplicate a run, and a run that left SCHEDULED (cancelled,
  completed) is never recreated. The key names no schedule, as in Prefect 2.20: two schedules
  of one deployment that give the same time make one run. On PostgreSQL each batch of
  deployments is locked with ``FOR UPDATE SKIP LOCKED``: two schedulers split the work, and a
  deployment being updated (which regenerates its own runs in its transaction) is left to
  that update.
- Late marking locks its batch the same way and re-checks, under the lock, that each run is
  still SCHEDULED and named "Scheduled"; a run is marked Late once. A Late state queues
  flow run notifications as any transition does; the scheduler's new Scheduled runs do not
  (as in Prefect, whose scheduler inserts them without orchestration).

SQLite needs no row locks: every write transaction holds the database lock (BEGIN IMMEDIATE).
"""

import datetime
import logging
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from peewee import JOIN, fn

from app.db import database, is_sqlite
from app.models import (
    Deployment,
    DeploymentSchedule,
    FlowRun,
    FlowRunState,
    notifications,
    statements,
    utcnow,
)
from app.models.rollups import mark_deleted_runs_stale
from app.schedules import ScheduleError, parse_schedule
from app.services.common import Id
from app.services.names import generate_run_name
from app.services.orchestration import OrchestrationResult, set_flow_run_state
from app.states import StateType

log = logging.getLogger(__name__)

UTC = datetime.UTC
# The least a new state's timestamp follows its predecessor's (as orchestration does).
_TICK = datetime.timedelta(microseconds=1)
AUTO_SCHEDULED_TAG = "auto-scheduled"
SCHEDULED = StateType.SCHEDULED.value
# A run's retry policy when nothing else is given (as FlowRunPolicySchema loads {}).
DEFAULT_FLOW_RUN_POLICY: dict[str, Any] = {
    "max_retries": 0,
    "retry_delay_seconds": 0.0,
    "retries": None,
    "retry_delay": None,
    "pause_keys": [],
    "resuming": False,
}


@dataclass(frozen=True)
class SchedulerSettings:
    """The scheduler's limits (ORION_SCHEDULER_* settings)."""

    min_runs: int = 3
    max_runs: int = 100
    min_scheduled_time: datetime.timedelta = datetime.timedelta(hours=1)
    max_scheduled_time: datetime.timedelta = datetime.timedelta(days=100)
    deployment_batch_size: int = 100
    insert_batch_size: int = 500

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "SchedulerSettings":
        """The settings from an Orion config mapping."""
        return cls(
            min_runs=config["SCHEDULER_MIN_RUNS"],
            max_runs=config["SCHEDULER_MAX_RUNS"],
            min_scheduled_time=datetime.timedelta(
                seconds=config["SCHEDULER_MIN_SCHEDULED_TIME_SECONDS"]
            ),
            max_scheduled_time=datetime.timedelta(
                seconds=config["SCHEDULER_MAX_SCHEDULED_TIME_SECONDS"]
            ),
            deployment_batch_size=config["SCHEDULER_DEPLOYMENT_BATCH_SIZE"],
            insert_batch_size=config["SCHEDULER_INSERT_BATCH_SIZE"],
        )


def idempotency_key(deployment_id: Id, date: datetime.datetime) -> str:
    """The idempotency key of the scheduled run of a deployment at ``date``."""
    return f"scheduled {deployment_id} {date.astimezone(UTC).isoformat()}"


def _lock_skipping(query: Any) -> Any:
    """Lock the selected rows, skipping rows another transaction holds (PostgreSQL)."""
    return query if is_sqlite() else query.for_update(skip_locked=True)


def schedule_dates(
    schedule: Mapping[str, Any],
    start: datetime.datetime,
    end: datetime.datetime,
    max_runs: int,
    min_runs: int | None = None,
    min_time: datetime.timedelta | None = None,
    taken: Collection[datetime.datetime] = (),
) -> list[datetime.datetime]:
    """The dates of a stored ``schedule`` from ``start`` to ``end``, at most ``max_runs``.

    With ``min_runs`` and ``min_time`` (a timedelta), generation stops at the first date
    that makes both true: at least ``min_runs`` dates, the last at least ``min_time`` after
    ``start``. Dates in ``taken`` (slots whose run exists but left SCHEDULED, e.g. was
    cancelled) are passed over and not counted. Raises ScheduleError for a schedule that
    cannot be used.
    """
    dates = []
    for date in parse_schedule(schedule).iter_dates(start, end):
        if date in taken:
            continue
        dates.append(date)
        if len(dates) >= max_runs:
            break
        if (
            min_runs is not None
            and min_time is not None
            and len(dates) >= min_runs
            and date >= start + min_time
        ):
            break
    return dates


def build_scheduled_runs(
    deployment: Any,
    dates: Iterable[datetime.datetime],
    now: datetime.datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows (run dicts, state dicts) of a deployment's auto-scheduled runs at ``dates``."""
    runs, states = [], []
    tags = [AUTO_SCHEDULED_TAG] + [t for t in deployment.tags if t != AUTO_SCHEDULED_TAG]
    for date in dates:
        date = date.astimezone(UTC)
        run_id, state_id = uuid.uuid4(), uuid.uuid4()
        runs.append(
            {
                "id": run_id,
                "created": now,
                "updated": now,
                "name": generate_run_name(),
                "tags": tags,
                "empirical_policy": DEFAULT_FLOW_RUN_POLICY,
                "state_id": state_id,
                "state_type": SCHEDULED,
                "state_name": "Scheduled",
                "state_timestamp": now,
                "run_count": 0,
                "expected_start_time": date,
                "next_scheduled_start_time": date,
                "start_time": None,
                "end_time": None,
                "total_run_time": 0.0,
                "flow": deployment.flow_id,
                "deployment": deployment.id,
                "work_queue_name": deployment.work_queue_name,
                "work_queue_id": deployment.work_queue_id,
                "flow_version": None,
                "parameters": deployment.parameters,
                "context": {},
                "idempotency_key": idempotency_key(deployment.id, date),
                "parent_task_run_id": None,
                "auto_scheduled": True,
                "infrastructure_document_id": deployment.infrastructure_document_id,
                "infrastructure_pid": None,
                "created_by": None,
                "deployment_version": deployment.version,
            }
        )
        states.append(
            {
                "id": state_id,
                "created": now,
                "updated": now,
                "flow_run": run_id,
                "type": SCHEDULED,
                "name": "Scheduled",
                "timestamp": now,
                "message": "Flow run scheduled",
                "data": None,
                "state_details": {"flow_run_id": str(run_id), "scheduled_time": date.isoformat()},
            }
        )
    return runs, states


def insert_scheduled_runs(
    runs: Sequence[dict[str, Any]], states: Sequence[dict[str, Any]], batch_size: int = 500
) -> int:
    """Insert runs (skipping any whose idempotency key exists) and the states of those that
    were new. Call inside a transaction. Returns how many runs were inserted."""
    inserted = 0
    for offset in range(0, len(runs), batch_size):
        batch = runs[offset : offset + batch_size]
        if statements.insert_rows(FlowRun, batch, ignore_conflict=True) == len(batch):
            new_states = states[offset : offset + batch_size]
        else:
            ids = [run["id"] for run in batch]
            new = {row[0] for row in FlowRun.select(FlowRun.id).where(FlowRun.id.in_(ids)).tuples()}
            new_states = [s for s in states[offset : offset + batch_size] if s["flow_run"] in new]
        statements.insert_rows(FlowRunState, new_states)
        inserted += len(new_states)
    return inserted


def delete_future_scheduled_runs(deployment_id: Id, now: datetime.datetime) -> int:
    """Delete a deployment's auto-scheduled runs still Scheduled for after ``now`` (their
    states go with them). Call inside the transaction that changes the deployment."""
    future = (
        (FlowRun.deployment == deployment_id)
        & (FlowRun.auto_scheduled == True)  # noqa: E712 (SQL, not Python)
        & (FlowRun.state_type == SCHEDULED)
        & (FlowRun.state_name == "Scheduled")
        & (FlowRun.next_scheduled_start_time > now)
    )
    mark_deleted_runs_stale(future)
    return FlowRun.delete().where(future).execute()


def _taken_slots(
    deployment_ids: Iterable[Id], now: datetime.datetime
) -> dict[Any, set[datetime.datetime]]:
    """Per deployment, the slots from ``now`` on whose auto-scheduled run left SCHEDULED."""
    taken: dict[Any, set[datetime.datetime]] = {}
    query = FlowRun.select(FlowRun.deployment, FlowRun.expected_start_time).where(
        FlowRun.deployment.in_(deployment_ids)
        & (FlowRun.auto_scheduled == True)  # noqa: E712
        & (FlowRun.state_type != SCHEDULED)
        & (FlowRun.expected_start_time >= now)
    )
    for deployment_id, when in query.tuples():
        taken.setdefault(deployment_id, set()).add(when)
    return taken


def active_schedules(deployment_ids: Iterable[Id]) -> dict[Any, list[Any]]:
    """Per deployment, its active schedules (as stored JSON), in the order they were added."""
    found: dict[Any, list[Any]] = {}
    query = (
        DeploymentSchedule.select(DeploymentSchedule.deployment, DeploymentSchedule.schedule)
        .where(
            DeploymentSchedule.deployment.in_(list(deployment_ids))
            & (DeploymentSchedule.active == True)  # noqa: E712
        )
        .order_by(DeploymentSchedule.created, DeploymentSchedule.id)
    )
    for deployment_id, schedule in query.tuples():
        found.setdefault(deployment_id, []).append(schedule)
    return found


def _dates_for(
    deployment: Any,
    schedules: Iterable[Mapping[str, Any]],
    now: datetime.datetime,
    settings: SchedulerSettings,
    taken: Mapping[Any, Collection[datetime.datetime]],
) -> list[datetime.datetime]:
    """The dates every schedule gives (each generated as the scheduler does), merged: a time
    two schedules share appears once."""
    dates: set[datetime.datetime] = set()
    for schedule in schedules:
        try:
            dates.update(
                schedule_dates(
                    schedule,
                    now,
                    now + settings.max_scheduled_time,
                    settings.max_runs,
                    settings.min_runs,
                    settings.min_scheduled_time,
                    taken.get(deployment.id, ()),
                )
            )
        except ScheduleError as error:
            log.error("deployment %s has an unusable schedule: %s", deployment.id, error)
    return sorted(dates)


def schedule_deployment_runs(
    deployment: Any, now: datetime.datetime, settings: SchedulerSettings
) -> int:
    """Insert the runs an unpaused deployment's active schedules ask for from ``now`` (those
    that do not exist yet). Call inside a transaction. Returns how many runs were inserted."""
    if deployment.paused:
        return 0
    schedules = active_schedules([deployment.id]).get(deployment.id)
    if not schedules:
        return 0
    taken = _taken_slots([deployment.id], now)
    runs, states = build_scheduled_runs(
        deployment, _dates_for(deployment, schedules, now, settings, taken), now
    )
    return insert_scheduled_runs(runs, states, settings.insert_batch_size)


def reschedule_deployment(
    deployment: Any, now: datetime.datetime, settings: SchedulerSettings
) -> int:
    """Replace a changed deployment's future Scheduled auto-scheduled runs with those its
    current schedules and fields give. Call inside the transaction that changed it, so no
    reader ever sees the deployment with neither its old nor its new runs."""
    delete_future_scheduled_runs(deployment.id, now)
    return schedule_deployment_runs(deployment, now, settings)


def _active_schedule_of(deployment_id: Any) -> Any:
    """A sub-query with a row when the deployment has an active schedule."""
    return DeploymentSchedule.select(DeploymentSchedule.id).where(
        (DeploymentSchedule.deployment == deployment_id) & (DeploymentSchedule.active == True)  # noqa: E712
    )


def _deployments_needing_runs(
    now: datetime.datetime, settings: SchedulerSettings, after: Id | None, limit: int
) -> list[Any]:
    """Ids of unpaused deployments with an active schedule (id > ``after``, in id order) with
    fewer than
    min_runs auto-scheduled runs SCHEDULED at or after ``now`` (where generation starts), or
    none reaching now + min_scheduled_time."""
    future = (
        FlowRun.select(
            FlowRun.deployment.alias("deployment_id"),
            fn.COUNT(FlowRun.id).alias("runs"),
            fn.MAX(FlowRun.next_scheduled_start_time).alias("latest"),
        )
        .where(
            (FlowRun.deployment.is_null(False))
            & (FlowRun.auto_scheduled == True)  # noqa: E712
            & (FlowRun.state_type == SCHEDULED)
            & (FlowRun.next_scheduled_start_time >= now)
        )
        .group_by(FlowRun.deployment)
        .alias("future")
    )
    horizon = FlowRun.next_scheduled_start_time.db_value(now + settings.min_scheduled_time)
    query = (
        Deployment.select(Deployment.id)
        .join(future, JOIN.LEFT_OUTER, on=(Deployment.id == future.c.deployment_id))
        .where(
            (Deployment.paused == False)  # noqa: E712
            & fn.EXISTS(_active_schedule_of(Deployment.id))
            & (
                future.c.runs.is_null()
                | (future.c.runs < settings.min_runs)
                | (future.c.latest < horizon)
            )
        )
        .order_by(Deployment.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Deployment.id > after)
    return [row[0] for row in query.tuples()]


def schedule_deployments(
    now: datetime.datetime | None = None, settings: SchedulerSettings = SchedulerSettings()
) -> int:
    """Give every unpaused deployment that needs runs the runs its active schedules ask for.

    A deployment needs runs when it has fewer than ``min_runs`` future auto-scheduled runs in
    SCHEDULED, or none at least ``min_scheduled_time`` ahead. Its dates are generated from
    ``now``: at most ``max_runs``, not beyond ``now + max_scheduled_time``, stopping once
    ``min_runs`` dates reach ``now + min_scheduled_time``. Deployments are handled in id
    order, ``deployment_batch_size`` per transaction. Returns how many runs were inserted.
    """
    now = now or utcnow()
    inserted, after = 0, None
    while True:
        ids = _deployments_needing_runs(now, settings, after, settings.deployment_batch_size)
        if not ids:
            return inserted
        with database.atomic():
            deployments = list(
                _lock_skipping(
                    Deployment.select()
                    .where(
                        Deployment.id.in_(ids) & (Deployment.paused == False)  # noqa: E712
                    )
                    .order_by(Deployment.id)
                )
            )
            ids_now = [d.id for d in deployments]
            taken = _taken_slots(ids_now, now)
            schedules = active_schedules(ids_now)
            runs, states = [], []
            for deployment in deployments:
                mine = schedules.get(deployment.id, ())
                dates = _dates_for(deployment, mine, now, settings, taken)
                new_runs, new_states = build_scheduled_runs(deployment, dates, now)
                runs += new_runs
                states += new_states
            inserted += insert_scheduled_runs(runs, states, settings.insert_batch_size)
        if len(ids) < settings.deployment_batch_size:
            return inserted
        after = ids[-1]


def mark_late_runs(
    now: datetime.datetime | None = None,
    late_after: datetime.timedelta = datetime.timedelta(seconds=5),
    batch_size: int = 400,
) -> int:
    """Mark runs Late that are still SCHEDULED and named "Scheduled" more than ``late_after``
    past their scheduled time.

    Each run gets what a forced orchestration to a "Late" SCHEDULED state keeping its
    scheduled time would give it (see :func:`_force_late`), ``batch_size`` runs per
    transaction, oldest first: a batch is locked, its state rows inserted and its runs'
    state columns updated with one statement each. Subflow runs (whose state is mirrored
    onto their parent task run) go through orchestration one by one. Returns how many runs
    were marked.
    """
    now = now or utcnow()
    cutoff = now - late_after
    marked = 0
    while True:
        with database.atomic():
            runs = list(
                _lock_skipping(
                    FlowRun.select(
                        FlowRun.id,
                        FlowRun.next_scheduled_start_time,
                        FlowRun.state_id,
                        FlowRun.state_timestamp,
                        FlowRun.parent_task_run_id,
                        FlowRun.tags,
                    )
                    .where(
                        (FlowRun.state_type == SCHEDULED)
                        & (FlowRun.state_name == "Scheduled")
                        & (FlowRun.next_scheduled_start_time <= cutoff)
                    )
                    .order_by(FlowRun.next_scheduled_start_time, FlowRun.id)
                    .limit(batch_size)
                )
            )
            plain = [r for r in runs if r.parent_task_run_id is None and r.state_id is not None]
            marked_now = _force_late(plain, utcnow())
            for run in runs:
                if run.parent_task_run_id is not None or run.state_id is None:
                    marked_now += _orchestrate_late(run).written
        marked += marked_now
        # A batch that marked nothing (every run refused) would be selected again forever.
        if len(runs) < batch_size or not marked_now:
            return marked


def _late_state(run: Any) -> dict[str, Any]:
    return {
        "type": SCHEDULED,
        "name": "Late",
        "message": None,
        "data": None,
        "state_details": {"scheduled_time": run.next_scheduled_start_time.isoformat()},
    }


def _orchestrate_late(run: Any) -> OrchestrationResult:
    """Force one locked run Late through orchestration (every rule and transform)."""
    return set_flow_run_state(run.id, _late_state(run), force=True)


def _force_late(runs: Sequence[Any], now: datetime.datetime) -> int:
    """Write, for locked runs SCHEDULED and named "Scheduled" that are not subflows and have
    a current state, exactly what :func:`_orchestrate_late` writes, in two statements.

    A forced flow transition applies no rules, only the global transforms: the new state
    gets a fresh id, the timestamp ``now`` (or a microsecond after the current state's, if
    that is not earlier) and the run id in its details; the run's state copy (id, type,
    name, timestamp), its next scheduled start time (the same) and ``updated`` change.
    SCHEDULED to SCHEDULED moves no start, end, run time, run count or expected start time.
    Returns how many runs were marked.
    """
    if not runs:
        return 0
    states, updates = [], []
    for run in runs:
        timestamp = now if now > run.state_timestamp else run.state_timestamp + _TICK
        late = _late_state(run)
        state_id = uuid.uuid4()
        states.append(
            {
                "id": state_id,
                "type": late["type"],
                "name": late["name"],
                "timestamp": timestamp,
                "message": None,
                "data": None,
                "state_details": {**late["state_details"], "flow_run_id": str(run.id)},
                "created": now,
                "updated": now,
                "flow_run": run.id,
            }
        )
        updates.append({"id": run.id, "state_id": state_id, "state_timestamp": timestamp})
    statements.insert_rows(FlowRunState, states)
    if notifications.any_active_policy():
        for run, state in zip(runs, states):
            notifications.queue_notifications(state["id"], state["name"], run.tags, now)
    return statements.update_rows(
        FlowRun,
        updates,
        ("state_id", "state_timestamp"),
        {"state_type": SCHEDULED, "state_name": "Late", "updated": now},
    )
