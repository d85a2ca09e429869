"""The flow run rollup: refreshing it (a background service) and reading run history with it.

**Why.** The dashboard's history chart and "runs by state" counts aggregate every run of the
window; over a million runs that costs seconds. ``flow_run_hourly`` holds those aggregates
per hour of expected start time (see ``app.models.rollups``), so a long window reads a few
thousand rollup rows plus the runs of a few hours.

**Refreshing** (:func:`refresh_flow_run_hourly`, run by the rollup service every
``ROLLUP_LOOP_SECONDS``). Nothing is added to ``set_state``: every write to a run stamps its
``updated`` (indexed), and a run's ``expected_start_time`` never changes once set, so the
hours to recompute are those of the runs updated since the previous refresh started, plus
those :func:`app.models.rollups.mark_deleted_runs_stale` recorded for deleted runs. Each of
those hours is recomputed whole from ``flow_run`` (DELETE its rows, INSERT ... SELECT its
runs grouped by state type), so recomputing an hour twice is harmless. The first refresh
(no ``rollup_refresh`` row), and one that finds at least :data:`FULL_REBUILD_SHARE` of the
hours changed, rebuilds every hour in one pass. "Since the previous refresh" reaches back
:data:`REFRESH_MARGIN` more, for transactions that stamped ``updated`` before that refresh
started but committed after it had read, and for clocks of servers a little apart. One
refresh runs at a time (a transaction-level advisory lock on PostgreSQL; SQLite's write lock).

**Reading** (:func:`run_history`). A window whose chart buckets are at least an hour wide
buckets by whole hours (anchored at the hour the window starts in); its whole hours come from
the rollup except the live hours around now (:data:`LIVE_BEFORE` / :data:`LIVE_AFTER`), which,
like the window's partial first and last hours, are counted exactly from ``flow_run``. The
rollup's figures are as of its last refresh, which the result reports (``as_of``) for the page
to show. Shorter windows, and any window before the first refresh, are counted exactly.
"""

import datetime
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from peewee import SQL, Case, fn

from app.db import database, is_sqlite
from app.models import FlowRun, utcnow
from app.models.rollups import (
    FlowRunHourly,
    FlowRunHourlyStale,
    RollupRefresh,
    epoch_of,
    hour_of,
)
from app.states import StateType

HOUR = datetime.timedelta(hours=1)
ROLLUP_NAME = "flow_run_hourly"
# How far before the previous refresh's start the next one looks for updated runs.
REFRESH_MARGIN = datetime.timedelta(minutes=5)
# Hours around now always counted exactly: runs there change state by the minute.
LIVE_BEFORE = datetime.timedelta(hours=2)
LIVE_AFTER = datetime.timedelta(hours=2)
# Key of the PostgreSQL advisory lock serialising refreshes ("ROLLUP" in ASCII).
_LOCK_KEY = 0x524F4C4C5550
# When at least this share of the hours the rollup holds changed, rebuilding every hour in
# one pass is cheaper than recomputing them range by range (at a million runs: 0.6 s for
# the rebuild, ~1.6 ms per hour recomputed).
FULL_REBUILD_SHARE = 0.25
# Hour ranges per statement when recomputing (keeps statements and their plans small).
_RANGES_PER_STATEMENT = 50
_RUNNING = StateType.RUNNING.value


def floor_hour(when: datetime.datetime) -> datetime.datetime:
    """The start of the UTC hour ``when`` falls in."""
    return when.replace(minute=0, second=0, microsecond=0)


def ceil_hour(when: datetime.datetime) -> datetime.datetime:
    """``when`` if it starts an hour, else the start of the next hour."""
    floor = floor_hour(when)
    return floor if floor == when else floor + HOUR


def _ranges(
    hours: Iterable[datetime.datetime],
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """Sorted, merged ``[(start, end)]`` covering the given hour starts."""
    merged: list[list[datetime.datetime]] = []
    for hour in sorted(set(hours)):
        if merged and merged[-1][1] == hour:
            merged[-1][1] = hour + HOUR
        else:
            merged.append([hour, hour + HOUR])
    return [(start, end) for start, end in merged]


def _in_ranges(column: Any, ranges: Sequence[tuple[datetime.datetime, datetime.datetime]]) -> Any:
    """SQL: ``column`` falls in one of the ``[start, end)`` ranges."""
    condition = None
    for start, end in ranges:
        part = (column >= start) & (column < end)
        condition = part if condition is None else (condition | part)
    return condition


def _aggregate_select(condition: Any = None) -> Any:
    """``SELECT hour, state_type, count, run time, running since`` of the runs matching
    ``condition`` (all runs if None), grouped by hour and state type (``COUNT(*)``: see
    :func:`_exact_rows`)."""
    hour = hour_of(FlowRun.expected_start_time)
    where = FlowRun.expected_start_time.is_null(False) & FlowRun.state_type.is_null(False)
    if condition is not None:
        where &= condition
    running_since = Case(
        None, [(FlowRun.state_type == _RUNNING, epoch_of(FlowRun.state_timestamp))], 0.0
    )
    return (
        FlowRun.select(
            hour,
            FlowRun.state_type,
            fn.COUNT(SQL("*")),
            fn.COALESCE(fn.SUM(FlowRun.total_run_time), 0.0),
            fn.COALESCE(fn.SUM(running_since), 0.0),
        )
        .where(where)
        .group_by(hour, FlowRun.state_type)
    )


_COLUMNS = [
    FlowRunHourly.hour,
    FlowRunHourly.state_type,
    FlowRunHourly.count_runs,
    FlowRunHourly.sum_run_time,
    FlowRunHourly.sum_running_since,
]


def _recompute(ranges: Sequence[tuple[datetime.datetime, datetime.datetime]]) -> None:
    """Replace the rollup rows of the hours in ``ranges`` with fresh aggregates."""
    for offset in range(0, len(ranges), _RANGES_PER_STATEMENT):
        part = ranges[offset : offset + _RANGES_PER_STATEMENT]
        FlowRunHourly.delete().where(_in_ranges(FlowRunHourly.hour, part)).execute()
        (
            FlowRunHourly.insert_from(
                _aggregate_select(_in_ranges(FlowRun.expected_start_time, part)), _COLUMNS
            ).execute()
        )


def _lock() -> None:
    if not is_sqlite():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


def refresh_flow_run_hourly(now: datetime.datetime | None = None) -> dict[str, int]:
    """Bring ``flow_run_hourly`` up to date (see the module docstring), in one transaction.

    ``now`` is recorded as the refresh's time (default: the time it gets the lock). Returns
    ``{"hours": hours recomputed, "full": whether every hour was rebuilt}``.
    """
    with database.atomic():
        _lock()
        now = now or utcnow()
        previous = last_refresh()
        full, hours = previous is None, 0
        if previous is not None:
            stale = [hour for (hour,) in FlowRunHourlyStale.select().tuples()]
            if stale:
                FlowRunHourlyStale.delete().where(FlowRunHourlyStale.hour.in_(stale)).execute()
            changed = {
                FlowRunHourly.hour.python_value(row[0])
                for row in FlowRun.select(hour_of(FlowRun.expected_start_time))
                .where(
                    (FlowRun.updated >= previous - REFRESH_MARGIN)
                    & FlowRun.expected_start_time.is_null(False)
                )
                .distinct()
                .tuples()
            } | set(stale)
            held = FlowRunHourly.select(fn.COUNT(fn.DISTINCT(FlowRunHourly.hour))).scalar()
            full = len(changed) >= max(1, held * FULL_REBUILD_SHARE)
            if not full:
                _recompute(_ranges(changed))
                hours = len(changed)
        if full:
            FlowRunHourly.delete().execute()
            FlowRunHourlyStale.delete().execute()
            FlowRunHourly.insert_from(_aggregate_select(), _COLUMNS).execute()
            hours = FlowRunHourly.select(fn.COUNT(fn.DISTINCT(FlowRunHourly.hour))).scalar()
        (
            RollupRefresh.insert(name=ROLLUP_NAME, refreshed=now)
            .on_conflict(
                conflict_target=[RollupRefresh.name], update={RollupRefresh.refreshed: now}
            )
            .execute()
        )
    return {"hours": hours, "full": full}


def last_refresh() -> datetime.datetime | None:
    """When ``flow_run_hourly`` was last refreshed (its refresh's start), or None."""
    return (
        RollupRefresh.select(RollupRefresh.refreshed)
        .where(RollupRefresh.name == ROLLUP_NAME)
        .scalar()
    )


def _seconds_after(column: Any, anchor: datetime.datetime) -> Any:
    """SQL: seconds from the timestamp ``anchor`` (a Python datetime) to ``column``."""
    if is_sqlite():
        return (fn.julianday(column) - fn.julianday(column.db_value(anchor))) * 86400.0
    return epoch_of(column) - anchor.timestamp()


def _exact_rows(
    ranges: Sequence[tuple[datetime.datetime, datetime.datetime]],
    anchor: datetime.datetime,
    interval: float,
    now_epoch: float,
) -> Any:
    """``(bucket, state type, count, run time)`` of the runs expected in ``ranges``, counted
    from ``flow_run``; a running run's time runs up to ``now_epoch``. ``COUNT(*)``, not of
    the id: SQLite then reads only the index of the columns used (migration 0027)."""
    column = FlowRun.expected_start_time
    bucket = fn.floor(_seconds_after(column, anchor) / float(interval))
    run_time = FlowRun.total_run_time + Case(
        None, [(FlowRun.state_type == _RUNNING, now_epoch - epoch_of(FlowRun.state_timestamp))], 0.0
    )
    return (
        FlowRun.select(bucket, FlowRun.state_type, fn.COUNT(SQL("*")), fn.SUM(run_time))
        .where(_in_ranges(column, ranges) & FlowRun.state_type.is_null(False))
        .group_by(bucket, FlowRun.state_type)
        .tuples()
    )


def _rollup_rows(
    ranges: Sequence[tuple[datetime.datetime, datetime.datetime]],
    anchor: datetime.datetime,
    interval: float,
    now_epoch: float,
) -> Iterator[tuple[Any, ...]]:
    """The same figures as :func:`_exact_rows`, summed from ``flow_run_hourly``."""
    column = FlowRunHourly.hour
    bucket = fn.floor(_seconds_after(column, anchor) / float(interval))
    query = (
        FlowRunHourly.select(
            bucket,
            FlowRunHourly.state_type,
            fn.SUM(FlowRunHourly.count_runs),
            fn.SUM(FlowRunHourly.sum_run_time),
            fn.SUM(FlowRunHourly.sum_running_since),
        )
        .where(_in_ranges(column, ranges))
        .group_by(bucket, FlowRunHourly.state_type)
        .tuples()
    )
    for index, state_type, count, run_time, running_since in query:
        if state_type == _RUNNING:
            run_time += count * now_epoch - running_since
        yield index, state_type, count, run_time


def _subtract(
    ranges: Sequence[tuple[datetime.datetime, datetime.datetime]],
    cut_start: datetime.datetime,
    cut_end: datetime.datetime,
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """``ranges`` without ``[cut_start, cut_end)``."""
    left = []
    for start, end in ranges:
        if end <= cut_start or start >= cut_end:
            left.append((start, end))
            continue
        if start < cut_start:
            left.append((start, cut_start))
        if end > cut_end:
            left.append((cut_end, end))
    return left


def run_history(
    start: datetime.datetime,
    end: datetime.datetime,
    buckets: int,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Flow runs expected to start in ``[start, end)``, counted in about ``buckets`` time
    buckets by state type, with their summed estimated run time (a running run counts its
    time up to ``now``); see the module docstring for where each hour's figures come from.

    Returns ``{"interval": bucket width in seconds, "buckets": [{"start", "counts": {state
    type: runs}, "run_time": seconds}], "as_of": the rollup's refresh time if any figure came
    from it else None, "live": ``(start, end)`` of the live hours (counted exactly) when
    ``as_of`` is set}``. Bucket ``i`` covers ``[anchor + i * interval, + interval)`` cut to
    the window; its ``start`` is where that cut begins.
    """
    now = now or utcnow()
    interval = max(60, math.ceil((end - start).total_seconds() / buckets))
    refreshed = last_refresh() if interval >= HOUR.total_seconds() else None
    rollup_ranges, live_start, live_end = [], None, None
    if refreshed is None:
        anchor = start
    else:
        interval = math.ceil(interval / HOUR.total_seconds()) * int(HOUR.total_seconds())
        anchor = floor_hour(start)
        whole = [(ceil_hour(start), floor_hour(end))] if ceil_hour(start) < floor_hour(end) else []
        live_start, live_end = floor_hour(now) - LIVE_BEFORE, floor_hour(now) + LIVE_AFTER
        rollup_ranges = _subtract(whole, live_start, live_end)
    exact_ranges = [(start, end)]
    for a, b in rollup_ranges:
        exact_ranges = _subtract(exact_ranges, a, b)
    width = datetime.timedelta(seconds=interval)
    count = max(1, math.ceil((end - anchor) / width))
    result: list[dict[str, Any]] = [
        {"start": max(start, anchor + i * width), "counts": {}, "run_time": 0.0}
        for i in range(count)
    ]
    now_epoch = now.timestamp()
    rows = list(_exact_rows(exact_ranges, anchor, interval, now_epoch)) if exact_ranges else []
    if rollup_ranges:
        rows += list(_rollup_rows(rollup_ranges, anchor, interval, now_epoch))
    for index, state_type, runs, run_time in rows:
        index = int(index)
        if 0 <= index < count:
            counts = result[index]["counts"]
            counts[state_type] = counts.get(state_type, 0) + runs
            result[index]["run_time"] += float(run_time or 0.0)
    return {
        "interval": interval,
        "buckets": result,
        "as_of": refreshed if rollup_ranges else None,
        "live": (live_start, live_end) if rollup_ranges else None,
    }
