"""State types and names shared by schemas, models and orchestration (a leaf module)."""

import enum


class StateType(str, enum.Enum):
    """The type of a run state; values are the upper-case strings of the API."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"


TERMINAL_STATES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)

STATE_TYPE_VALUES = tuple(t.value for t in StateType)


def default_state_name(state_type):
    """The name a state gets when none is given: the type capitalised ("Running")."""
    return StateType(state_type).value.capitalize()
