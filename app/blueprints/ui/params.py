"""Reading the dashboard's query and form parameters; anything unusable is a BadParameter.

Times in the address are ISO 8601; a time without an offset is UTC (the forms say so).
"""

import datetime
import uuid

from app.blueprints.ui import BadParameter
from app.states import STATE_TYPE_VALUES

UTC = datetime.UTC


def one_of(args, name, choices, default):
    """The parameter ``name``, which must be one of ``choices`` (``default`` if absent)."""
    value = args.get(name) or default
    if value not in choices:
        raise BadParameter(name, f"{value!r} is not one of {', '.join(choices)}.")
    return value


def uuids(args, name, most=200):
    """Every value of the repeatable parameter ``name`` as UUID strings (at most ``most``)."""
    values = [v for v in args.getlist(name) if v]
    if len(values) > most:
        raise BadParameter(name, f"at most {most} values are accepted.")
    try:
        return [str(uuid.UUID(value)) for value in values]
    except ValueError:
        raise BadParameter(name, "expected ids (UUIDs).") from None


def state_types(args, name="state"):
    """Every value of the repeatable state parameter, each a state type."""
    values = [v for v in args.getlist(name) if v]
    for value in values:
        if value not in STATE_TYPE_VALUES:
            raise BadParameter(name, f"{value!r} is not a state ({', '.join(STATE_TYPE_VALUES)}).")
    return list(dict.fromkeys(values))


def text(args, name, most=200):
    """A trimmed text parameter ('' if absent), at most ``most`` characters."""
    value = (args.get(name) or "").strip()
    if len(value) > most:
        raise BadParameter(name, f"at most {most} characters are accepted.")
    return value


def tags(args, name="tags"):
    """A comma-separated list of tags, without blanks or duplicates."""
    return list(dict.fromkeys(t.strip() for t in text(args, name, 1000).split(",") if t.strip()))


def timestamp(args, name):
    """An ISO 8601 time as an aware UTC datetime, or None if absent."""
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, f"{value!r} is not a time (use 2026-01-31T13:45).") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def integer(args, name, default, low, high):
    """An integer parameter between ``low`` and ``high`` (``default`` if absent)."""
    value = args.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(name, f"{value!r} is not a whole number.") from None
    if not low <= number <= high:
        raise BadParameter(name, f"must be between {low} and {high}.")
    return number
