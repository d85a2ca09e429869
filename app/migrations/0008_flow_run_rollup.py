"""The flow run rollup (``app.models.rollups``): runs per state type per hour of expected start.

Three tables: ``flow_run_hourly`` (the counts), ``flow_run_hourly_stale`` (hours whose runs
were deleted since the last refresh) and ``rollup_refresh`` (when it was last refreshed).
They start empty; the first refresh (the rollup service, or the dashboard's bench) builds
them from ``flow_run``. ``flow_run.updated``, which the refresh finds changed runs by, is
indexed since 0001.
"""

from peewee import CharField, CompositeKey, DateTimeField, DoubleField, IntegerField, Model


class _Base(Model):
    class Meta:
        legacy_table_names = False


class FlowRunHourly(_Base):
    hour = DateTimeField()
    state_type = CharField()
    count_runs = IntegerField()
    sum_run_time = DoubleField()
    sum_running_since = DoubleField()

    class Meta:
        table_name = "flow_run_hourly"
        primary_key = CompositeKey("hour", "state_type")


class FlowRunHourlyStale(_Base):
    hour = DateTimeField(primary_key=True)

    class Meta:
        table_name = "flow_run_hourly_stale"


class RollupRefresh(_Base):
    name = CharField(primary_key=True)
    refreshed = DateTimeField()

    class Meta:
        table_name = "rollup_refresh"


# The tables this migration creates (reset() drops every table any migration lists here).
MODELS = (FlowRunHourly, FlowRunHourlyStale, RollupRefresh)


def up(migrator, db):
    """Create the three tables; fails if they exist."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def down(migrator, db):
    """Drop them."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=False)
