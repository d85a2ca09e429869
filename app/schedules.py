"""Deployment schedules: interval, cron and rrule, each in a time zone (a leaf module).

A schedule is stored on its deployment as JSON, in one of Orion's three shapes:

- interval: ``{"interval": seconds, "anchor_date": ISO-8601, "timezone": name}``
- cron:     ``{"cron": "0 9 * * 1-5", "timezone": name, "day_or": true}``
- rrule:    ``{"rrule": "DTSTART:20260101T090000\\nRRULE:FREQ=WEEKLY;BYDAY=MO", "timezone": name}``

:func:`parse_schedule` turns such a dict into a schedule object (``ScheduleError`` says what is
wrong) and ``schedule.to_json()`` gives the normalised dict back. ``schedule.get_dates(n,
start, end)`` lists the run times.

Time zones and daylight saving time
-----------------------------------
Cron and rrule schedules name *wall-clock* times in their ``timezone`` (IANA name, default
UTC). A ``null`` time zone is kept as given by each kind as Prefect 2.7's server keeps it: a
cron schedule stores ``null`` (and runs in UTC), an interval takes ``UTC`` and an rrule its
``TZID`` or ``UTC``. Around a DST switch a wall-clock time may not exist or may exist twice:

- a time in the spring-forward gap runs as many minutes after the switch as it was meant to
  run after the gap's start (Europe/Berlin 02:30 on the last Sunday of March runs at 03:30
  CEST), and a time the gap makes equal to a later one runs once;
- a time repeated by the fall-back runs once, at its first occurrence (02:30 CEST).

So a daily 02:30 Europe/Berlin schedule runs exactly once every day. One exception, for
cron only: an expression whose hour field matches every hour (``*``) also runs at the second
occurrence of each repeated time, so an hourly cron job runs once per elapsed hour: 23 runs
on the spring-forward day and 25 on the fall-back day (as Vixie cron does). An hourly
*rrule* follows the general rules: 23 runs and 24 runs (the repeated hour runs once).

Interval schedules count real time from ``anchor_date``: an interval of whole days keeps the
anchor's wall-clock time in ``timezone`` (daily at 09:00 stays at 09:00 through DST, with the
gap and repeat rules above); the part of an interval below a day is added as elapsed time
(an interval of 3600 s runs every real hour, 23 or 25 times on switch days).

The dates returned are aware datetimes in the schedule's zone, strictly increasing, at or
after ``start`` and at or before ``end``.
"""

import datetime
import heapq
import itertools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import DAILY, HOURLY, MINUTELY, WEEKLY, rrule, rrulestr

UTC = datetime.UTC

# Most candidate times examined in a row without finding a date; bounds the work for
# expressions that rarely or never match (Orion caps its generators at 1000 iterations).
MAX_ITERATIONS = 1000
# Longest rrule text accepted (Orion's limit).
MAX_RRULE_LENGTH = 6500
# dtstart of an rrule without a DTSTART, so its dates do not depend on when it was parsed.
DEFAULT_RRULE_START = datetime.datetime(2020, 1, 1)  # noqa: DTZ001  (rrules run naive)
# Wall-clock times are converted in order but may land out of order by at most a DST shift
# (two hours anywhere on Earth); candidates are held this long before being released.
_REORDER_WINDOW = datetime.timedelta(hours=3)
_DAY = datetime.timedelta(days=1)


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message says what is wrong."""


def _zone(name):
    if not isinstance(name, str) or not name:
        raise ScheduleError("timezone must be an IANA time zone name such as 'Europe/Berlin'.")
    try:
        return ZoneInfo(name)
    # OSError: a key naming a directory of the zone database ("America") or too long.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"Unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin'."
        ) from None


def _aware(value):
    """``value`` as an aware datetime; a naive one is taken to be UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _is_gap(wall, zone):
    """True if the naive wall-clock time ``wall`` does not exist in ``zone`` (spring-forward)."""
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall


def _instants(wall, zone, both_folds):
    """The UTC instants a naive wall-clock time stands for under the module's DST rules.

    fold=0 gives the first occurrence of a repeated time, and for a time in a gap the offset
    in force before the gap, which moves it forward by the gap's length.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if both_folds and not _is_gap(wall, zone):
        second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if second != first:
            return (first, second)
    return (first,)


def _collect(walls, zone, start, end, both_folds):
    """Yield the distinct instants ≥ ``start`` (and ≤ ``end``) of increasing naive wall times
    ``walls`` in order, as datetimes in ``zone``; stops after MAX_ITERATIONS walls past
    ``start`` that gave nothing new."""
    pending, last, idle = [], None, 0
    for wall in walls:
        for instant in _instants(wall, zone, both_folds):
            heapq.heappush(pending, instant)
        # Every later wall time converts to an instant after this horizon.
        horizon = wall.replace(tzinfo=zone, fold=0).astimezone(UTC) - _REORDER_WINDOW
        if horizon >= start:
            idle += 1
        while pending and pending[0] < horizon:
            instant = heapq.heappop(pending)
            if end is not None and instant > end:
                return
            if instant >= start and instant != last:
                last, idle = instant, 0
                yield instant.astimezone(zone)
        if idle > MAX_ITERATIONS:
            return
    while pending:
        instant = heapq.heappop(pending)
        if end is not None and instant > end:
            return
        if instant >= start and instant != last:
            last = instant
            yield instant.astimezone(zone)


class _Schedule:
    """What every schedule offers on top of its ``iter_dates``."""

    def get_dates(self, n=None, start=None, end=None):
        """The next ``n`` run times at or after ``start`` (default now) and at or before
        ``end``. Without ``n``: one date, or every date up to ``end`` (at most 1000)."""
        if n is None:
            n = MAX_ITERATIONS if end is not None else 1
        return list(itertools.islice(self.iter_dates(start, end), n))

    def iter_dates(self, start=None, end=None):
        """Run times at or after ``start`` (default now) and at or before ``end`` (default
        unbounded), in order, lazily."""
        start = _aware(start) if start is not None else datetime.datetime.now(UTC)
        end = _aware(end).astimezone(UTC) if end is not None else None
        return self._iter(start.astimezone(UTC), end, _zone(self.timezone or "UTC"))


@dataclass(frozen=True)
class IntervalSchedule(_Schedule):
    """Every ``interval`` from ``anchor_date`` (see the module docstring for DST)."""

    interval: datetime.timedelta
    anchor_date: datetime.datetime
    timezone: str = "UTC"

    def to_json(self):
        return {
            "interval": self.interval.total_seconds(),
            "anchor_date": self.anchor_date.isoformat(),
            "timezone": self.timezone,
        }

    def _date(self, k, zone, anchor_wall, days, rest):
        """The k-th date: k·days added to the anchor's wall clock, then k·rest elapsed."""
        wall = anchor_wall + k * days
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC) + k * rest

    def _iter(self, start, end, zone):
        days = datetime.timedelta(days=self.interval.days)
        rest = self.interval - days
        anchor_wall = self.anchor_date.astimezone(zone).replace(tzinfo=None)
        # Index of the slot just before start (DST can move a slot by at most an hour or two,
        # so step back one more and walk forward).
        k = int((start - self.anchor_date) // self.interval) - 1
        date = self._date(k, zone, anchor_wall, days, rest)
        while date < start:
            k += 1
            date = self._date(k, zone, anchor_wall, days, rest)
        last = None
        while end is None or date <= end:
            if last is None or date > last:
                yield date.astimezone(zone)
                last = date
            k += 1
            date = self._date(k, zone, anchor_wall, days, rest)


@dataclass(frozen=True)
class CronSchedule(_Schedule):
    """A cron expression read in ``timezone`` (None: UTC, kept None in its JSON); ``day_or``
    ORs day-of-month and day-of-week when both are restricted (standard cron), False ANDs
    them."""

    cron: str
    timezone: str | None = "UTC"
    day_or: bool = True

    def to_json(self):
        return {"cron": self.cron, "timezone": self.timezone, "day_or": self.day_or}

    def every_hour(self):
        """True if the hour field matches every hour (such jobs run in both repeated hours)."""
        hours = croniter(self.cron).expanded[1]
        return hours == ["*"] or len(hours) == 24

    def _iter(self, start, end, zone):
        # Begin a DST shift early so times pushed forward by a gap are not missed.
        begin = start.astimezone(zone).replace(tzinfo=None) - _REORDER_WINDOW
        iterator = croniter(self.cron, begin, day_or=self.day_or, ret_type=datetime.datetime)
        return _collect(_cron_walls(iterator), zone, start, end, self.every_hour())


def _cron_walls(iterator):
    """The naive wall-clock times of a croniter, until it finds no more (e.g. Feb 30)."""
    while True:
        try:
            yield iterator.get_next()
        except CroniterBadDateError:
            return


_FIXED_PERIODS = {
    WEEKLY: datetime.timedelta(weeks=1),
    DAILY: datetime.timedelta(days=1),
    HOURLY: datetime.timedelta(hours=1),
    MINUTELY: datetime.timedelta(minutes=1),
}
_TZID = re.compile(r"TZID=([^:;\s]+)")
_TZID_PARAM = re.compile(r";TZID=[^:;\s]+")


@dataclass(frozen=True)
class RRuleSchedule(_Schedule):
    """An iCalendar recurrence rule (RFC 5545 text, one or more lines) read in ``timezone``.

    ``DTSTART`` is a wall-clock time in ``timezone`` (2020-01-01 00:00 if absent); a
    ``TZID`` on it names the zone when ``timezone`` is not given.
    """

    rrule: str
    timezone: str = "UTC"

    def to_json(self):
        return {"rrule": self.rrule, "timezone": self.timezone}

    def _rule(self, begin=None):
        """The parsed rule (naive wall-clock times), moved forward to near ``begin``.

        dateutil walks every occurrence from DTSTART, so an hourly rule from 2020 would take
        tens of thousands of steps. A single rule without COUNT whose period is fixed in wall
        time (weekly, daily, hourly, minutely) gets the same occurrences from a DTSTART moved
        forward by whole periods, which leaves its grid and its defaults (weekday, time of
        day) unchanged.
        """
        # Dates are wall-clock times in self.timezone, so any TZID (already read into the
        # timezone) is dropped.
        text = _TZID_PARAM.sub("", self.rrule)
        rule = rrulestr(text, dtstart=DEFAULT_RRULE_START, ignoretz=True, cache=False)
        period = _FIXED_PERIODS.get(getattr(rule, "_freq", None))
        if (
            begin is not None
            and isinstance(rule, rrule)
            and period is not None
            and rule._count is None
            and begin > rule._dtstart
        ):
            period = period * rule._interval
            rule = rule.replace(dtstart=rule._dtstart + (begin - rule._dtstart) // period * period)
        return rule

    def _iter(self, start, end, zone):
        begin = start.astimezone(zone).replace(tzinfo=None) - _REORDER_WINDOW
        return _collect(self._rule(begin).xafter(begin, inc=True), zone, start, end, False)


def _timezone(data, default="UTC"):
    name = data.get("timezone")
    if name is None:
        return default
    _zone(name)
    return name


def _parse_interval(data, now):
    interval = data["interval"]
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise ScheduleError("interval must be a number of seconds.")
    if not interval > 0:
        raise ScheduleError("interval must be greater than 0 seconds.")
    if interval > 100 * 365 * 86400:
        raise ScheduleError("interval must be at most 100 years.")
    timezone = _timezone(data)
    anchor = data.get("anchor_date")
    if anchor is None:
        anchor = now or datetime.datetime.now(UTC)
    elif isinstance(anchor, str):
        try:
            anchor = datetime.datetime.fromisoformat(anchor)
        except ValueError:
            raise ScheduleError(
                f"anchor_date {anchor!r} is not an ISO-8601 date and time."
            ) from None
    if not isinstance(anchor, datetime.datetime):
        raise ScheduleError("anchor_date must be an ISO-8601 date and time.")
    if anchor.tzinfo is None:
        # A naive anchor is a wall-clock time in the schedule's zone.
        anchor = anchor.replace(tzinfo=_zone(timezone))
    return IntervalSchedule(datetime.timedelta(seconds=interval), anchor, timezone)


def _parse_cron(data, now):
    expression = data["cron"]
    if not isinstance(expression, str) or not expression.strip():
        raise ScheduleError("cron must be a cron expression such as '0 9 * * 1-5'.")
    expression = " ".join(expression.split())
    if expression.startswith("@reboot") or not croniter.is_valid(expression):
        raise ScheduleError(f"Invalid cron expression {expression!r}.")
    if len(expression.split()) > 5:
        raise ScheduleError(
            f"Invalid cron expression {expression!r}: use 5 fields "
            "(minute hour day-of-month month day-of-week), no seconds."
        )
    day_or = data.get("day_or", True)
    if not isinstance(day_or, bool):
        raise ScheduleError("day_or must be true or false.")
    # Prefect 2.7 keeps a cron schedule's null time zone null (its other kinds fill one in).
    return CronSchedule(expression, _timezone(data, default=None), day_or)


def _parse_rrule(data, now):
    text = data["rrule"]
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError(
            "rrule must be an RFC 5545 recurrence rule such as 'FREQ=DAILY;BYHOUR=9'."
        )
    if len(text) > MAX_RRULE_LENGTH:
        raise ScheduleError(f"rrule must be at most {MAX_RRULE_LENGTH} characters long.")
    if re.search(r"FREQ=SECONDLY", text, re.IGNORECASE):
        # dateutil walks every occurrence from DTSTART: years of seconds. Intervals do this.
        raise ScheduleError("rrule FREQ=SECONDLY is not supported: use an interval schedule.")
    tzids = set(_TZID.findall(text))
    if len(tzids) > 1:
        raise ScheduleError("rrule must not mix several TZIDs.")
    schedule = RRuleSchedule(text, _timezone(data, default=next(iter(tzids), "UTC")))
    try:
        schedule.get_dates(1, start=DEFAULT_RRULE_START)
    except (ValueError, TypeError, OverflowError) as error:
        raise ScheduleError(f"Invalid rrule {text!r}: {error}") from None
    return schedule


_KINDS = {"interval": _parse_interval, "cron": _parse_cron, "rrule": _parse_rrule}
_ALLOWED_KEYS = {
    "interval": {"interval", "anchor_date", "timezone"},
    "cron": {"cron", "timezone", "day_or"},
    "rrule": {"rrule", "timezone"},
}


def parse_schedule(data, now=None):
    """The schedule object for a schedule dict; ScheduleError saying what is wrong otherwise.

    An interval without ``anchor_date`` is anchored at ``now`` (default: the current time).
    """
    if not isinstance(data, dict):
        raise ScheduleError(
            "A schedule must be an object with one of the keys 'interval', 'cron' or 'rrule'."
        )
    kinds = [kind for kind in _KINDS if kind in data]
    if len(kinds) != 1:
        raise ScheduleError(
            "A schedule must have exactly one of the keys 'interval', 'cron' or 'rrule'."
        )
    kind = kinds[0]
    unknown = sorted(set(data) - _ALLOWED_KEYS[kind])
    if unknown:
        raise ScheduleError(f"Unknown key(s) in a {kind} schedule: {', '.join(unknown)}.")
    return _KINDS[kind](data, now)
