"""Index for the flows list's and a flow's page "runs of the last day by state".

``(flow_id, expected_start_time)``: the counts are grouped by flow over a window of expected
start times, for the flows of a page. Without it the planner intersected the window (37,000
runs of a day) with every run of those flows (1,000,000 for 50 flows) in a BitmapAnd when
its statistics said so: 60-110 ms instead of ~20 (bench/README.md, 2026-11-24).
"""

from peewee import DateTimeField, Model, UUIDField


class FlowRun(Model):
    id = UUIDField(primary_key=True)
    flow_id = UUIDField()
    expected_start_time = DateTimeField(null=True)

    class Meta:
        table_name = "flow_run"


INDEX = FlowRun.index(
    FlowRun.flow_id, FlowRun.expected_start_time, name="flow_run_flow_id_expected_start_time"
)

MODELS = ()


def up(migrator, db):
    """Create the index."""
    with db.bind_ctx((FlowRun,)):
        db.execute(INDEX)


def down(migrator, db):
    """Drop it."""
    db.execute_sql(f'DROP INDEX IF EXISTS "{INDEX._name}"')
