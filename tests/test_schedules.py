"""Schedules: date generation in time zones across both DST switches, and validation."""

import datetime

import pytest

from app.schedules import (
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
    ScheduleError,
    parse_schedule,
)

UTC = datetime.UTC
BERLIN = "Europe/Berlin"
# Europe/Berlin in 2026: CET→CEST on Sunday 29 March at 02:00, CEST→CET on 25 October at 03:00.
SPRING = datetime.date(2026, 3, 29)
AUTUMN = datetime.date(2026, 10, 25)


def utc(*args):
    return datetime.datetime(*args, tzinfo=UTC)


def local_day_bounds(day, zone=BERLIN):
    """UTC start and end (exclusive) of a local calendar day."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    start = datetime.datetime.combine(day, datetime.time(), tz).astimezone(UTC)
    end = datetime.datetime.combine(
        day + datetime.timedelta(days=1), datetime.time(), tz
    ).astimezone(UTC)
    return start, end


def dates_on(schedule, day):
    start, end = local_day_bounds(day)
    return schedule.get_dates(1000, start=start, end=end - datetime.timedelta(microseconds=1))


DAILY_0230 = [
    parse_schedule({"cron": "30 2 * * *", "timezone": BERLIN}),
    parse_schedule({"rrule": "DTSTART:20250101T023000\nRRULE:FREQ=DAILY", "timezone": BERLIN}),
    parse_schedule({"interval": 86400, "anchor_date": "2025-01-01T02:30:00", "timezone": BERLIN}),
]


@pytest.mark.parametrize("schedule", DAILY_0230, ids=["cron", "rrule", "interval"])
def test_daily_0230_berlin_runs_once_every_day_of_the_year(schedule):
    dates = schedule.get_dates(400, start=utc(2025, 12, 31, 12), end=utc(2026, 12, 31, 12))
    local_days = [d.date() for d in dates]
    assert len(dates) == 365
    assert local_days == sorted(set(local_days))
    assert all(d.tzinfo is not None and str(d.tzinfo) == BERLIN for d in dates)
    by_day = {d.date(): d for d in dates}
    # The spring-forward gap moves 02:30 to 03:30 CEST (still 01:30 UTC); the repeated hour in
    # October runs once, at its first occurrence (CEST).
    assert by_day[SPRING].time() == datetime.time(3, 30)
    assert by_day[SPRING].astimezone(UTC) == utc(2026, 3, 29, 1, 30)
    assert by_day[AUTUMN].astimezone(UTC) == utc(2026, 10, 25, 0, 30)
    assert all(d.time() == datetime.time(2, 30) for day, d in by_day.items() if day != SPRING)


def test_hourly_cron_runs_once_per_elapsed_hour():
    schedule = parse_schedule({"cron": "0 * * * *", "timezone": BERLIN})
    spring, autumn = dates_on(schedule, SPRING), dates_on(schedule, AUTUMN)
    assert len(spring) == 23
    assert len(autumn) == 25
    for dates in (spring, autumn):
        gaps = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in zip(dates, dates[1:])}
        assert gaps == {datetime.timedelta(hours=1)}
    assert [d.isoformat() for d in autumn[2:4]] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]


def test_cron_with_a_fixed_hour_in_the_repeated_hour_runs_once():
    schedule = parse_schedule({"cron": "15 2 * * *", "timezone": BERLIN})
    assert [d.isoformat() for d in dates_on(schedule, AUTUMN)] == ["2026-10-25T02:15:00+02:00"]


def test_every_15_minutes_cron_stays_in_order_through_the_repeated_hour():
    schedule = parse_schedule({"cron": "*/15 * * * *", "timezone": BERLIN})
    dates = dates_on(schedule, AUTUMN)
    assert len(dates) == 25 * 4
    instants = [d.astimezone(UTC) for d in dates]
    assert instants == sorted(set(instants))


def test_hourly_rrule_runs_the_repeated_hour_once():
    schedule = parse_schedule(
        {"rrule": "DTSTART:20260101T000000\nRRULE:FREQ=HOURLY", "timezone": BERLIN}
    )
    assert len(dates_on(schedule, SPRING)) == 23
    assert len(dates_on(schedule, AUTUMN)) == 24


def test_hourly_interval_counts_elapsed_time():
    schedule = parse_schedule(
        {"interval": 3600, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": BERLIN}
    )
    assert len(dates_on(schedule, SPRING)) == 23
    assert len(dates_on(schedule, AUTUMN)) == 25


def test_get_dates_bounds_are_inclusive_and_n_limits():
    schedule = parse_schedule({"interval": 60, "anchor_date": "2026-01-01T00:00:00Z"})
    dates = schedule.get_dates(start=utc(2026, 1, 1, 0, 1), end=utc(2026, 1, 1, 0, 3))
    assert [d.minute for d in dates] == [1, 2, 3]
    assert len(schedule.get_dates(5, start=utc(2026, 2, 1))) == 5
    # Without n and end: the next date only.
    assert schedule.get_dates(start=utc(2026, 1, 1, 0, 0, 30)) == [utc(2026, 1, 1, 0, 1)]
    # Dates before the anchor follow the same phase.
    assert schedule.get_dates(1, start=utc(2025, 12, 31, 23, 58, 1)) == [utc(2025, 12, 31, 23, 59)]


def test_cron_day_or():
    # The 1st of the month OR a Monday (standard cron) versus the 1st AND a Monday.
    start, end = utc(2026, 1, 1), utc(2026, 12, 31, 23, 59)
    either = parse_schedule({"cron": "0 0 1 * 1"}).get_dates(start=start, end=end)
    both = parse_schedule({"cron": "0 0 1 * 1", "day_or": False}).get_dates(start=start, end=end)
    assert len(either) == 12 + 52 - 1  # 1 June 2026 is both
    assert [d.date() for d in both] == [datetime.date(2026, 6, 1)]


def test_a_cron_that_never_matches_gives_no_dates():
    assert parse_schedule({"cron": "0 0 31 2 *"}).get_dates(3, start=utc(2026, 1, 1)) == []


def test_rrule_with_count_and_tzid():
    schedule = parse_schedule(
        {"rrule": "DTSTART;TZID=America/New_York:20260305T090000\nRRULE:FREQ=DAILY;COUNT=4"}
    )
    assert schedule.timezone == "America/New_York"
    dates = schedule.get_dates(10, start=utc(2026, 1, 1))
    # New York switches on 8 March: still 09:00 local, one hour earlier in UTC.
    assert [d.astimezone(UTC).hour for d in dates] == [14, 14, 14, 13]


def test_to_json_round_trips():
    for data in (
        {"interval": 90.0, "anchor_date": "2026-01-01T00:00:00+00:00", "timezone": "UTC"},
        {"cron": "0 9 * * 1-5", "timezone": BERLIN, "day_or": False},
        {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"},
    ):
        assert parse_schedule(data).to_json() == data


def test_defaults():
    now = utc(2026, 5, 1, 12)
    assert parse_schedule({"interval": 10}, now=now) == IntervalSchedule(
        datetime.timedelta(seconds=10), now, "UTC"
    )
    assert parse_schedule({"cron": "0  9 * * *"}) == CronSchedule("0 9 * * *", None, True)
    assert parse_schedule({"rrule": "FREQ=DAILY"}) == RRuleSchedule("FREQ=DAILY", "UTC")


@pytest.mark.parametrize(
    "data, timezone",
    [
        # What Prefect 2.7's server stores for each kind given a null time zone.
        ({"cron": "0 9 * * *", "timezone": None}, None),
        ({"interval": 60, "timezone": None, "anchor_date": "2026-01-01T00:00:00+02:00"}, "UTC"),
        ({"rrule": "FREQ=DAILY", "timezone": None}, "UTC"),
        (
            {
                "rrule": "DTSTART;TZID=Europe/Berlin:20260101T090000\nRRULE:FREQ=DAILY",
                "timezone": None,
            },
            "Europe/Berlin",
        ),
    ],
)
def test_a_null_timezone_is_kept_as_prefect_keeps_it(data, timezone):
    assert parse_schedule(data).to_json()["timezone"] == timezone


def test_a_cron_schedule_without_timezone_runs_in_utc():
    start = utc(2026, 3, 28, 12)
    assert parse_schedule({"cron": "30 9 * * *", "timezone": None}).get_dates(2, start) == [
        utc(2026, 3, 29, 9, 30),
        utc(2026, 3, 30, 9, 30),
    ]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"interval": 0}, "greater than 0"),
        ({"interval": -5}, "greater than 0"),
        ({"interval": "60"}, "number of seconds"),
        ({"interval": True}, "number of seconds"),
        ({"interval": 60, "anchor_date": "yesterday"}, "ISO-8601"),
        ({"interval": 60, "timezone": "Mars/Olympus"}, "Unknown timezone"),
        ({"cron": "0 * * * *", "timezone": "America"}, "Unknown timezone"),  # a directory
        ({"cron": "0 * * * *", "timezone": "x" * 300}, "Unknown timezone"),
        ({"cron": "61 * * * *"}, "Invalid cron"),
        ({"cron": "@reboot"}, "Invalid cron"),
        ({"cron": "0 0 * * * *"}, "5 fields"),
        ({"cron": ""}, "cron expression"),
        ({"cron": "0 * * * *", "day_or": "yes"}, "day_or"),
        ({"rrule": "FREQ=SOMETIMES"}, "Invalid rrule"),
        ({"rrule": "x" * 7000}, "at most"),
        ({"rrule": "FREQ=SECONDLY;INTERVAL=10"}, "interval schedule"),
        ({"cron": "* * * * *", "interval": 5}, "exactly one"),
        ({}, "exactly one"),
        ("0 * * * *", "must be an object"),
        ({"cron": "* * * * *", "every": 2}, "Unknown key"),
    ],
)
def test_invalid_schedules_say_what_is_wrong(data, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(data)


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=HOURLY;INTERVAL=5",
        "DTSTART:20200103T101500\nRRULE:FREQ=MINUTELY;INTERVAL=7",
        "DTSTART:20200101T093000\nRRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=MO,TH",
        "DTSTART:20200101T000000\nRRULE:FREQ=DAILY;INTERVAL=9;BYHOUR=1,13;BYMINUTE=5",
    ],
)
def test_rrules_skipping_ahead_keep_their_phase(text):
    # The same dates whether the walk starts from DTSTART or is moved ahead near start.
    from dateutil.rrule import rrulestr

    schedule = parse_schedule({"rrule": text, "timezone": "UTC"})
    start = utc(2021, 6, 1, 12)
    naive = rrulestr(text, dtstart=datetime.datetime(2020, 1, 1)).xafter(
        start.replace(tzinfo=None), count=20, inc=True
    )
    assert [d.replace(tzinfo=None) for d in schedule.get_dates(20, start=start)] == list(naive)


ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Tehran",
    "UTC",
]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("kind", ["cron", "rrule", "interval"])
def test_daily_schedules_run_once_every_local_day_in_many_zones(zone, kind):
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    start = datetime.datetime(2026, 1, 1, tzinfo=tz)
    end = datetime.datetime(2027, 1, 1, tzinfo=tz) - datetime.timedelta(microseconds=1)
    # Times around midnight (Santiago switches there) and 01:00-03:00 (most zones).
    for hour, minute in [(0, 0), (0, 30), (1, 45), (2, 0), (2, 30), (3, 0), (23, 30)]:
        data = {
            "cron": {"cron": f"{minute} {hour} * * *", "timezone": zone},
            "rrule": {
                "rrule": f"DTSTART:20250101T{hour:02}{minute:02}00\nRRULE:FREQ=DAILY",
                "timezone": zone,
            },
            "interval": {
                "interval": 86400,
                "anchor_date": f"2025-01-01T{hour:02}:{minute:02}:00",
                "timezone": zone,
            },
        }[kind]
        dates = parse_schedule(data).get_dates(400, start=start, end=end)
        days = [d.date() for d in dates]
        assert len(days) == 365 and len(set(days)) == 365, (zone, hour, minute)
        instants = [d.astimezone(UTC) for d in dates]
        assert instants == sorted(instants)
        # Each run is at its wall-clock time, or just after a gap that swallowed it.
        late = [d for d in dates if (d.hour, d.minute) != (hour, minute)]
        assert len(late) <= 1, (zone, hour, minute, late)
