"""The agents' pool's (queue name, state type, due time) index also holds the queue id.

The work pool pages count each queue's SCHEDULED runs (``work_queues.scheduled_run_counts``).
A queue of the agents' pool has the runs carrying its name and its id or no queue id
(``FlowRun.of_queue``): with 1,000,000 runs, 100,000 of them SCHEDULED in that pool's ten
queues, counting them read each run's row for the name or the id the index used lacked,
290-340 ms p50 on SQLite (bench_ui.py, bench/README.md). With the queue id last in the
name index the count reads the index alone (``USING COVERING INDEX``). It replaces the
three-column index, whose columns it starts with, so the scheduler's ``get_runs`` and the
late-runs sweep use it as before and writes keep one index for it; on both backends.

A SQLite database that was ANALYZEd (``sqlite_stat1`` exists) gets the new index analyzed too,
so its statistics stay complete.
"""

from peewee import CharField, DateTimeField, Model, SqliteDatabase, TextField

OLD = "flow_run_work_queue_name_state_type_next_scheduled_start_time"
NEW = "flow_run_work_queue_name_state_type_due_queue_id"


class FlowRun(Model):
    id = TextField(primary_key=True)
    work_queue_name = CharField(null=True)
    state_type = CharField(null=True)
    next_scheduled_start_time = DateTimeField(null=True)
    work_queue_id = TextField(null=True)

    class Meta:
        table_name = "flow_run"


OLD_INDEX = FlowRun.index(
    FlowRun.work_queue_name, FlowRun.state_type, FlowRun.next_scheduled_start_time, name=OLD
)
NEW_INDEX = FlowRun.index(
    FlowRun.work_queue_name,
    FlowRun.state_type,
    FlowRun.next_scheduled_start_time,
    FlowRun.work_queue_id,
    name=NEW,
)

MODELS = ()


def _replace(db, create, name, drop):
    """Create index ``create`` (called ``name``), analyze it if the SQLite database has
    statistics, and drop index ``drop``."""
    with db.bind_ctx((FlowRun,)):
        db.execute(create)
    if isinstance(db, SqliteDatabase):
        analyzed = db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).fetchone()
        if analyzed:
            db.execute_sql(f'ANALYZE "{name}"')
    db.execute_sql(f'DROP INDEX IF EXISTS "{drop}"')


def up(migrator, db):
    """Replace the three-column queue name index by the one holding the queue id."""
    _replace(db, NEW_INDEX, NEW, OLD)


def down(migrator, db):
    """Bring the three-column queue name index back and drop the one holding the queue id."""
    _replace(db, OLD_INDEX, OLD, NEW)
