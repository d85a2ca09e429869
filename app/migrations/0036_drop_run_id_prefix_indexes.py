"""Drop the four single-column indexes on a run id that a composite index already starts with.

``task_run(flow_run_id)``, ``flow_run_state(flow_run_id)``, ``task_run_state(task_run_id)``
and ``log(flow_run_id)`` each lead a composite index of the same table (the unique
``(flow_run_id, task_key, dynamic_key)``, the unique ``(run id, timestamp)`` of the state
tables, the run page's ``(flow_run_id, timestamp)`` of logs), which answers every lookup by
that id, the foreign keys' cascades included, as well. Keeping both made every task run,
state and log row write one index more: about a tenth of the pages a task writes to SQLite's
WAL (bench/README.md).
"""

from peewee import Model, TextField

MODELS = ()


def _table(name, column):
    class Frozen(Model):
        id = TextField(primary_key=True)

        class Meta:
            table_name = name

    Frozen._meta.add_field(column, TextField())
    return Frozen


INDEXES = [
    (f"{table}_{column}", _table(table, column), column)
    for table, column in (
        ("task_run", "flow_run_id"),
        ("flow_run_state", "flow_run_id"),
        ("task_run_state", "task_run_id"),
        ("log", "flow_run_id"),
    )
]


def up(migrator, db):
    """Drop the four indexes."""
    for name, _, _ in INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def down(migrator, db):
    """Create the four indexes again."""
    for name, model, column in INDEXES:
        with db.bind_ctx((model,)):
            db.execute(model.index(getattr(model, column), name=name).safe(True))
