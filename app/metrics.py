"""Prometheus metrics: what the server counts, and the ``/metrics`` page that shows them.

Counted as things happen (each a few microseconds: a dict lookup and an add):

- ``orion_http_requests_total`` / ``orion_http_request_duration_seconds``: by Flask endpoint
  name (never the raw path, so the label set stays bounded), method and status.
- ``orion_transitions_total``: every answer to a proposed state, by run kind, proposed state
  type and result (ACCEPT, REJECT, ABORT, WAIT).
- ``orion_scheduled_runs_created_total``, ``orion_late_runs_marked_total``: the scheduler's
  and the late-run service's work; ``orion_agent_claimed_runs_total``: runs handed to agents.
- ``orion_db_pool_connections``: this process's pooled connections, open and in use.

Computed when scraped (:class:`ScrapeCollector`), from one grouped query on ``flow_run``:
runs by state type, runs due but not yet picked up, runs Late, and the scheduler lag (how
long the oldest due SCHEDULED run has waited); plus the RQ queue's length when Redis is
configured.

Under gunicorn, ``orion start`` sets ``PROMETHEUS_MULTIPROC_DIR`` before this module is
imported (``app.cli``, emptying the folder first): each gunicorn worker then writes its
values to files there, and a scrape of any worker sums them all. Without it (a single
process) the values live in memory. The RQ processes ``orion start`` runs are not given the
folder (rq forks a process per job, each would leave files there for good): with Redis, the
scheduler and late-run counters stay at 0 and the scrape-time gauges tell the services' work.
"""

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text format every Prometheus server reads (what generate_latest writes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# No ``*_created`` series: they double the page and multiprocess mode has none anyway.
disable_created_metrics()
UNMATCHED_ENDPOINT = "unmatched"

REQUESTS = Counter(
    "orion_http_requests",
    "HTTP requests answered, by Flask endpoint, method and status.",
    ("endpoint", "method", "status"),
)
REQUEST_SECONDS = Histogram(
    "orion_http_request_duration_seconds",
    "Time from the first request hook to the response, by Flask endpoint.",
    ("endpoint",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
TRANSITIONS = Counter(
    "orion_transitions",
    "Answers to proposed states, by run kind, proposed state type and result.",
    ("kind", "type", "result"),
)
SCHEDULED_RUNS = Counter(
    "orion_scheduled_runs_created", "Flow runs created by the deployment scheduler."
)
LATE_RUNS = Counter("orion_late_runs_marked", "Flow runs the late-run service marked Late.")
AGENT_CLAIMS = Counter(
    "orion_agent_claimed_runs",
    "Scheduled flow runs handed to polling agents (work queue get_runs, not dashboard previews).",
)
DB_POOL = Gauge(
    "orion_db_pool_connections",
    "This server's pooled database connections, open and in use (summed over live processes).",
    ("use",),
    multiprocess_mode="livesum",
)


def multiprocess_enabled() -> bool:
    """True when values are shared through ``PROMETHEUS_MULTIPROC_DIR`` files."""
    return bool(os.environ.get(MULTIPROC_ENV))


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (gunicorn ``child_exit`` hook); its counters stay."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)


# Labelled children by label values: ``labels()`` checks and converts its arguments on every
# call, a dict lookup does not (the hot path's share of the metrics' cost).
_CHILDREN: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


def record_transition(kind: str, state_type: str, result: str) -> None:
    """Count one answer to a proposed state (``kind``: ``flow_run`` or ``task_run``)."""
    _child(TRANSITIONS, kind, state_type, result).inc()


def init_app(app: Any, pool_use: Callable[[], tuple[int, int]]) -> None:
    """Time and count ``app``'s requests and keep the pool gauge current.

    The start time is taken by the first ``before_request`` hook (requests the Host check or
    throttle refuse are counted, without a duration). ``pool_use`` returns this process's
    ``(open, in_use)`` pooled connections; it is read after each request's connection went
    back to the pool (register this before the hook that closes it: teardowns run last
    registered first).
    """
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe)
    opened_gauge, in_use_gauge = DB_POOL.labels("open"), DB_POOL.labels("in_use")
    last = [-1, -1]

    def _pool_gauge(exc: BaseException | None = None) -> None:
        opened, in_use = pool_use()
        if opened != last[0]:  # written only when it changed: most requests leave it as is
            last[0] = opened
            opened_gauge.set(opened)
        if in_use != last[1]:
            last[1] = in_use
            in_use_gauge.set(in_use)

    app.teardown_request(_pool_gauge)


_START = "orion.metrics.start"


def _start_timer() -> None:
    from flask import request

    request.environ[_START] = time.perf_counter()


def _observe(response: Any) -> Any:
    from flask import request

    req = request._get_current_object()  # the proxy resolves the context on every access
    endpoint = req.endpoint or UNMATCHED_ENDPOINT
    started = req.environ.get(_START)
    if started is not None:
        _child(REQUEST_SECONDS, endpoint).observe(time.perf_counter() - started)
    _child(REQUESTS, endpoint, req.method, str(response.status_code)).inc()
    return response


class ScrapeCollector:
    """Gauges computed at scrape time from ``runs_summary()`` (rows of ``(state_type,
    count, due_count, late_count, oldest_due_seconds)``) and ``queue_depth()`` (the RQ
    queue's length, or None without Redis)."""

    def __init__(
        self,
        runs_summary: Callable[[], list[tuple[str, int, int, int, float]]],
        queue_depth: Callable[[], int | None],
    ) -> None:
        self._runs_summary = runs_summary
        self._queue_depth = queue_depth

    def collect(self) -> Any:
        by_state = GaugeMetricFamily(
            "orion_flow_runs", "Flow runs by current state type.", labels=["state"]
        )
        due = late = 0
        lag = 0.0
        for state_type, count, due_count, late_count, oldest_due in self._runs_summary():
            by_state.add_metric([state_type or "NONE"], count)
            due += due_count
            late += late_count
            lag = max(lag, oldest_due)
        yield by_state
        yield GaugeMetricFamily("orion_flow_runs_late", "Flow runs in the Late state.", value=late)
        yield GaugeMetricFamily(
            "orion_flow_runs_due",
            "SCHEDULED flow runs whose time has come, not yet picked up by an agent.",
            value=due,
        )
        yield GaugeMetricFamily(
            "orion_scheduler_lag_seconds",
            "How long the oldest due SCHEDULED flow run has waited (0: none waiting).",
            value=lag,
        )
        depth = self._queue_depth()
        if depth is not None:
            yield GaugeMetricFamily(
                "orion_rq_queue_depth", "Service jobs waiting in the RQ queue.", value=depth
            )


def render(scrape: ScrapeCollector) -> bytes:
    """The ``/metrics`` page: every process's counted values, then the scrape-time gauges."""
    if multiprocess_enabled():
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    at_scrape = CollectorRegistry()
    at_scrape.register(scrape)
    return generate_latest(counted) + generate_latest(at_scrape)
