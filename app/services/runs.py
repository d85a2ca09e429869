"""What flow runs and task runs share: reading with the current state, initial states."""
import datetime
import json
import uuid
from types import SimpleNamespace

from peewee import JOIN, BooleanField, JSONField, UUIDField

from app.db import database, is_sqlite
from app.models import UTCDateTimeField, utcnow
from app.orchestration.bookkeeping import apply_transition, stamp_state_details
from app.states import StateType

UTC = datetime.timezone.utc
_scan_json = json.JSONDecoder().scan_once


def with_state(model, state_model):
    """Select runs of ``model`` with their current state row joined in as ``run.state``."""
    return model.select(model, state_model).join(
        state_model, JOIN.LEFT_OUTER, on=(model.state_id == state_model.id), attr="state"
    )


def _decoder(field, sqlite):
    """A fast function turning a raw driver value of ``field`` into its Python value.

    Same results as ``field.python_value``, minus peewee's generic per-value overhead; JSON on
    SQLite is read with the C scanner directly (stored JSON never has leading whitespace).
    """
    if isinstance(field, UTCDateTimeField):
        if sqlite:
            return lambda v: None if v is None else datetime.datetime.fromisoformat(v).replace(
                tzinfo=UTC)
        return lambda v: None if v is None else v.replace(tzinfo=UTC)
    if isinstance(field, JSONField):
        return (lambda v: None if v is None else _scan_json(v, 0)[0]) if sqlite else None
    if isinstance(field, UUIDField) or getattr(field, "rel_field", None) is not None:
        return (lambda v: None if v is None else uuid.UUID(v)) if sqlite else None
    if isinstance(field, BooleanField):
        return lambda v: None if v is None else bool(v)
    return None


def fetch_runs(query, model, state_model):
    """Execute a :func:`with_state` query and return light, read-only rows.

    Hydrating peewee model instances for a page of 200 joined runs costs several times the SQL
    itself; these rows carry the same values (attributes named by column, so ``flow_id``) and a
    ``state`` row (or None), which is all the response dumpers read.
    """
    sqlite = is_sqlite()
    run_fields = model._meta.sorted_fields
    state_fields = state_model._meta.sorted_fields
    query = query.select(*run_fields, *state_fields)
    run_columns = [(f.column_name, _decoder(f, sqlite)) for f in run_fields]
    state_columns = [(f.column_name, _decoder(f, sqlite)) for f in state_fields]
    split = len(run_columns)
    rows = []
    for raw in database.execute(query):
        run = SimpleNamespace(**{
            name: (decode(value) if decode else value)
            for (name, decode), value in zip(run_columns, raw[:split])
        })
        state_raw = raw[split:]
        run.state = None if state_raw[0] is None else SimpleNamespace(**{
            name: (decode(value) if decode else value)
            for (name, decode), value in zip(state_columns, state_raw)
        })
        rows.append(run)
    return rows


def initial_state(run, state_model, proposed, *, is_task):
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
