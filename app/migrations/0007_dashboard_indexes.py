"""Indexes the dashboard needs with a million flow runs (see bench/README.md, bench_ui.py).

Each serves a list that orders flow runs and stops after a page, which without it walks the
start-time index past every non-matching run (with many runs scheduled ahead, that is
100,000 rows before the first past run):

- ``(state_type, COALESCE(start_time, expected_start_time))``: runs in one state, newest
  first (the runs list filtered by state);
- ``(flow_id, COALESCE(start_time, expected_start_time))``: one flow's runs, newest first
  (the flow page, the runs list filtered by flow);
- ``(end_time, id)``: END_TIME_DESC (unfinished runs first, then ties by id: without ``id``
  every unfinished run is sorted in memory);
- ``expected_start_time`` of FAILED and CRASHED runs only (partial): the dashboard's failed
  runs widget, newest first within the window.
"""

from peewee import SQL, CharField, DateTimeField, Model, UUIDField, fn


class FlowRun(Model):
    id = UUIDField(primary_key=True)
    flow_id = UUIDField()
    state_type = CharField(null=True)
    start_time = DateTimeField(null=True)
    expected_start_time = DateTimeField(null=True)
    end_time = DateTimeField(null=True)

    class Meta:
        table_name = "flow_run"


_STARTED = fn.COALESCE(FlowRun.start_time, FlowRun.expected_start_time)
INDEXES = (
    FlowRun.index(FlowRun.state_type, _STARTED, name="flow_run_state_type_start_or_expected"),
    FlowRun.index(FlowRun.flow_id, _STARTED, name="flow_run_flow_id_start_or_expected"),
    FlowRun.index(FlowRun.end_time, FlowRun.id, name="flow_run_end_time_id"),
    FlowRun.index(
        FlowRun.expected_start_time,
        name="flow_run_failed_expected_start_time",
        where=SQL("\"state_type\" IN ('FAILED', 'CRASHED')"),
    ),
)

MODELS = ()


def up(migrator, db):
    """Create the four indexes."""
    with db.bind_ctx((FlowRun,)):
        for index in INDEXES:
            db.execute(index)


def down(migrator, db):
    """Drop them."""
    for index in INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{index._name}"')
