"""The flow run rollup: flow runs counted per state type per hour of expected start time.

The dashboard's long windows read these rows instead of aggregating every run of the window
(see ``app.services.rollups`` for how they are kept up to date and read). They are derived
data: dropping every row and refreshing rebuilds them from ``flow_run``.

- :class:`FlowRunHourly`: per (hour, state type), the runs, the sum of their
  ``total_run_time`` and, for RUNNING runs, the sum of their ``state_timestamp`` in epoch
  seconds (a running run's estimated run time grows with the clock; that sum makes the
  estimate exact at read time: ``count * now - sum``).
- :class:`FlowRunHourlyStale`: hours whose runs were deleted since the last refresh (a
  deleted run leaves no ``updated`` stamp to find it by). Written by every service that
  deletes flow runs, through :func:`mark_deleted_runs_stale`.
- :class:`RollupRefresh`: when each rollup was last refreshed.
"""

from peewee import SQL, CharField, CompositeKey, DoubleField, IntegerField, Model, fn

from app.db import database, is_sqlite
from app.models.base import UTCDateTimeField
from app.models.runs import FlowRun


class _RollupModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class FlowRunHourly(_RollupModel):
    """Flow runs expected to start in one hour (UTC) and now in one state type."""

    hour = UTCDateTimeField()
    state_type = CharField()
    count_runs = IntegerField()
    sum_run_time = DoubleField()
    sum_running_since = DoubleField()

    class Meta:
        table_name = "flow_run_hourly"
        primary_key = CompositeKey("hour", "state_type")


class FlowRunHourlyStale(_RollupModel):
    """An hour of :class:`FlowRunHourly` to recompute: runs expected in it were deleted."""

    hour = UTCDateTimeField(primary_key=True)

    class Meta:
        table_name = "flow_run_hourly_stale"


class RollupRefresh(_RollupModel):
    """When a rollup (by name) was last refreshed: the time its refresh started."""

    name = CharField(primary_key=True)
    refreshed = UTCDateTimeField()

    class Meta:
        table_name = "rollup_refresh"


def hour_of(column):
    """SQL: the UTC hour a timestamp column falls in, in the column's stored form (PostgreSQL
    ``timestamp``; SQLite the fixed-width text ``UTCDateTimeField`` writes)."""
    if is_sqlite():
        return fn.strftime("%Y-%m-%d %H:00:00.000000", column)
    return fn.date_trunc("hour", column)


def epoch_of(column):
    """SQL: a naive-UTC timestamp column as seconds since the epoch (a float)."""
    if is_sqlite():
        return (fn.julianday(column) - 2440587.5) * 86400.0
    return fn.date_part(SQL("'epoch'"), column)


def mark_deleted_runs_stale(condition):
    """Record the hours of the flow runs matching ``condition`` as stale, in the transaction
    that is about to delete those runs (one ``INSERT ... SELECT``; call it just before the
    DELETE). Hours already recorded stay as they are."""
    hours = (
        FlowRun.select(hour_of(FlowRun.expected_start_time))
        .where(condition & FlowRun.expected_start_time.is_null(False))
        .distinct()
    )
    (
        FlowRunHourlyStale.insert_from(hours, [FlowRunHourlyStale.hour])
        .on_conflict_ignore()
        .execute()
    )
