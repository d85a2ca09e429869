"""Queries behind the endpoints Prefect's web UI calls (``/api/ui/...``)."""

import datetime
from collections.abc import Mapping
from typing import Any

from peewee import fn

from app.exceptions import InvalidData
from app.models import FlowRun, TaskRun, utcnow
from app.services import filters
from app.states import STATE_TYPE_VALUES, TERMINAL_STATES, StateType

DASHBOARD_BUCKETS = 20
_FAILED = (StateType.FAILED.value, StateType.CRASHED.value)
_TERMINAL = [state.value for state in TERMINAL_STATES]


def read_flow_run_history(body: Mapping[str, Any]) -> tuple[list[Any], datetime.datetime]:
    """Flow runs matching a filter body, sorted and paged, with only what the history chart
    reads: id, state type, start / expected start, run time and lateness columns. Returns
    ``(runs, now)``, ``now`` being the time their running time and lateness are counted to."""
    query = FlowRun.select(
        FlowRun.id,
        FlowRun.state_type,
        FlowRun.state_timestamp,
        FlowRun.start_time,
        FlowRun.expected_start_time,
        FlowRun.total_run_time,
    )
    query = filters.apply_filters(query, FlowRun, body)
    return list(filters.sort_and_page(query, FlowRun, body)), utcnow()


def task_run_dashboard_counts(
    body: Mapping[str, Any], now: datetime.datetime | None = None
) -> list[dict[str, int]]:
    """Finished task runs per time bucket: ``DASHBOARD_BUCKETS`` equal buckets from
    ``task_runs.start_time.after_`` (floored to the minute) to ``before_`` (or now), at the end
    of its minute; each ``{"completed", "failed"}`` (failed: FAILED or CRASHED; completed: the
    other final states), by the task run's start time, as Prefect 2.20's dashboard reads."""
    now = now or utcnow()
    window = body["task_runs"]["start_time"]
    start = window["after_"].replace(second=0, microsecond=0)
    end = (
        (window.get("before_") or now).replace(second=0, microsecond=0)
        + datetime.timedelta(minutes=1)
        - datetime.timedelta(microseconds=1)
    )
    delta = (end - start) / DASHBOARD_BUCKETS
    counts = [{"completed": 0, "failed": 0} for _ in range(DASHBOARD_BUCKETS)]
    if delta <= datetime.timedelta(0):
        return counts
    query = TaskRun.select(TaskRun.start_time, TaskRun.state_type).where(
        TaskRun.state_type.in_(_TERMINAL) & TaskRun.start_time.is_null(False)
    )
    for run in filters.apply_filters(query, TaskRun, body).iterator():
        index = int((run.start_time - start) / delta)
        if 0 <= index < DASHBOARD_BUCKETS:
            counts[index]["failed" if run.state_type in _FAILED else "completed"] += 1
    return counts


def count_task_runs_by_state(body: Mapping[str, Any]) -> dict[str, int]:
    """``{STATE_TYPE: count}`` of the task runs matching a filter body, every type present."""
    counts = dict.fromkeys(STATE_TYPE_VALUES, 0)
    query = TaskRun.select(TaskRun.state_type, fn.COUNT(TaskRun.id).alias("n")).group_by(
        TaskRun.state_type
    )
    for state_type, count in filters.apply_filters(query, TaskRun, body).tuples():
        if state_type in counts:
            counts[state_type] = count
    return counts


def validate_values(schema: Any, values: Any) -> dict[str, Any]:
    """Check ``values`` against a JSON schema (2020-12); returns Prefect 2.20's error object,
    ``{"errors": [...], "valid": bool}``: a message for an error at the root, ``{"property":
    name, "errors": [...]}`` or ``{"index": i, "errors": [...]}`` nested along the error's path
    (a missing required property is reported under that property). Values are checked as
    sent (Prefect's placeholders, ``{"__prefect_kind": ...}``, are not hydrated). Raises
    InvalidData (at ``body.schema``) for a schema that is not one."""
    import jsonschema  # on first use: app/services/__init__.py says why

    validator_class = jsonschema.Draft202012Validator
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise InvalidData(f"Invalid schema: {error.message}", ["body", "schema"]) from None
    try:
        errors = sorted(
            validator_class(schema).iter_errors(values), key=lambda e: [str(p) for p in e.path]
        )
    except (jsonschema.exceptions.RefResolutionError, RecursionError) as error:
        raise InvalidData(f"Invalid schema: {error}", ["body", "schema"]) from None
    root: list[Any] = []
    for problem in errors:
        path = list(problem.relative_path)
        if problem.validator == "required":
            # One error per missing property: "'name' is a required property".
            path.append(problem.message.split(" ")[0].strip("'"))
        current = root
        if not path:
            current.append(problem.message)
        for position, part in enumerate(path):
            key = "index" if isinstance(part, int) else "property"
            last = position == len(path) - 1
            entry = next((e for e in current if isinstance(e, dict) and e.get(key) == part), None)
            if entry is None:
                entry = {key: part, "errors": []}
                current.append(entry)
            if last:
                entry["errors"].append(problem.message)
            current = entry["errors"]
    return {"errors": root, "valid": not root}
