"""Index for retention (``app.services.retention``): finished flow runs by the time they
entered their terminal state.

``state_timestamp`` of runs in a terminal state only (partial). A prune batch takes the
oldest finished runs past its cutoff, ``ORDER BY state_timestamp LIMIT n``; with this index
that is n index steps. Without it PostgreSQL walked every finished run of the table (90 %
of a million on bench_ui's database) to find the oldest, in every batch. Runs that are not
finished, the ones the dashboard and the agents read most, are not in it, and a run enters
it once, when it finishes.
"""

from peewee import SQL, CharField, DateTimeField, Model, UUIDField


class FlowRun(Model):
    id = UUIDField(primary_key=True)
    state_type = CharField(null=True)
    state_timestamp = DateTimeField(null=True)

    class Meta:
        table_name = "flow_run"


INDEX = FlowRun.index(
    FlowRun.state_timestamp,
    name="flow_run_finished_state_timestamp",
    where=SQL("\"state_type\" IN ('CANCELLED', 'COMPLETED', 'CRASHED', 'FAILED')"),
)

MODELS = ()


def up(migrator, db):
    """Create the index."""
    with db.bind_ctx((FlowRun,)):
        db.execute(INDEX)


def down(migrator, db):
    """Drop it."""
    db.execute_sql(f'DROP INDEX IF EXISTS "{INDEX._name}"')
