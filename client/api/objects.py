"""Light response objects: the API's JSON with attribute access.

Every JSON object the client returns is an :class:`APIObject`: a ``dict`` (so it is the JSON,
serialisable as is, and ``run["id"]`` works) whose attributes read its keys. Attribute access
converts what users compare and compute with: time fields (``created``, ``start_time``,
``expected_start_time``, ``timestamp`` ...) read as aware datetimes, and ``state`` reads as a
:class:`client.api.states.State`. Ids stay strings and durations stay float seconds
(``total_run_time``, ``estimated_run_time``). Nothing is converted until it is read, so a page
of 200 runs costs one ``json.loads``.
"""

import json
from collections.abc import Mapping
from typing import Any

from client.api.states import SetStateStatus, State, parse_datetime

__all__ = ["APIObject", "OrchestrationResult", "loads"]

_TIME_KEYS = frozenset(
    {
        "created",
        "updated",
        "timestamp",
        "expected_start_time",
        "next_scheduled_start_time",
        "start_time",
        "end_time",
        "state_timestamp",
        "cache_expiration",
        "scheduled_time",
        "pause_timeout",
        "interval_start",
        "interval_end",
        "last_heartbeat",
    }
)


class APIObject(dict):
    """A JSON object with attribute access (see the module docstring); a missing key is an
    AttributeError."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        if value is None:
            return None
        if name in _TIME_KEYS:
            return parse_datetime(value)
        if name == "state":
            return State.from_json(value)
        return value


def loads(content: str | bytes) -> Any:
    """Parse a JSON response body, every object becoming an :class:`APIObject`."""
    return json.loads(content, object_hook=APIObject)


class OrchestrationResult:
    """The answer to a proposed state: ``status`` (SetStateStatus), ``state`` (the State to
    adopt, or None), ``details`` (APIObject: ``type``, plus ``reason`` and for WAIT
    ``delay_seconds``)."""

    __slots__ = ("status", "state", "details")

    def __init__(self, status: SetStateStatus, state: State | None, details: APIObject) -> None:
        self.status = status
        self.state = state
        self.details = details

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "OrchestrationResult":
        state = data.get("state")
        return cls(
            SetStateStatus(data["status"]),
            State.from_json(state) if state is not None else None,
            data.get("details") or APIObject(type=None),
        )

    def __repr__(self) -> str:
        return f"OrchestrationResult(status={self.status.value}, state={self.state!r})"
