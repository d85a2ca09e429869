"""A deployment's stored schedule in words (``"At 09:00, Monday through Friday"``), for the pages.

Intervals get words here; cron expressions (nicknames such as ``@daily`` included) get
cron-descriptor's (``"At 09:00, Monday through Friday"``); an rrule is shown as its text.
The time zone is not part of the words: pages show it next to them.
"""

import datetime
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import ExpressionDescriptor, Options
from cron_descriptor.Exception import (
    FormatException,
    MissingFieldException,
    WrongArgumentException,
)

_UNITS = [(7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")]


def _every(count, unit):
    return f"Every {unit}" if count == 1 else f"Every {count:g} {unit}s"


def _interval_words(schedule):
    seconds = float(schedule["interval"])
    for size, unit in _UNITS:
        if seconds >= size and seconds % size == 0:
            words = _every(seconds / size, unit)
            break
    else:
        words = _every(seconds, "second")
    if seconds % 86400 == 0 and schedule.get("anchor_date"):
        try:
            anchor = datetime.datetime.fromisoformat(schedule["anchor_date"])
            if anchor.tzinfo is not None:
                anchor = anchor.astimezone(ZoneInfo(schedule.get("timezone") or "UTC"))
        except (ValueError, ZoneInfoNotFoundError):
            return words
        # Whole-day intervals keep the anchor's wall-clock time in the schedule's zone.
        words += f" at {anchor:%H:%M}"
    return words


# Cron's nicknames, as the 5-field expressions croniter reads them as.
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _cron_options():
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    options.locale_code = "en_US"
    return options


_OPTIONS = _cron_options()
# What cron-descriptor raises on an expression it cannot describe (croniter reads more
# shapes than it does, e.g. a "H" hash field).
_UNREADABLE = (
    FormatException,
    MissingFieldException,
    WrongArgumentException,
    ValueError,
    IndexError,
    KeyError,
)


@functools.lru_cache(maxsize=1024)
def cron_words(expression, day_or=True):
    """Words for a cron expression or nickname (``"At 09:00, Monday through Friday"``), by
    cron-descriptor; None for one it cannot read. With ``day_or`` False (both day fields
    must match) its "or" between day of month and weekday becomes "and"."""
    expanded = _ALIASES.get(expression.strip().lower(), expression)
    try:
        words = ExpressionDescriptor(expanded, _OPTIONS).get_description()
    except _UNREADABLE:
        return None
    if not day_or:
        words = words.replace(", or on ", ", and on ", 1)
    return words


def describe(schedule):
    """``(words, expression)`` for a stored schedule: the words, and the cron or rrule text
    (None for intervals); ``("No schedule", None)`` without one."""
    if not schedule:
        return "No schedule", None
    if "interval" in schedule:
        return _interval_words(schedule), None
    if "cron" in schedule:
        words = cron_words(schedule["cron"], schedule.get("day_or", True) is not False)
        return words or "Cron schedule", schedule["cron"]
    if "rrule" in schedule:
        return "Recurrence rule", schedule["rrule"]
    return "Unknown schedule", None
