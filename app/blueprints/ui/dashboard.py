"""The dashboard page: runs by state and their history over a time window, late, failed
and upcoming runs, busy concurrency limits and work queue health."""

import datetime
from collections import Counter

from flask import request

from app.blueprints.ui import BadParameter, agent_timeout, bp, params, render
from app.clock import utcnow
from app.services import concurrency_limits_v2 as global_limits
from app.services import dashboard, rollups, work_queues

# How many rows each dashboard list shows.
WIDGET_ROWS = 10

WINDOWS = {
    "hour": datetime.timedelta(hours=1),
    "day": datetime.timedelta(days=1),
    "week": datetime.timedelta(days=7),
}
LONGEST_WINDOW = datetime.timedelta(days=366)
HISTORY_BUCKETS = 48
# Queues the dashboard's health widget considers (by name); it lists the unhealthy first.
QUEUES_CHECKED = 100


def _window(args, now):
    """The dashboard's time window from the query: ``(key, start, end)``; a custom one's
    times without an offset are in the zone ``tz`` (the browser's; UTC if absent)."""
    key = params.one_of(args, "window", ("hour", "day", "week", "custom"), "day")
    if key != "custom":
        return key, now - WINDOWS[key], now
    zone = params.zone(args)
    start, end = params.timestamp(args, "start", zone), params.timestamp(args, "end", zone)
    if start is None or end is None:
        raise BadParameter("window", "a custom window needs both a start and an end.")
    if end <= start:
        raise BadParameter("end", "must be after the start.")
    if end - start > LONGEST_WINDOW:
        raise BadParameter("end", "a window may span at most 366 days.")
    return key, start, end


def _history_chart(start, end, now):
    """The run history of the window as uPlot's columns: bucket start times (epoch seconds),
    one count series per state type present, and the mean run time (seconds) of each
    bucket's runs (None for an empty bucket); plus ``counts``, the window's runs by state
    type (the buckets cover the window, so the "runs by state" widget needs no query of its
    own), and ``as_of`` / ``live`` when part of the figures came from the hourly
    rollup (see ``app.services.rollups``)."""
    history = rollups.run_history(start, end, HISTORY_BUCKETS, now)
    buckets = history["buckets"]
    present = sorted({state for b in buckets for state in b["counts"]})
    series = {
        state_type: [b["counts"].get(state_type, 0) for b in buckets] for state_type in present
    }
    durations = []
    for bucket in buckets:
        runs = sum(bucket["counts"].values())
        durations.append(round(bucket["run_time"] / runs, 3) if runs else None)
    return {
        "interval": history["interval"],
        "counts": {state_type: sum(counts) for state_type, counts in series.items()},
        "as_of": history["as_of"],
        "live": history["live"],
        "times": [int(b["start"].timestamp()) for b in buckets],
        "series": [{"state": state_type, "counts": series[state_type]} for state_type in present],
        "durations": durations,
    }


# How the health widget orders queues: what needs a look first.
_UNHEALTHY, _UNUSED, _HEALTHY, _PAUSED = range(4)


def _queue_rank(queue, health):
    """Paused; else healthy; else never polled with nothing late (unused, as a pool's default
    queue nobody sends work to); else unhealthy."""
    if queue.is_paused:
        return _PAUSED
    if health["healthy"]:
        return _HEALTHY
    return _UNUSED if health["unused"] else _UNHEALTHY


@bp.get("/")
def dashboard_page():
    """Counts by state, the run history chart, late, failed and upcoming runs, busy limits."""
    now = utcnow()
    window, start, end = _window(request.args, now)
    chart = _history_chart(start, end, now)
    counts = chart.pop("counts")
    as_of, live = chart.pop("as_of"), chart.pop("live")
    late = dashboard.late_runs(WIDGET_ROWS, now)
    failed = dashboard.failed_runs(start, end, WIDGET_ROWS)
    upcoming = dashboard.upcoming_runs(WIDGET_ROWS, now)
    names = dashboard.flow_names(r.flow_id for r in late + failed + upcoming)
    queues = work_queues.read_work_queues(
        {"sort": "NAME_ASC", "limit": QUEUES_CHECKED, "offset": 0}
    )
    health = work_queues.queue_health(queues, now, agent_timeout())
    ranks = {queue.id: _queue_rank(queue, health[str(queue.id)]) for queue in queues}
    tally = Counter(ranks.values())
    return render(
        "ui/dashboard.html",
        "ui/_dashboard.html",
        window=window,
        start=start,
        end=end,
        now=now,
        counts=counts,
        total=sum(counts.values()),
        chart=chart,
        as_of=as_of,
        live=live,
        late=late,
        failed=failed,
        upcoming=upcoming,
        flow_names=names,
        deployment_names=dashboard.deployment_names(r.deployment_id for r in upcoming),
        busy_limits=dashboard.busy_concurrency_limits(WIDGET_ROWS, now),
        busy_global_limits=global_limits.busy_limits(WIDGET_ROWS, now),
        queues=sorted(queues, key=lambda queue: ranks[queue.id])[:WIDGET_ROWS],
        queue_health=health,
        queue_count=len(queues),
        unhealthy_count=tally[_UNHEALTHY],
        unused_count=tally[_UNUSED],
        paused_count=tally[_PAUSED],
        queues_checked=QUEUES_CHECKED,
        tz=params.zone(request.args),
    )
