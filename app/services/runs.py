"""What flow runs and task runs share: reading with the current state, initial states."""
import uuid

from peewee import JOIN

from app.models import utcnow
from app.orchestration.bookkeeping import apply_transition, stamp_state_details
from app.states import StateType


def with_state(model, state_model):
    """Select runs of ``model`` with their current state row joined in as ``run.state``."""
    return model.select(model, state_model).join(
        state_model, JOIN.LEFT_OUTER, on=(model.state_id == state_model.id), attr="state"
    )


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
