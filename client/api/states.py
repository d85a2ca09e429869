"""States as the client sees them: :class:`State`, constructors and predicates (Prefect 2 names).

A state is what a run is in (``type``) plus a display ``name``, ``message``, ``data`` and
``state_details``. Constructors (``Running()``, ``Failed(message=...)``, ``AwaitingRetry(
scheduled_time=...)`` ...) build a state to propose; the server's answers come back as
``State`` objects too (``State.from_json``).

Every state built here carries a fresh ``state_details["transition_id"]``: one ``State``
object is one proposal. The server treats a proposal whose transition id equals its current
state's as a retry of the same transition (it answers with the current state and writes
nothing), which is what makes the client's automatic retries of ``set_*_state`` safe. Build a
new state object for a new proposal; re-proposing the same object after a WAIT is fine.

``state_details`` is a :class:`StateDetails`: a dict of JSON values with attribute access, where
``scheduled_time``, ``cache_expiration`` and ``pause_timeout`` read as aware datetimes.
"""

import datetime
import enum
import uuid
from collections.abc import Mapping
from typing import Any

from client.api.encoding import json_value

__all__ = [
    "StateType",
    "TERMINAL_STATES",
    "State",
    "StateDetails",
    "SetStateStatus",
    "parse_datetime",
    "Scheduled",
    "Late",
    "AwaitingRetry",
    "Resuming",
    "Pending",
    "Running",
    "Retrying",
    "Rerunning",
    "Completed",
    "Cached",
    "Failed",
    "Crashed",
    "Cancelled",
    "Cancelling",
    "Paused",
    "NotReady",
]

_fromisoformat = datetime.datetime.fromisoformat


class StateType(str, enum.Enum):
    """The kinds of state (Orion 2.7). A ``str`` enum, so ``StateType.RUNNING == "RUNNING"``."""

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


class SetStateStatus(str, enum.Enum):
    """What orchestration decided about a proposed state."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    WAIT = "WAIT"
    ABORT = "ABORT"


def parse_datetime(value: str | datetime.datetime | None) -> datetime.datetime | None:
    """An ISO 8601 string as an aware datetime (``Z`` accepted); datetimes and None pass."""
    if value is None or isinstance(value, datetime.datetime):
        return value
    return _fromisoformat(value)


_DETAIL_TIMES = frozenset({"scheduled_time", "cache_expiration", "pause_timeout"})


class StateDetails(dict):
    """State details: JSON values, read as attributes (missing keys read as None).

    ``scheduled_time``, ``cache_expiration`` and ``pause_timeout`` read as aware datetimes;
    item access (``details["scheduled_time"]``) gives the JSON string.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self.get(name)
        if name in _DETAIL_TIMES and value is not None:
            return parse_datetime(value)
        return value


class State:
    """One state: ``type`` (StateType), ``name``, ``message``, ``data``, ``state_details``
    (StateDetails); ``id`` and ``timestamp`` (aware datetime) are set on states the server
    returned and None on states built here."""

    __slots__ = ("type", "name", "message", "data", "state_details", "id", "timestamp")

    def __init__(
        self,
        type: StateType | str,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        state_details: Mapping[str, Any] | None = None,
        id: str | None = None,
        timestamp: datetime.datetime | None = None,
    ) -> None:
        self.type = StateType(type)
        self.name = name or _DEFAULT_NAMES[self.type]
        self.message = message
        self.data = data
        details = StateDetails(state_details or ())
        if not details.get("transition_id"):
            details["transition_id"] = str(uuid.uuid4())
        self.state_details = details
        self.id = id
        self.timestamp = timestamp

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "State":
        """A state from the API's JSON (a dict); its details are kept as the server sent them."""
        state = cls.__new__(cls)
        state.type = StateType(data["type"])
        state.name = data.get("name") or _DEFAULT_NAMES[state.type]
        state.message = data.get("message")
        state.data = data.get("data")
        state.state_details = StateDetails(data.get("state_details") or ())
        state.id = data.get("id")
        state.timestamp = parse_datetime(data.get("timestamp"))
        return state

    def to_json(self) -> dict[str, Any]:
        """The JSON body of a proposal: type, name, message, data, state_details."""
        return {
            "type": self.type.value,
            "name": self.name,
            "message": self.message,
            "data": self.data,
            "state_details": {k: json_value(v) for k, v in self.state_details.items()},
        }

    def copy(self, **changes: Any) -> "State":
        """A copy with ``changes`` applied (a new transition id unless details are given)."""
        fields = {"type": self.type, "name": self.name, "message": self.message, "data": self.data}
        details = dict(self.state_details)
        details.pop("transition_id", None)
        fields["state_details"] = details
        fields.update(changes)
        return State(**fields)

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        """True for COMPLETED, FAILED, CANCELLED and CRASHED (nothing follows them)."""
        return self.type in TERMINAL_STATES

    def __repr__(self) -> str:
        message = f", message={self.message!r}" if self.message else ""
        return f"{self.name}(type={self.type.value}{message})"


_DEFAULT_NAMES = {
    StateType.SCHEDULED: "Scheduled",
    StateType.PENDING: "Pending",
    StateType.RUNNING: "Running",
    StateType.COMPLETED: "Completed",
    StateType.FAILED: "Failed",
    StateType.CANCELLED: "Cancelled",
    StateType.CRASHED: "Crashed",
    StateType.PAUSED: "Paused",
    StateType.CANCELLING: "Cancelling",
}


def _details(state_details: Mapping[str, Any] | None, **values: Any) -> dict[str, Any]:
    details = dict(state_details or ())
    for key, value in values.items():
        if value is not None:
            details[key] = json_value(value)
    return details


def Scheduled(
    scheduled_time: datetime.datetime | None = None,
    name: str = "Scheduled",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    """SCHEDULED at ``scheduled_time`` (aware datetime; None: the server uses now)."""
    return State(
        StateType.SCHEDULED,
        name,
        message,
        data,
        _details(state_details, scheduled_time=scheduled_time),
    )


def Late(
    scheduled_time: datetime.datetime | None = None,
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    """SCHEDULED, named Late (what the late-runs service writes)."""
    return Scheduled(scheduled_time, "Late", message, data, state_details)


def AwaitingRetry(
    scheduled_time: datetime.datetime | None = None,
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    """SCHEDULED, named AwaitingRetry: a retry due at ``scheduled_time``."""
    return Scheduled(scheduled_time, "AwaitingRetry", message, data, state_details)


def Resuming(
    scheduled_time: datetime.datetime | None = None,
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    """SCHEDULED, named Resuming: a paused run rescheduled to resume."""
    return Scheduled(scheduled_time, "Resuming", message, data, state_details)


def Pending(
    name: str = "Pending",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    return State(StateType.PENDING, name, message, data, state_details)


def Running(
    name: str = "Running",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
    cache_key: str | None = None,
    cache_expiration: datetime.datetime | None = None,
    refresh_cache: bool | None = None,
) -> State:
    """RUNNING; a task passes ``cache_key`` (and ``cache_expiration``) here so the server can
    answer with a Cached state instead."""
    return State(
        StateType.RUNNING,
        name,
        message,
        data,
        _details(
            state_details,
            cache_key=cache_key,
            cache_expiration=cache_expiration,
            refresh_cache=refresh_cache,
        ),
    )


def Retrying(
    message: str | None = None, data: Any = None, state_details: Mapping[str, Any] | None = None
) -> State:
    return Running("Retrying", message, data, state_details)


def Rerunning(
    message: str | None = None, data: Any = None, state_details: Mapping[str, Any] | None = None
) -> State:
    return Running("Rerunning", message, data, state_details)


def Completed(
    name: str = "Completed",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
    cache_key: str | None = None,
    cache_expiration: datetime.datetime | None = None,
) -> State:
    """COMPLETED; with ``cache_key`` the server records it in the task cache."""
    return State(
        StateType.COMPLETED,
        name,
        message,
        data,
        _details(state_details, cache_key=cache_key, cache_expiration=cache_expiration),
    )


def Cached(
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
    cache_key: str | None = None,
    cache_expiration: datetime.datetime | None = None,
) -> State:
    return Completed("Cached", message, data, state_details, cache_key, cache_expiration)


def Failed(
    name: str = "Failed",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    return State(StateType.FAILED, name, message, data, state_details)


def Crashed(
    name: str = "Crashed",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    return State(StateType.CRASHED, name, message, data, state_details)


def Cancelled(
    name: str = "Cancelled",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    return State(StateType.CANCELLED, name, message, data, state_details)


def Cancelling(
    name: str = "Cancelling",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    return State(StateType.CANCELLING, name, message, data, state_details)


def Paused(
    timeout_seconds: float | None = None,
    pause_expiration_time: datetime.datetime | None = None,
    reschedule: bool = False,
    pause_key: str | None = None,
    name: str = "Paused",
    message: str | None = None,
    data: Any = None,
    state_details: Mapping[str, Any] | None = None,
) -> State:
    """PAUSED until resumed, or until the pause expires: ``pause_expiration_time`` (aware
    datetime) or ``timeout_seconds`` from now (Prefect 2.7's signature; give one at most)."""
    if timeout_seconds is not None and pause_expiration_time is not None:
        raise ValueError("Give timeout_seconds or pause_expiration_time, not both.")
    if timeout_seconds is not None:
        pause_expiration_time = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            seconds=timeout_seconds
        )
    details = _details(state_details, pause_timeout=pause_expiration_time, pause_key=pause_key)
    details["pause_reschedule"] = bool(reschedule)
    return State(StateType.PAUSED, name, message, data, details)


def NotReady(
    message: str | None = None, data: Any = None, state_details: Mapping[str, Any] | None = None
) -> State:
    """PAUSED, named NotReady (a task that tried to start in a paused flow)."""
    return State(StateType.PAUSED, "NotReady", message, data, state_details)
