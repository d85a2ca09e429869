"""The liveness service: flow runs whose process is gone stop looking alive.

A running flow heartbeats (``POST /api/flow_runs/{id}/heartbeat`` sets ``last_heartbeat``)
while its process lives, whatever the run's state: Orion's SDK beats as soon as a run starts,
then every few seconds. Prefect 2 clients never heartbeat. A run is *silent* since the later
of its last heartbeat and the moment it entered its current state; for a run that never
heartbeated that is when it entered the state. Then:

- RUNNING, silent for ``heartbeat_timeout`` -> Crashed, if it has heartbeated at least once.
  A run that never did comes from a client that does not heartbeat (a Prefect 2 flow runs
  for hours without a word to the server), so its silence says nothing: it is left to its
  worker or agent, which reports the infrastructure's exit;
- PENDING for ``pending_timeout`` without starting, and silent for ``heartbeat_timeout``
  (an engine waiting for its scheduled time heartbeats) -> Crashed;
- CANCELLING, silent for ``heartbeat_timeout`` -> Cancelled. This is how the server knows
  the infrastructure is gone: a live process heartbeats, and the agent that kills one sets
  Cancelled itself, so a cancelling run that stays silent has no process and no agent left
  to finish the cancel. A run that never heartbeated gets ``pending_timeout`` instead: its
  worker finds it only at its next poll (a Prefect 2.20 worker looks every 20 s), then
  stops the process, and a run marked Cancelled before that would never be stopped.

Each run is moved by a forced orchestration with a message saying why; its task runs that are
not final get the same final type (Crashed here; Cancelled by the cancellation cascade of
``app.services.orchestration``), and so give up their concurrency slot leases.

These are plain functions with an explicit ``now``: idempotent (a run that moved no longer
matches) and safe to run at once from several threads or processes. Each batch of runs is
locked under the selection (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent sweeps
split the work and a run being transitioned right now is left alone; SQLite's write
transaction holds the database lock), so the condition still holds when a run is moved.

No service frees expired concurrency slot leases: an expired lease is ignored by every reader
(``active_slots``, the slot rule, lease renewal) and its row is deleted when its task run
leaves RUNNING, as this service makes it do.
"""

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.db import database, is_sqlite
from app.models import FlowRun, utcnow
from app.services.common import Id
from app.services.orchestration import finish_task_runs, set_flow_run_state
from app.states import StateType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LivenessSettings:
    """Timeouts of the liveness service (ORION_RUN_HEARTBEAT_TIMEOUT, ORION_PENDING_TIMEOUT,
    ORION_LIVENESS_BATCH_SIZE). ``pending_timeout`` is the time infrastructure is given to
    start a run, or to stop one whose client does not heartbeat."""

    heartbeat_timeout: datetime.timedelta = datetime.timedelta(seconds=20)
    pending_timeout: datetime.timedelta = datetime.timedelta(seconds=600)
    batch_size: int = 200

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "LivenessSettings":
        """The settings from an Orion config mapping."""
        return cls(
            heartbeat_timeout=datetime.timedelta(seconds=config["RUN_HEARTBEAT_TIMEOUT"]),
            pending_timeout=datetime.timedelta(seconds=config["PENDING_TIMEOUT"]),
            batch_size=config["LIVENESS_BATCH_SIZE"],
        )


def check_liveness(
    now: datetime.datetime | None = None, settings: LivenessSettings = LivenessSettings()
) -> dict[str, int]:
    """Run the three sweeps below; returns ``{"crashed_running": n, "crashed_pending": n,
    "cancelled": n}``."""
    now = now or utcnow()
    return {
        "crashed_running": crash_silent_runs(now, settings.heartbeat_timeout, settings.batch_size),
        "crashed_pending": crash_unstarted_runs(
            now, settings.pending_timeout, settings.heartbeat_timeout, settings.batch_size
        ),
        "cancelled": cancel_abandoned_runs(
            now, settings.heartbeat_timeout, settings.pending_timeout, settings.batch_size
        ),
    }


def _silent_since(cutoff: datetime.datetime) -> Any:
    """Runs with no heartbeat and no state change after ``cutoff``."""
    return (FlowRun.last_heartbeat.is_null() | (FlowRun.last_heartbeat < cutoff)) & (
        FlowRun.state_timestamp < cutoff
    )


def _seconds(delta: datetime.timedelta) -> str:
    return f"{delta.total_seconds():g}"


def crash_silent_runs(
    now: datetime.datetime, heartbeat_timeout: datetime.timedelta, batch_size: int = 200
) -> int:
    """RUNNING flow runs that have heartbeated and are silent for ``heartbeat_timeout``
    become Crashed; returns how many."""
    message = (
        f"The flow run sent no heartbeat for {_seconds(heartbeat_timeout)} s while "
        "running; its process is presumed dead."
    )
    return _sweep(
        (FlowRun.state_type == StateType.RUNNING.value)
        & FlowRun.last_heartbeat.is_null(False)
        & _silent_since(now - heartbeat_timeout),
        StateType.CRASHED,
        "Crashed",
        message,
        batch_size,
    )


def crash_unstarted_runs(
    now: datetime.datetime,
    pending_timeout: datetime.timedelta,
    heartbeat_timeout: datetime.timedelta,
    batch_size: int = 200,
) -> int:
    """PENDING flow runs pending for ``pending_timeout`` that are silent for
    ``heartbeat_timeout`` become Crashed; returns how many."""
    message = (
        f"The flow run did not start running within {_seconds(pending_timeout)} s of "
        "becoming pending; its infrastructure is presumed lost."
    )
    return _sweep(
        (FlowRun.state_type == StateType.PENDING.value)
        & (FlowRun.state_timestamp < now - pending_timeout)
        & _silent_since(now - heartbeat_timeout),
        StateType.CRASHED,
        "Crashed",
        message,
        batch_size,
    )


def cancel_abandoned_runs(
    now: datetime.datetime,
    heartbeat_timeout: datetime.timedelta,
    pending_timeout: datetime.timedelta,
    batch_size: int = 200,
) -> int:
    """CANCELLING flow runs whose infrastructure is gone become Cancelled: those that have
    heartbeated when silent for ``heartbeat_timeout``, the others ``pending_timeout`` after
    they began cancelling; returns how many."""
    cancelling = FlowRun.state_type == StateType.CANCELLING.value
    silent = _sweep(
        cancelling & FlowRun.last_heartbeat.is_null(False) & _silent_since(now - heartbeat_timeout),
        StateType.CANCELLED,
        "Cancelled",
        f"The flow run sent no heartbeat for {_seconds(heartbeat_timeout)} s while "
        "cancelling; its infrastructure is gone.",
        batch_size,
    )
    unstopped = _sweep(
        cancelling
        & FlowRun.last_heartbeat.is_null()
        & (FlowRun.state_timestamp < now - pending_timeout),
        StateType.CANCELLED,
        "Cancelled",
        f"No worker or agent stopped the flow run within {_seconds(pending_timeout)} s of "
        "the cancel; its infrastructure is presumed gone.",
        batch_size,
    )
    return silent + unstopped


def _sweep(condition: Any, state_type: StateType, name: str, message: str, batch_size: int) -> int:
    """Force every flow run matching ``condition`` into a ``state_type`` state, a locked batch
    per transaction, oldest state first; returns how many moved."""
    moved = 0
    while True:
        with database.atomic():
            query = (
                FlowRun.select(FlowRun.id)
                .where(condition)
                .order_by(FlowRun.state_timestamp, FlowRun.id)
                .limit(batch_size)
            )
            if not is_sqlite():
                query = query.for_update("FOR UPDATE SKIP LOCKED")
            run_ids = [row.id for row in query]
            moved_now = sum(_finish(run_id, state_type, name, message) for run_id in run_ids)
        moved += moved_now
        # A batch that moved nothing (every run refused) would be selected again forever.
        if len(run_ids) < batch_size or not moved_now:
            return moved


def _finish(run_id: Id, state_type: StateType, name: str, message: str) -> bool:
    """Force one flow run and its unfinished task runs into the final state, in
    a savepoint so one failure leaves the rest of the batch; returns whether it moved."""
    try:
        with database.atomic():
            result = set_flow_run_state(
                run_id,
                {
                    "type": state_type.value,
                    "name": name,
                    "message": message,
                    "data": None,
                    "state_details": {},
                },
                force=True,
            )
            # Cancelled cascades to the task runs by itself (see app.services.orchestration).
            if result.written and state_type is StateType.CRASHED:
                finish_task_runs(run_id, state_type.value, name, message)
    except Exception:  # one bad run must not stop the sweep; it is retried next loop
        log.exception("liveness: could not move flow run %s to %s", run_id, name)
        return False
    if result.written:
        log.info("liveness: flow run %s is now %s: %s", run_id, name, message)
    return result.written
