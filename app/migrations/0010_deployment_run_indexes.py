"""Indexes a deployment's page needs with a million flow runs (see bench/README.md).

- ``(deployment_id, expected_start_time)``: its recent runs, newest expected start first.
  Without it the page walked the expected-start index from now backwards past every other
  deployment's runs (900,000 rows for a deployment whose runs are all ahead: 0.7 s).
- ``(deployment_id, next_scheduled_start_time)`` of SCHEDULED runs only (partial): its next
  scheduled runs, soonest first. Without it the planner intersected the deployment's runs
  with all ~100,000 scheduled runs, then sorted.
"""

from peewee import SQL, CharField, DateTimeField, Model, UUIDField


class FlowRun(Model):
    id = UUIDField(primary_key=True)
    deployment_id = UUIDField(null=True)
    state_type = CharField(null=True)
    expected_start_time = DateTimeField(null=True)
    next_scheduled_start_time = DateTimeField(null=True)

    class Meta:
        table_name = "flow_run"


INDEXES = (
    FlowRun.index(
        FlowRun.deployment_id,
        FlowRun.expected_start_time,
        name="flow_run_deployment_id_expected_start_time",
    ),
    FlowRun.index(
        FlowRun.deployment_id,
        FlowRun.next_scheduled_start_time,
        name="flow_run_deployment_id_scheduled",
        where=SQL("\"state_type\" = 'SCHEDULED'"),
    ),
)

MODELS = ()


def up(migrator, db):
    """Create the two indexes."""
    with db.bind_ctx((FlowRun,)):
        for index in INDEXES:
            db.execute(index)


def down(migrator, db):
    """Drop them."""
    for index in INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{index._name}"')
