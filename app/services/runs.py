"""What flow runs and task runs share: reading with the current state, initial states."""

import collections
import datetime
import functools
import json
import operator
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from peewee import JOIN, SQL, BooleanField, Case, Column, JSONField, UUIDField, fn

from app.db import database, is_sqlite
from app.exceptions import ObjectNotFound
from app.models import FlowRun, UTCDateTimeField, utcnow
from app.models.base import BaseModel
from app.orchestration.bookkeeping import apply_transition, stamp_state_details
from app.services import filters
from app.services.common import Body, Id
from app.states import TERMINAL_STATES, StateType

# The C scanner: an attribute of every JSONDecoder that typeshed does not list.
_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_fromisoformat = datetime.datetime.fromisoformat


def with_state(model: type[BaseModel], state_model: type[BaseModel]) -> Any:
    """Select runs of ``model`` with their current state row joined in as ``run.state``."""
    return model.select(model, state_model).join(
        state_model, JOIN.LEFT_OUTER, on=(model.state_id == state_model.id), attr="state"
    )


def _decoder(field: Any, sqlite: bool) -> Callable[[Any], Any] | None:
    """A fast function from a raw driver value of ``field`` to what read rows carry.

    Rows carry aware UTC datetimes, parsed JSON and canonical UUID strings on both backends.
    PostgreSQL connections already deliver those (see ``app.db``); SQLite's text is converted
    here, JSON with the C scanner (stored JSON never has leading whitespace).
    """
    if not sqlite:
        return None
    if isinstance(field, UTCDateTimeField):
        return lambda v: None if v is None else _fromisoformat(v + "+00:00")
    if isinstance(field, JSONField):
        return lambda v: None if v is None else _scan_json(v, 0)[0]
    if isinstance(field, UUIDField) or getattr(field, "rel_field", None) is not None:
        return lambda v: (
            None if v is None else (f"{v[:8]}-{v[8:12]}-{v[12:16]}-{v[16:20]}-{v[20:]}")
        )
    if isinstance(field, BooleanField):
        return lambda v: None if v is None else bool(v)
    return None


@functools.cache
def _row_reader(
    model: type[BaseModel], state_model: type[BaseModel], sqlite: bool
) -> tuple[Any, ...]:
    """Column lists, decoders and row types for :func:`fetch_runs` (built once per model)."""
    run_fields = model._meta.sorted_fields
    state_fields = state_model._meta.sorted_fields
    # Row types made at run time, one per model: mypy cannot know their fields.
    run_row = collections.namedtuple(  # type: ignore[misc]
        f"{model.__name__}Row", [f.column_name for f in run_fields] + ["state"]
    )
    state_row = collections.namedtuple(  # type: ignore[misc]
        f"{state_model.__name__}Row", [f.column_name for f in state_fields]
    )
    return (
        run_fields + state_fields,
        [_decoder(f, sqlite) for f in run_fields],
        [_decoder(f, sqlite) for f in state_fields],
        run_row,
        state_row,
    )


def fetch_runs(query: Any, model: type[BaseModel], state_model: type[BaseModel]) -> list[Any]:
    """Execute a :func:`with_state` query and return light, read-only rows.

    Hydrating peewee model instances for a page of 200 joined runs costs several times the SQL
    itself. These rows are named tuples with the same values, attributes named by column (so
    ``flow_id``) plus ``state`` (a row, or None), which is all the response dumpers read. Ids
    are canonical UUID strings.
    """
    fields, run_decoders, state_decoders, run_row, state_row = _row_reader(
        model,  # type: ignore[arg-type]  # model classes hash
        state_model,  # type: ignore[arg-type]
        is_sqlite(),
    )
    split = len(run_decoders)
    rows = []
    for raw in database.execute(query.select(*fields)):
        state = None
        if raw[split] is not None:
            state = state_row._make(
                [
                    decode(value) if decode else value
                    for decode, value in zip(state_decoders, raw[split:])
                ]
            )
        values = [decode(value) if decode else value for decode, value in zip(run_decoders, raw)]
        values.append(state)
        rows.append(run_row._make(values))
    return rows


def fetch_columns(query: Any, fields: tuple[Any, ...]) -> list[Any]:
    """Execute ``query`` for only ``fields`` (of one model) and return light, read-only rows:
    named tuples with an attribute per field, named by column, decoded as :func:`fetch_runs`
    decodes them (a page that lists a thousand runs reads what it shows, not every column
    of the run and its state row)."""
    sqlite = is_sqlite()
    decoders = [_decoder(field, sqlite) for field in fields]
    row = _columns_row(tuple(field.column_name for field in fields))
    return [
        row._make([decode(value) if decode else value for decode, value in zip(decoders, raw)])
        for raw in database.execute(query.select(*fields))
    ]


@functools.cache
def _columns_row(names: tuple[str, ...]) -> Any:
    """The row type of :func:`fetch_columns` for these column names (made once)."""
    return collections.namedtuple("ColumnsRow", names)


def read_run(model: type[BaseModel], state_model: type[BaseModel], run_id: Id, label: str) -> Any:
    """One run with its state as a read row (see :func:`fetch_runs`); ObjectNotFound if none."""
    for row in fetch_runs(
        with_state(model, state_model).where(model.id == run_id), model, state_model
    ):
        return row
    raise ObjectNotFound(f"{label} {run_id} not found.")


# Per model, the sorts whose key follows the state type in an index of the model, so that a page
# of runs in one state is a search of that state's range in the sort's order (START_TIME_*:
# ``flow_run_state_type_start_or_expected``; END_TIME_DESC, NAME_*: migration 0029's, SQLite
# only so far, PostgreSQL walks the sort's index per part as it did for the whole list;
# NEXT_SCHEDULED_START_TIME_ASC: ``(state_type, next_scheduled_start_time)``). Task runs have
# no such indexes: a part would read every task run of its state and sort them. Not split:
# ID_DESC and EXPECTED_START_TIME_* (FAILED+CRASHED by expected start reads the partial index
# on exactly that list, ``flow_run_failed_expected_start_time``; a part per state would not).
STATE_ORDERED_SORTS = {
    FlowRun: (
        "START_TIME_ASC",
        "START_TIME_DESC",
        "END_TIME_DESC",
        "NAME_ASC",
        "NAME_DESC",
        "NEXT_SCHEDULED_START_TIME_ASC",
    ),
}
# Split a page by state only while its parts hold at most this many runs in all (each part
# ``offset + limit``): the dashboard's deepest page (100, 51 runs at offset 4,950) of up to four
# states. On the bench's 1,000,000 runs the parts were quicker than the one query at every
# depth measured, up to four parts of 5,001 (90 ms against 265) and two of 10,001 (99 against
# 549); past that, unmeasured, the one query (bench/README.md, several states under every sort).
STATE_PARTS_MAX_RUNS = 25_000


def _state_parts(model: type[BaseModel], body: Body) -> list[Body]:
    """The body as one body per state type of its run filter's state type list, each asking
    for the first ``offset + limit`` runs of its state, or [] when it is not split.

    Split when the list holds several state types, the sort is in :data:`STATE_ORDERED_SORTS`,
    every operator around the list is ``and_`` (so each part's runs are one state's range of
    the sort's index; under ``or_`` the parts would still cover the same runs, but each would
    be no cheaper than the whole) and the parts stay within :data:`STATE_PARTS_MAX_RUNS`.
    """
    criteria = body.get(filters.FILTER_KEYS[model]) or {}
    state = criteria.get("state") or {}
    types = state.get("type") or {}
    listed = list(dict.fromkeys(types.get("any_") or ()))
    limit, offset = body.get("limit"), body.get("offset") or 0
    if (
        len(listed) < 2
        or body.get("sort") not in STATE_ORDERED_SORTS.get(model, ())
        or limit is None
        or len(listed) * (offset + limit) > STATE_PARTS_MAX_RUNS
        or "or_" in (criteria.get("operator"), state.get("operator"), types.get("operator"))
    ):
        return []
    key = filters.FILTER_KEYS[model]
    return [
        {
            **body,
            key: {**criteria, "state": {**state, "type": {**types, "any_": [state_type]}}},
            "limit": offset + limit,
            "offset": 0,
        }
        for state_type in listed
    ]


def _key(model: type[BaseModel]) -> Any:
    """The column that finds a run's row quickest: SQLite's rowid, PostgreSQL's id."""
    return Column(model, "rowid") if is_sqlite() else model.id


def _filtered(query: Any, model: type[BaseModel], body: Body) -> Any:
    """``query`` (selecting ``model``) restricted to runs that may be on the body's page.

    Usually the body's filter (:func:`filters.apply_filters`). When the run filter lists
    several state types (:func:`_state_parts`), instead the runs of a ``UNION ALL`` of one
    sorted part per state type, each the first ``offset + limit`` runs of its state. The
    parts' filters together match the body's runs (a criterion is never negated), each a
    subset, so every run of the page is among the first ``offset + limit`` of its own part,
    and sorting and paging the parts' runs gives the same page. Two states are not one
    ordered range of an index: SQLite walked the sort's index testing each run's state
    (FAILED+CRASHED by end time or by name: 270-290 ms p50 of 1,000,000 runs); each part is
    a search of one state's range of an index in the sort's order, stopped at its limit
    (bench/README.md, several states under every sort). Each part's state is one bound value
    (``state_type = ?`` to SQLite), so its bound ``LIMIT ?`` plans the same as a literal one.
    """
    parts = _state_parts(model, body)
    if not parts:
        return filters.apply_filters(query, model, body)
    key = _key(model)
    selects = [
        filters.sort_and_page(filters.apply_filters(model.select(key), model, part), model, part)
        for part in parts
    ]
    return query.where(key.in_(functools.reduce(operator.add, selects)))


def page_keys(model: type[BaseModel], body: Body) -> Any:
    """The keys of the ``model`` runs on the page a filter body asks for, as a subquery
    (filtered, sorted and paged as the body says) that reads no state: SQLite's rowids,
    PostgreSQL's ids."""
    keys = model.select(_key(model))
    return filters.sort_and_page(_filtered(keys, model, body), model, body)


def read_page(model: type[BaseModel], state_model: type[BaseModel], body: Body) -> list[Any]:
    """The page of runs a filter body asks for, with their states, as read rows.

    The same rows in the same order as one query of the runs joined to their current state,
    filtered, sorted and paged (every sort ends with the unique id, so the order is total).
    The first page is that query (but see :func:`_defers_first_page`). A page past the first
    is a deferred join: the page's keys are chosen first (:func:`page_keys`), then only
    those runs are read, joined to their states and sorted again. ``OFFSET`` walks every
    skipped run: this way the database walks them in an index alone where one covers the
    filter and the sort (on SQLite the dashboard's START_TIME_DESC through migration 0028's
    index, ID_DESC, END_TIME_DESC; on both, a state or a flow by end time or name through
    migrations 0029 and 0030) and otherwise still joins no state for them (bench/README.md,
    page 100 of the dashboard's runs list, and the deep pages of one state on PostgreSQL). A
    filter of several state types chooses among one sorted part per state on both backends
    (:func:`_filtered`).
    """
    if not body.get("offset") and not _defers_first_page(model, body):
        query = _filtered(with_state(model, state_model), model, body)
        return fetch_runs(filters.sort_and_page(query, model, body), model, state_model)
    chosen = _key(model).in_(page_keys(model, body))
    query = filters.apply_sort(
        with_state(model, state_model).where(chosen), model, body.get("sort")
    )
    return fetch_runs(query, model, state_model)


def _defers_first_page(model: type[BaseModel], body: Body) -> bool:
    """Whether the first page is a deferred join too: on PostgreSQL, when the body's run
    filter has a "name contains" (``like_``).

    Searching 1,000,000 runs for a name few hold ("otter-12", 1,110 runs), PostgreSQL
    costed the trigram index's matches each joined to its state (before the ``LIMIT``) above
    walking the runs newest first testing every name, and walked 46,000 of them: 90-130 ms.
    Choosing the page's keys first, with no state joined, it reads the index's matches when
    few runs hold the text (migration 0032 makes that estimate right) and walks when many
    do ("otter": 1 run in 10): 5-9 ms either way. SQLite plans its search by a count
    (:func:`app.models.runs.name_contains`) and was 1 ms quicker in one query (bench/README.md).
    """
    if is_sqlite():
        return False
    criteria = body.get(filters.FILTER_KEYS[model]) or {}
    return bool((criteria.get("name") or {}).get("like_"))


def initial_state(
    run: Any, state_model: type[BaseModel], proposed: Mapping[str, Any] | None, *, is_task: bool
) -> Any:
    """Build the first state row of an unsaved ``run`` and update the run's columns for it.

    ``proposed`` is a loaded state payload (type, name, message, data, state_details); None
    means Pending. The state is written as given, without orchestration rules, as Orion does
    when a run is created with a state. A SCHEDULED state without a ``scheduled_time`` is
    scheduled for now. Returns the unsaved state row; the caller inserts run, then state.
    """
    now = utcnow()
    proposed = proposed or {"type": StateType.PENDING.value, "name": "Pending"}
    details = stamp_state_details(run, proposed.get("state_details") or {}, is_task=is_task)
    if proposed["type"] == StateType.SCHEDULED.value and not details.get("scheduled_time"):
        details["scheduled_time"] = now.isoformat()
    state = state_model(
        id=uuid.uuid4(),
        type=proposed["type"],
        name=proposed["name"],
        timestamp=now,
        message=proposed.get("message"),
        data=proposed.get("data"),
        state_details=details,
        created=now,
        updated=now,
    )
    apply_transition(run, None, state, is_task=is_task)
    return state


def seconds_between(later: Any, earlier: Any) -> Any:
    """SQL expression: seconds from ``earlier`` to ``later`` (timestamps or parameters)."""
    if is_sqlite():
        return (fn.julianday(later) - fn.julianday(earlier)) * 86400.0
    return fn.date_part(SQL("'epoch'"), later - earlier)


def read_run_history(
    model: type[BaseModel],
    start: datetime.datetime,
    end: datetime.datetime,
    interval_seconds: float,
    body: Body,
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """Counts of ``model``'s runs (flow runs or task runs) per state in fixed time buckets,
    by expected start time.

    Returns one entry per bucket from ``start`` (inclusive) to ``end``, each with
    ``interval_start``, ``interval_end`` and a ``states`` list of ``{state_type, state_name,
    count_runs, sum_estimated_run_time, sum_estimated_lateness}`` (seconds). Bucketing and
    sums happen in the database, so the cost does not grow with the number of runs returned.
    """
    now = now or utcnow()
    start_param = model.expected_start_time.db_value(start)
    now_param = model.expected_start_time.db_value(now)
    bucket = fn.floor(
        seconds_between(model.expected_start_time, start_param) / float(interval_seconds)
    )
    run_time = model.total_run_time + Case(
        None,
        [(model.state_type == "RUNNING", seconds_between(now_param, model.state_timestamp))],
        0.0,
    )
    terminal = [t.value for t in TERMINAL_STATES]
    lateness = Case(
        None,
        [
            (
                model.start_time.is_null(False) & (model.start_time > model.expected_start_time),
                seconds_between(model.start_time, model.expected_start_time),
            ),
            (
                model.start_time.is_null()
                & model.state_type.not_in(terminal)
                & (model.expected_start_time < now_param),
                seconds_between(now_param, model.expected_start_time),
            ),
        ],
        0.0,
    )
    query = (
        model.select(
            bucket.alias("bucket"),
            model.state_type,
            model.state_name,
            fn.COUNT(model.id).alias("count_runs"),
            fn.SUM(run_time).alias("run_time"),
            fn.SUM(lateness).alias("lateness"),
        )
        .where(
            (model.expected_start_time >= start)
            & (model.expected_start_time < end)
            & model.state_type.is_null(False)
        )
        .group_by(bucket, model.state_type, model.state_name)
    )
    query = filters.apply_filters(query, model, body)
    interval = datetime.timedelta(seconds=interval_seconds)
    buckets: list[dict[str, Any]] = []
    bucket_start = start
    while bucket_start < end or not buckets:
        buckets.append(
            {"interval_start": bucket_start, "interval_end": bucket_start + interval, "states": []}
        )
        bucket_start += interval
    for row in query.dicts():
        index = int(row["bucket"])
        if 0 <= index < len(buckets):
            buckets[index]["states"].append(
                {
                    "state_type": row["state_type"],
                    "state_name": row["state_name"],
                    "count_runs": row["count_runs"],
                    "sum_estimated_run_time": float(row["run_time"] or 0.0),
                    "sum_estimated_lateness": float(row["lateness"] or 0.0),
                }
            )
    for entry in buckets:
        entry["states"].sort(key=lambda s: (s["state_type"], s["state_name"]))
    return buckets
