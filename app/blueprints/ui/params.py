"""Reading the dashboard's query and form parameters; anything unusable is a BadParameter.

Times in the address are ISO 8601. A time without an offset is a wall-clock time in the zone
the form sent along (``tz``, the browser's zone, filled in by the dashboard's script), else
UTC; each form says which zone it uses.
"""

import datetime
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError

from app.blueprints.ui import BadParameter
from app.states import STATE_TYPE_VALUES

UTC = datetime.UTC
# The forms' hidden field with the zone their times are in (filled in by orion.js).
ZONE_FIELD = "tz"


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


def zone(args, name=ZONE_FIELD):
    """The IANA time zone name of the parameter ``name`` ("UTC" if absent): the zone a form's
    times without an offset are in (the browser's, sent by the dashboard's script)."""
    value = (args.get(name) or "").strip()
    if not value:
        return "UTC"
    try:
        if len(value) > 100:
            raise ValueError(value)
        ZoneInfo(value)
    # OSError: a key naming a directory of the zone database ("America").
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadParameter(
            name, f"{value[:100]!r} is not a time zone (use an IANA name such as Europe/Berlin)."
        ) from None
    return value


def timestamp(args, name, timezone="UTC"):
    """An ISO 8601 time as an aware UTC datetime, or None if absent. A time without an
    offset is a wall-clock time in ``timezone`` (an IANA name; see :func:`zone`)."""
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, f"{value!r} is not a time (use 2026-01-31T13:45).") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed.astimezone(UTC)


def wall_time(when, timezone="UTC"):
    """A UTC datetime as the value of a ``datetime-local`` input: its wall-clock time in
    ``timezone``, to the second ('' for None)."""
    if when is None:
        return ""
    return when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M:%S")


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


def flat_messages(messages):
    """Marshmallow's messages (strings, lists and dicts of them) as a flat list."""
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):
        messages = list(messages.values())
    return [text for item in messages for text in flat_messages(item)]


def schema_errors(error):
    """A schema's refusal (ValidationError) as ``{field: its messages in one text}``."""
    return {
        field: " ".join(flat_messages(problems))
        for field, problems in error.normalized_messages().items()
    }


def load_form(schema, form):
    """``(values, errors)`` of a form's values loaded by an API schema, so a form's rules and
    messages are the API's: the loaded values and no errors, or the form as given and
    :func:`schema_errors`."""
    try:
        return schema.load(form), {}
    except ValidationError as error:
        return form, schema_errors(error)
