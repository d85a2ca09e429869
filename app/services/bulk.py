"""Bulk actions on flow runs (cancel, retry, delete), on a list of ids or on every run a
filter matches, in bounded batches.

A filter can match a million runs, so nothing here handles "all of them" at once: callers
count the runs (:func:`count_matching`), then walk them batch by batch with
:func:`next_batch` (keyset pagination on ``id``; each batch is a short query, and a caller
may spread the batches over several requests). The set is pinned by ``as_of``: runs created
after the user saw the count are left alone, so the action applies to what was confirmed.

Cancel and retry go through orchestration run by run (each in its own transaction, as a
client's ``set_state`` would); a refusal leaves the others unaffected. Each run's outcome is
a short label, so callers can tally them: :data:`DONE` or the reason it was not done.
"""

import datetime
from collections.abc import Iterable
from typing import Any

from app.db import database
from app.models import FlowRun, TaskRun, utcnow
from app.models.rollups import mark_deleted_runs_stale
from app.services import filters
from app.services.common import Body, Id
from app.services.orchestration import OrchestrationResult, set_flow_run_state
from app.states import TERMINAL_STATES, StateType

DONE = "done"
BATCH_SIZE = 200

_RETRYABLE = (StateType.FAILED.value, StateType.CRASHED.value)
_NOT_CANCELLABLE = {t.value for t in TERMINAL_STATES} | {StateType.CANCELLING.value}


def _matching(body: Body, as_of: datetime.datetime) -> Any:
    query = filters.apply_filters(FlowRun.select(FlowRun.id), FlowRun, body)
    return query.where(FlowRun.created <= as_of)


def count_matching(body: Body, as_of: datetime.datetime) -> int:
    """How many flow runs match the filter ``body`` (its ``sort``, ``limit`` and ``offset``
    are ignored) among those created up to ``as_of``."""
    return _matching(body, as_of).count()


def next_batch(
    body: Body, as_of: datetime.datetime, after: str | None = None, size: int | None = None
) -> list[str]:
    """Ids (strings, ascending) of the next ``size`` (default :data:`BATCH_SIZE`) runs
    matching ``body``, created up to ``as_of``, with ids above ``after``; fewer than ``size``
    means this is the last batch."""
    size = size or BATCH_SIZE
    query = _matching(body, as_of)
    if after:
        query = query.where(FlowRun.id > after)
    return [str(run_id) for (run_id,) in query.order_by(FlowRun.id).limit(size).tuples()]


def _current(ids: Iterable[Id]) -> dict[str, tuple[Any, Any]]:
    rows = (
        FlowRun.select(FlowRun.id, FlowRun.state_type, FlowRun.deployment)
        .where(FlowRun.id.in_(ids))
        .tuples()
    )
    return {str(run_id): (state_type, deployment_id) for run_id, state_type, deployment_id in rows}


def _unique(ids: Iterable[Id]) -> list[str]:
    return list(dict.fromkeys(str(run_id) for run_id in ids))


def _proposal_outcome(result: OrchestrationResult) -> str:
    if result.status.value == "ACCEPT":
        return DONE
    reason = (result.details or {}).get("reason") or result.status.value.lower()
    return f"refused by orchestration: {reason}"


def cancel(ids: Iterable[Id]) -> dict[str, str]:
    """Cancel each unfinished run: RUNNING becomes CANCELLING (whoever runs it stops it),
    any other unfinished state CANCELLED. Returns ``{id: outcome}``."""
    ids = _unique(ids)
    current = _current(ids) if ids else {}
    outcome = {}
    for run_id in ids:
        if run_id not in current:
            outcome[run_id] = "no longer exists"
            continue
        state_type = current[run_id][0]
        if state_type in _NOT_CANCELLABLE:
            outcome[run_id] = "already finished or cancelling"
            continue
        target = (
            StateType.CANCELLING if state_type == StateType.RUNNING.value else StateType.CANCELLED
        )
        outcome[run_id] = _proposal_outcome(
            set_flow_run_state(
                run_id,
                {
                    "type": target.value,
                    "name": target.value.capitalize(),
                    "message": "Cancelled from the dashboard.",
                    "state_details": {},
                },
            )
        )
    return outcome


def retry(ids: Iterable[Id], now: datetime.datetime | None = None) -> dict[str, str]:
    """Retry each failed or crashed run of a deployment: propose AwaitingRetry (SCHEDULED,
    due now) through orchestration, after which agents pick it up again. Other runs are
    refused with the reason. Returns ``{id: outcome}``."""
    now = now or utcnow()
    ids = _unique(ids)
    current = _current(ids) if ids else {}
    outcome = {}
    for run_id in ids:
        if run_id not in current:
            outcome[run_id] = "no longer exists"
            continue
        state_type, deployment_id = current[run_id]
        if state_type not in _RETRYABLE:
            outcome[run_id] = "not failed or crashed"
        elif deployment_id is None:
            outcome[run_id] = "not a deployment's run (nothing would run it again)"
        else:
            outcome[run_id] = _proposal_outcome(
                set_flow_run_state(
                    run_id,
                    {
                        "type": StateType.SCHEDULED.value,
                        "name": "AwaitingRetry",
                        "message": "Retried from the dashboard.",
                        "state_details": {"scheduled_time": now.isoformat()},
                    },
                )
            )
    return outcome


def delete(ids: Iterable[Id]) -> dict[str, str]:
    """Delete the runs (with their task runs and states) in one transaction; subflow runs
    of their task runs lose their parent link. Returns ``{id: outcome}``."""
    ids = _unique(ids)
    if not ids:
        return {}
    with database.atomic():
        existing = {
            str(run_id)
            for (run_id,) in FlowRun.select(FlowRun.id).where(FlowRun.id.in_(ids)).tuples()
        }
        parent_tasks = TaskRun.select(TaskRun.id).where(TaskRun.flow_run.in_(ids))
        (
            FlowRun.update(parent_task_run_id=None)
            .where(FlowRun.parent_task_run_id.in_(parent_tasks))
            .execute()
        )
        mark_deleted_runs_stale(FlowRun.id.in_(ids))
        FlowRun.delete().where(FlowRun.id.in_(ids)).execute()
    return {run_id: DONE if run_id in existing else "no longer exists" for run_id in ids}


ACTIONS = {"cancel": cancel, "retry": retry, "delete": delete}
