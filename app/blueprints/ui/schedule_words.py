"""A deployment's stored schedule in words (``"Every day at 09:00"``), for the pages.

Common cron shapes and every interval get words; anything else is shown as its expression.
The time zone is not part of the words: pages show it next to them.
"""

import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
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


def _number(text, low, high):
    return text.isdigit() and low <= int(text) <= high


def _days(field):
    """Cron day-of-week field in words ('' for every day), or None if not a simple one."""
    if field == "*":
        return ""
    if field in ("1-5", "MON-FRI", "mon-fri"):
        return " on weekdays"
    days = []
    for part in field.split(","):
        if not _number(part, 0, 7):
            return None
        days.append(_DAYS[int(part) % 7])
    return " on " + ", ".join(days)


def cron_words(expression):
    """Words for a 5-field cron expression of a common shape, or None."""
    parts = expression.split()
    if len(parts) != 5:
        return None
    minute, hour, dom, month, dow = parts
    if dom != "*" or month != "*":
        return None
    days = _days(dow)
    if days is None:
        return None
    if minute.startswith("*/") and _number(minute[2:], 1, 59) and hour == "*":
        return _every(int(minute[2:]), "minute") + days
    if minute == "*" and hour == "*":
        return "Every minute" + days
    if not _number(minute, 0, 59):
        return None
    if hour == "*":
        return f"Every hour at minute {int(minute)}" + days
    if hour.startswith("*/") and _number(hour[2:], 1, 23):
        return _every(int(hour[2:]), "hour") + f" at minute {int(minute)}" + days
    hours = hour.split(",")
    if all(_number(h, 0, 23) for h in hours):
        times = ", ".join(f"{int(h):02d}:{int(minute):02d}" for h in hours)
        return ("Every day" if not days else days.strip().capitalize()) + f" at {times}"
    return None


def describe(schedule):
    """``(words, expression)`` for a stored schedule: the words, and the cron or rrule text
    (None for intervals); ``("No schedule", None)`` without one."""
    if not schedule:
        return "No schedule", None
    if "interval" in schedule:
        return _interval_words(schedule), None
    if "cron" in schedule:
        return cron_words(schedule["cron"]) or "Cron schedule", schedule["cron"]
    if "rrule" in schedule:
        return "Recurrence rule", schedule["rrule"]
    return "Unknown schedule", None
