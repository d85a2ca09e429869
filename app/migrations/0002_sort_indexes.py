"""Indexes for sorts and reads 0001 left to table scans.

Flows and deployments by ``created`` (CREATED_DESC), flow runs by ``COALESCE(start_time,
expected_start_time)`` (START_TIME_ASC/DESC), and logs by run then timestamp (a run's logs).
"""

from peewee import DateTimeField, Model, fn


class FlowRun(Model):
    start_time = DateTimeField(null=True)
    expected_start_time = DateTimeField(null=True)

    class Meta:
        table_name = "flow_run"


START_TIME_INDEX = FlowRun.index(
    fn.COALESCE(FlowRun.start_time, FlowRun.expected_start_time),
    name="flow_run_start_time_or_expected",
)

MODELS = ()


def up(migrator, db):
    """Create the three plain indexes and the start-time expression index."""
    migrator.migrate(
        migrator.add_index("flow", ("created",)),
        migrator.add_index("deployment", ("created",)),
        migrator.add_index("log", ("flow_run_id", "timestamp")),
    )
    with db.bind_ctx((FlowRun,)):
        db.execute(START_TIME_INDEX)


def down(migrator, db):
    """Drop the indexes ``up`` created."""
    migrator.migrate(
        migrator.drop_index("flow", "flow_created"),
        migrator.drop_index("deployment", "deployment_created"),
        migrator.drop_index("log", "log_flow_run_id_timestamp"),
        migrator.drop_index("flow_run", "flow_run_start_time_or_expected"),
    )
