"""Retention: deleting finished flow runs older than a number of days, with what they own.

**What goes.** A flow run is *finished* when its state is terminal (COMPLETED, FAILED,
CANCELLED, CRASHED); its age is that of its state's timestamp, the moment it entered its
terminal state (``end_time`` is not enough: a run cancelled before it started has none). A
finished run older than the cutoff goes with its task runs, both state histories, its
flow run inputs, the cache entries and concurrency slots of its task runs (foreign-key
cascades), and its logs and artifacts (which hold run ids without foreign keys). A run that
is not finished stays whatever its age; a subflow run whose parent task run goes stays,
detached (its ``parent_task_run_id`` cleared), as when a run is deleted through the API.
The partial index of migration 0023 finds the finished runs by age.

**Batches sized by time.** Each batch is one transaction: it locks the oldest finished runs
past the cutoff (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so a run being transitioned or
pruned by another process is left for a later batch; SQLite's transaction holds the
database write lock), deletes their children then them, and commits. The time from its
first statement to its commit is how long it held its locks. The next batch's size is the
last one's scaled to take :data:`BATCH_TARGET_SECONDS` (half the 100 ms budget), growing at
most :data:`MAX_GROWTH` times a batch (and by at least one run), so a batch overshoots the
target by little when runs get bigger. The first batch is :data:`FIRST_BATCH` runs. Under
a heavy load even one run's deletion can take the target time; batches then stay at one.

**The dashboard's rollup.** Deleted runs leave the hourly rollup, as with every other
delete: each batch records the hours of its runs as stale
(:func:`app.models.rollups.mark_deleted_runs_stale`) and, once a prune has deleted
anything, the rollup is refreshed, which recomputes those hours from the runs that remain
(the non-finished runs of a pruned hour still count). The rollup stays what it has always
been, derived data equal to a count of ``flow_run``, so the dashboard's totals agree with
the runs list after a prune and a rebuild from scratch gives the same figures. An hour whose
runs all went shows no runs.
"""

import datetime
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from peewee import SQL

from app.db import database, is_sqlite
from app.models import (
    Artifact,
    FlowRun,
    FlowRunInput,
    FlowRunState,
    Log,
    TaskRun,
    TaskRunState,
    utcnow,
)
from app.models.rollups import mark_deleted_runs_stale
from app.services import artifacts, rollups
from app.states import TERMINAL_STATES

# The lock budget of one batch is 100 ms; batches aim at half of it.
BATCH_TARGET_SECONDS = 0.05
FIRST_BATCH = 10
MAX_GROWTH = 1.5
MAX_BATCH = 5000
# Spelled as the partial index of migration 0023 spells it, so that both backends see the
# query's condition is the index's (SQLite does not look into bound parameters for that).
_TERMINAL = sorted(f"'{state.value}'" for state in TERMINAL_STATES)
_FINISHED = SQL(f'"state_type" IN ({", ".join(_TERMINAL)})')

COUNTED = (
    "flow_runs",
    "flow_run_states",
    "task_runs",
    "task_run_states",
    "logs",
    "artifacts",
    "flow_run_inputs",
)


def _finished_before(cutoff: datetime.datetime) -> Any:
    """SQL: the flow run is finished and entered its terminal state before ``cutoff``
    (the condition of the partial index of migration 0023)."""
    return _FINISHED & (FlowRun.state_timestamp < cutoff)


def count_prunable(cutoff: datetime.datetime) -> dict[str, int]:
    """What a prune at ``cutoff`` would delete, counted by table (the keys of
    :data:`COUNTED`), without deleting anything."""
    runs = FlowRun.select(FlowRun.id).where(_finished_before(cutoff))
    tasks = TaskRun.select(TaskRun.id).where(TaskRun.flow_run.in_(runs))
    return {
        "flow_runs": runs.count(),
        "flow_run_states": FlowRunState.select().where(FlowRunState.flow_run.in_(runs)).count(),
        "task_runs": tasks.count(),
        "task_run_states": TaskRunState.select().where(TaskRunState.task_run.in_(tasks)).count(),
        "logs": Log.select().where(Log.flow_run_id.in_(runs)).count(),
        "artifacts": Artifact.select().where(Artifact.flow_run_id.in_(runs)).count(),
        "flow_run_inputs": FlowRunInput.select().where(FlowRunInput.flow_run.in_(runs)).count(),
    }


def _delete_batch(cutoff: datetime.datetime, size: int) -> dict[str, int]:
    """One batch: lock up to ``size`` of the oldest prunable runs, delete them with their
    children, commit. Returns the rows deleted per table (``flow_runs`` 0: none left)."""
    counts = dict.fromkeys(COUNTED, 0)
    with database.atomic():
        query = (
            FlowRun.select(FlowRun.id)
            .where(_finished_before(cutoff))
            .order_by(FlowRun.state_timestamp)
            .limit(size)
        )
        if not is_sqlite():
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        ids = [run_id for (run_id,) in query.tuples()]
        if not ids:
            return counts
        tasks = TaskRun.select(TaskRun.id).where(TaskRun.flow_run.in_(ids))
        FlowRun.update(parent_task_run_id=None).where(
            FlowRun.parent_task_run_id.in_(tasks)
        ).execute()
        mark_deleted_runs_stale(FlowRun.id.in_(ids))
        counts["logs"] = Log.delete().where(Log.flow_run_id.in_(ids)).execute()
        keyed = Artifact.select(Artifact.key).where(
            Artifact.flow_run_id.in_(ids), Artifact.key.is_null(False)
        )
        keys = [key for (key,) in keyed.distinct().tuples()]
        counts["artifacts"] = Artifact.delete().where(Artifact.flow_run_id.in_(ids)).execute()
        artifacts.refresh_latest(keys)
        counts["task_run_states"] = (
            TaskRunState.delete().where(TaskRunState.task_run.in_(tasks)).execute()
        )
        counts["task_runs"] = TaskRun.delete().where(TaskRun.flow_run.in_(ids)).execute()
        counts["flow_run_inputs"] = (
            FlowRunInput.delete().where(FlowRunInput.flow_run.in_(ids)).execute()
        )
        counts["flow_run_states"] = (
            FlowRunState.delete().where(FlowRunState.flow_run.in_(ids)).execute()
        )
        counts["flow_runs"] = FlowRun.delete().where(FlowRun.id.in_(ids)).execute()
    return counts


def next_batch_size(size: int, held: float, target_seconds: float) -> int:
    """The size of the batch after one of ``size`` runs that held its locks ``held``
    seconds: scaled to take ``target_seconds``, at most :data:`MAX_GROWTH` times ``size``
    (and at least one more, so a batch of one can grow), between 1 and :data:`MAX_BATCH`."""
    scaled = int(size * target_seconds / max(held, 1e-6))
    grown = max(size + 1, int(size * MAX_GROWTH))
    return max(1, min(MAX_BATCH, grown, scaled))


@dataclass
class PruneResult:
    """What a prune did: rows deleted per table (:data:`COUNTED`), and each batch's size
    (flow runs) and lock-holding time in seconds, in order."""

    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    batches: list[tuple[int, float]] = field(default_factory=list)
    # Whether runs past the cutoff were left because the time budget ran out.
    more: bool = False

    def summary(self) -> dict[str, Any]:
        """The counts, the number of batches and the longest batch in milliseconds."""
        longest = max((seconds for _, seconds in self.batches), default=0.0)
        return {
            **self.deleted,
            "batches": len(self.batches),
            "longest_batch_ms": round(longest * 1000, 1),
            "more": self.more,
        }


def prune(
    cutoff: datetime.datetime,
    budget_seconds: float | None = None,
    target_seconds: float = BATCH_TARGET_SECONDS,
) -> PruneResult:
    """Delete the finished flow runs that entered their terminal state before ``cutoff``,
    with what they own, in batches sized to hold their locks about ``target_seconds`` (see
    the module docstring); then refresh the rollup if anything went.

    Stops when none is left, or once ``budget_seconds`` (None: no limit) have passed, with
    ``more`` set. Call outside a transaction. Safe to run concurrently with itself.
    """
    result = PruneResult()
    started = time.monotonic()
    size = FIRST_BATCH
    while True:
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            result.more = True
            break
        batch_started = time.perf_counter()
        counts = _delete_batch(cutoff, size)
        held = time.perf_counter() - batch_started
        if not counts["flow_runs"]:
            break
        result.batches.append((counts["flow_runs"], held))
        for table, deleted in counts.items():
            result.deleted[table] += deleted
        if counts["flow_runs"] < size:
            break
        size = next_batch_size(size, held, target_seconds)
    if result.deleted["flow_runs"]:
        rollups.refresh_flow_run_hourly()
    return result


def prune_old_runs(config: Mapping[str, Any], now: datetime.datetime | None = None) -> PruneResult:
    """One pass of the retention service: with ``RETENTION_DAYS`` set, prune the finished
    runs older than that many days for at most ``RETENTION_PASS_SECONDS``; unset, nothing.
    The next pass goes on where a pass that ran out of time stopped. ``load_config`` has
    refused bad values of both settings."""
    days = config["RETENTION_DAYS"]
    if days is None:
        return PruneResult()
    cutoff = (now or utcnow()) - datetime.timedelta(days=days)
    return prune(cutoff, budget_seconds=config["RETENTION_PASS_SECONDS"])
