"""The client's one JSON encoder: the API's form of the values JSON cannot write by itself.

Request bodies (:func:`dumps`) and state details (:mod:`client.api.states`) go through it, so a
datetime or an id is written the same way wherever it appears.
"""

import datetime
import json
import uuid
from typing import Any


def json_value(value: Any) -> Any:
    """``value`` in the API's JSON form: an aware datetime as ISO 8601, a UUID as its string,
    a set as a list, an object with ``to_json()`` (a State) as what that returns. Any other
    value is returned as it is. A naive datetime raises ValueError: the API's times carry a
    time zone."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError(f"Naive datetime {value!r}: give a time zone.")
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if callable(getattr(value, "to_json", None)):
        return value.to_json()
    return value


def dumps(body: Any) -> str:
    """``body`` as compact JSON text, values converted by :func:`json_value`; TypeError for a
    value that has no JSON form."""
    return json.dumps(body, default=_default, separators=(",", ":"), ensure_ascii=False)


def _default(value: Any) -> Any:
    encoded = json_value(value)
    if encoded is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")
    return encoded
