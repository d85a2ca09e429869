"""Reads behind the dashboard pages: one bounded, indexed query per widget.

Every function returns plain values or read rows (see ``app.services.runs.fetch_runs``) and
never loops over runs issuing queries: counts are grouped in the database, lists carry a
``limit``. Time windows are on a run's expected start time (indexed), the time the history
chart buckets by, so the counts and the chart of one window agree.
"""

import datetime
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from peewee import fn

from app.models import (
    ConcurrencyLimit,
    ConcurrencySlot,
    Deployment,
    Flow,
    FlowRun,
    FlowRunState,
    Log,
    TaskRun,
    utcnow,
)
from app.models.runs import state_type_in
from app.schedules import ScheduleError, parse_schedule
from app.services.common import Id, require_exists
from app.services.runs import fetch_columns, fetch_runs, with_state
from app.states import StateType

_FAILED = (StateType.FAILED.value, StateType.CRASHED.value)


def _runs(query: Any) -> list[Any]:
    return fetch_runs(query, FlowRun, FlowRunState)


def late_runs(limit: int, now: datetime.datetime | None = None) -> list[Any]:
    """Scheduled flow runs whose scheduled time has passed, most overdue first (at most
    ``limit``). This includes runs the late-runs service renamed "Late"."""
    now = now or utcnow()
    return _runs(
        with_state(FlowRun, FlowRunState)
        .where(
            (FlowRun.state_type == StateType.SCHEDULED.value)
            & (FlowRun.next_scheduled_start_time < now)
        )
        .order_by(FlowRun.next_scheduled_start_time, FlowRun.id)
        .limit(limit)
    )


def upcoming_runs(limit: int, now: datetime.datetime | None = None) -> list[Any]:
    """Scheduled flow runs due from ``now`` on, soonest first (at most ``limit``)."""
    now = now or utcnow()
    return _runs(
        with_state(FlowRun, FlowRunState)
        .where(
            (FlowRun.state_type == StateType.SCHEDULED.value)
            & (FlowRun.next_scheduled_start_time >= now)
        )
        .order_by(FlowRun.next_scheduled_start_time, FlowRun.id)
        .limit(limit)
    )


def failed_runs(start: datetime.datetime, end: datetime.datetime, limit: int) -> list[Any]:
    """Failed and crashed flow runs expected to start in ``[start, end)``, the latest
    expected start first (at most ``limit``; the order the start time index serves)."""
    return _runs(
        with_state(FlowRun, FlowRunState)
        .where(
            state_type_in(FlowRun.state_type, _FAILED)
            & (FlowRun.expected_start_time >= start)
            & (FlowRun.expected_start_time < end)
        )
        .order_by(FlowRun.expected_start_time.desc(), FlowRun.id.desc())
        .limit(limit)
    )


def busy_concurrency_limits(
    limit: int, now: datetime.datetime | None = None
) -> list[tuple[Any, int]]:
    """``[(limit row, active slots)]`` for the limits with at least one unexpired lease, the
    fullest first (at most ``limit``); one grouped query."""
    now = now or utcnow()
    active = fn.COUNT(ConcurrencySlot.id)
    query = (
        ConcurrencyLimit.select(ConcurrencyLimit, active.alias("active"))
        .join(ConcurrencySlot, on=(ConcurrencySlot.limit == ConcurrencyLimit.id))
        .where(ConcurrencySlot.expires > now)
        .group_by(ConcurrencyLimit.id)
        .order_by(active.desc(), ConcurrencyLimit.tag)
        .limit(limit)
    )
    return [(row, row.active) for row in query]


def flow_names(flow_ids: Iterable[Id]) -> dict[str, str]:
    """``{flow id: name}`` for the given flow ids, in one query."""
    ids = list(set(flow_ids))
    if not ids:
        return {}
    return {
        str(flow_id): name
        for flow_id, name in Flow.select(Flow.id, Flow.name).where(Flow.id.in_(ids)).tuples()
    }


def flow_run_names(flow_run_ids: Iterable[Id | None]) -> dict[str, str]:
    """``{flow run id: name}`` for the given flow run ids (None ignored), in one query."""
    ids = list({str(run_id) for run_id in flow_run_ids if run_id})
    if not ids:
        return {}
    return {
        str(run_id): name
        for run_id, name in FlowRun.select(FlowRun.id, FlowRun.name)
        .where(FlowRun.id.in_(ids))
        .tuples()
    }


def task_run_names(task_run_ids: Iterable[Id]) -> dict[str, str]:
    """``{task run id: name}`` for the given task run ids, in one query."""
    ids = list({str(run_id) for run_id in task_run_ids})
    if not ids:
        return {}
    return {
        str(run_id): name
        for run_id, name in TaskRun.select(TaskRun.id, TaskRun.name)
        .where(TaskRun.id.in_(ids))
        .tuples()
    }


def flow_choices(limit: int) -> list[tuple[str, str]]:
    """``[(id, name)]`` of the first ``limit`` flows by name (the flow runs filter's list)."""
    return [
        (str(flow_id), name)
        for flow_id, name in Flow.select(Flow.id, Flow.name)
        .order_by(Flow.name)
        .limit(limit)
        .tuples()
    ]


def _run_counts_by(
    column: Any, ids: Iterable[Id | None], since: datetime.datetime, until: datetime.datetime
) -> dict[str, dict[str, int]]:
    """``{id: {state type: count}}`` of the runs whose ``column`` is one of ``ids``, expected
    to start in ``[since, until)``; one grouped query. (Bounded on both sides: runs scheduled
    ahead can outnumber a day of past runs many times over.)"""
    counts: dict[str, dict[str, int]] = {str(i): {} for i in ids}
    if not counts:
        return counts
    rows = (
        FlowRun.select(column, FlowRun.state_type, fn.COUNT(FlowRun.id))
        .where(
            column.in_(list(counts))
            & (FlowRun.expected_start_time >= since)
            & (FlowRun.expected_start_time < until)
            & FlowRun.state_type.is_null(False)
        )
        .group_by(column, FlowRun.state_type)
        .tuples()
    )
    for key, state_type, count in rows:
        counts[str(key)][state_type] = count
    return counts


def run_counts_by_flow(
    flow_ids: Iterable[Id], since: datetime.datetime, until: datetime.datetime
) -> dict[str, dict[str, int]]:
    """Run counts by state of the given flows' runs expected in ``[since, until)``
    (see :func:`_run_counts_by`)."""
    return _run_counts_by(FlowRun.flow, flow_ids, since, until)


def deployment_names(deployment_ids: Iterable[Id | None]) -> dict[str, str]:
    """``{deployment id: name}`` for the given deployment ids (None skipped), in one query."""
    ids = list({str(i) for i in deployment_ids if i is not None})
    if not ids:
        return {}
    return {
        str(deployment_id): name
        for deployment_id, name in Deployment.select(Deployment.id, Deployment.name)
        .where(Deployment.id.in_(ids))
        .tuples()
    }


def run_counts_by_deployment(
    deployment_ids: Iterable[Id | None], since: datetime.datetime, until: datetime.datetime
) -> dict[str, dict[str, int]]:
    """Run counts by state of the given deployments' runs expected in ``[since, until)``
    (see :func:`_run_counts_by`)."""
    return _run_counts_by(FlowRun.deployment, deployment_ids, since, until)


def last_runs_of_deployments(
    deployment_ids: Iterable[Id], before: datetime.datetime
) -> dict[str, Any]:
    """``{deployment id: its last run}``: of each deployment's runs expected to start before
    ``before``, the latest (as the deployment page's recent runs list it first), with its
    state; deployments without one are left out. One query for the whole list: a correlated
    subquery picks each deployment's latest run id by the ``(deployment_id,
    expected_start_time)`` index."""
    ids = list({str(i) for i in deployment_ids})
    if not ids:
        return {}
    latest = FlowRun.alias("latest")
    latest_id = (
        latest.select(latest.id)
        .where((latest.deployment == Deployment.id) & (latest.expected_start_time < before))
        .order_by(latest.expected_start_time.desc(), latest.id.desc())
        .limit(1)
    )
    last_ids = Deployment.select(latest_id).where(Deployment.id.in_(ids))
    runs = _runs(with_state(FlowRun, FlowRunState).where(FlowRun.id.in_(last_ids)))
    return {str(run.deployment_id): run for run in runs}


def next_run_times(
    schedule: Mapping[str, Any] | None, count: int, now: datetime.datetime | None = None
) -> list[datetime.datetime]:
    """The next ``count`` times (UTC) of a deployment's stored schedule from ``now``, from
    the schedule itself (runs not yet created included); [] without a usable schedule."""
    if not schedule:
        return []
    try:
        dates = parse_schedule(schedule).get_dates(count, start=now or utcnow())
    except ScheduleError:
        return []
    return [date.astimezone(datetime.UTC) for date in dates]


def recent_runs_of_deployment(
    deployment_id: Id, before: datetime.datetime, limit: int
) -> list[Any]:
    """The runs of a deployment expected to start before ``before``, the latest first (at
    most ``limit``), with states."""
    return _runs(
        with_state(FlowRun, FlowRunState)
        .where((FlowRun.deployment == deployment_id) & (FlowRun.expected_start_time < before))
        .order_by(FlowRun.expected_start_time.desc(), FlowRun.id.desc())
        .limit(limit)
    )


def scheduled_runs_of_deployment(
    deployment_id: Id, since: datetime.datetime, limit: int
) -> list[Any]:
    """The Scheduled runs of a deployment due from ``since`` on, soonest first (at most
    ``limit``)."""
    return _runs(
        with_state(FlowRun, FlowRunState)
        .where(
            (FlowRun.deployment == deployment_id)
            & (FlowRun.state_type == StateType.SCHEDULED.value)
            & (FlowRun.next_scheduled_start_time >= since)
        )
        .order_by(FlowRun.next_scheduled_start_time, FlowRun.id)
        .limit(limit)
    )


# What a flow run's page shows of each of its task runs (timeline and radar).
_TIMELINE_FIELDS = (
    TaskRun.id,
    TaskRun.name,
    TaskRun.task_key,
    TaskRun.task_inputs,
    TaskRun.state_type,
    TaskRun.state_name,
    TaskRun.state_timestamp,
    TaskRun.start_time,
    TaskRun.end_time,
    TaskRun.total_run_time,
)


def task_runs_of(
    flow_run_id: Id, limit: int, updated_since: datetime.datetime | None = None
) -> list[Any]:
    """The first ``limit`` task runs of a flow run in expected start order, with what its
    page shows of them (``id``, ``name``, ``task_key``, ``task_inputs``, the ``state_*``
    columns, ``start_time``, ``end_time``, ``total_run_time``; no state row), as read rows;
    only those updated at or after ``updated_since`` when given. ObjectNotFound if the flow
    run does not exist."""
    require_exists(FlowRun, flow_run_id, "Flow run")
    condition = TaskRun.flow_run == flow_run_id
    if updated_since is not None:
        condition &= TaskRun.updated >= updated_since
    return fetch_columns(
        TaskRun.select()
        .where(condition)
        .order_by(TaskRun.expected_start_time, TaskRun.id)
        .limit(limit),
        _TIMELINE_FIELDS,
    )


def task_run_state_counts(flow_run_id: Id) -> dict[str, int]:
    """``{state type: count}`` of all the task runs of a flow run (one grouped query)."""
    return {
        state_type or StateType.PENDING.value: count
        for state_type, count in (
            TaskRun.select(TaskRun.state_type, fn.COUNT(TaskRun.id))
            .where(TaskRun.flow_run == flow_run_id)
            .group_by(TaskRun.state_type)
            .tuples()
        )
    }


def task_runs_mark(flow_run_id: Id) -> tuple[int, datetime.datetime | None]:
    """``(count, newest updated)`` of a flow run's task runs: changes whenever one is created
    or changes state (one aggregate query on the flow run's index)."""
    return (
        TaskRun.select(fn.COUNT(TaskRun.id), fn.MAX(TaskRun.updated))
        .where(TaskRun.flow_run == flow_run_id)
        .tuples()
        .first()
    )


def logs_mark(flow_run_id: Id, min_level: int = 0) -> tuple[int, datetime.datetime | None]:
    """``(count, newest timestamp)`` of a flow run's log records at ``min_level`` or above:
    changes whenever a record arrives, late ones included."""
    return (
        Log.select(fn.COUNT(Log.id), fn.MAX(Log.timestamp))
        .where(_log_condition(flow_run_id, None, min_level))
        .tuples()
        .first()
    )


def subflow_runs_of(flow_run_id: Id, limit: int) -> list[Any]:
    """Flow runs started by task runs of this flow run (its subflows), oldest first."""
    parents = TaskRun.select(TaskRun.id).where(TaskRun.flow_run == flow_run_id)
    return _runs(
        with_state(FlowRun, FlowRunState)
        .where(FlowRun.parent_task_run_id.in_(parents))
        .order_by(FlowRun.expected_start_time, FlowRun.id)
        .limit(limit)
    )


def parent_flow_run_id(task_run_id: Id) -> str | None:
    """The id of the flow run a task run belongs to, or None if there is no such task run."""
    row = TaskRun.select(TaskRun.flow_run).where(TaskRun.id == task_run_id).tuples().first()
    return str(row[0]) if row else None


def _log_condition(flow_run_id: Id, task_run_id: Id | None, min_level: int) -> Any:
    condition = Log.flow_run_id == flow_run_id
    if task_run_id is not None:
        condition &= Log.task_run_id == task_run_id
    if min_level:
        condition &= Log.level >= min_level
    return condition


# What a logs table shows of each record.
_LOG_FIELDS = (Log.id, Log.timestamp, Log.level, Log.task_run_id, Log.name, Log.message)


def tail_logs(
    flow_run_id: Id,
    limit: int,
    task_run_id: Id | None = None,
    min_level: int = 0,
    after: datetime.datetime | None = None,
) -> tuple[list[Any], bool]:
    """The last ``limit`` log records of a flow run (or of one of its task runs), at
    ``min_level`` or above (and stamped after ``after`` when given), oldest first, as read
    rows of what a logs table shows (``id``, ``timestamp``, ``level``, ``task_run_id``,
    ``name``, ``message``); plus whether older ones were left out."""
    condition = _log_condition(flow_run_id, task_run_id, min_level)
    if after is not None:
        condition &= Log.timestamp > after
    newest_first = Log.select().where(condition).order_by(Log.timestamp.desc(), Log.id.desc())
    rows = fetch_columns(newest_first.limit(limit + 1), _LOG_FIELDS)
    return rows[:limit][::-1], len(rows) > limit


def iter_logs(
    flow_run_id: Id, batch_size: int = 1000, task_run_id: Id | None = None, min_level: int = 0
) -> Iterator[Any]:
    """Every log record of a flow run (or task run) in time order, read in batches of
    ``batch_size`` by keyset, so no single query grows with the size of the log."""
    condition = _log_condition(flow_run_id, task_run_id, min_level)
    after = None
    while True:
        query = Log.select().where(condition)
        if after is not None:
            query = query.where(
                (Log.timestamp > after[0]) | ((Log.timestamp == after[0]) & (Log.id > after[1]))
            )
        batch = list(query.order_by(Log.timestamp, Log.id).limit(batch_size))
        yield from batch
        if len(batch) < batch_size:
            return
        after = (batch[-1].timestamp, batch[-1].id)
