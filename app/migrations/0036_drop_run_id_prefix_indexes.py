"""Drop the four single-column indexes on a run id that a composite index already starts with.

``task_run(flow_run_id)``, ``flow_run_state(flow_run_id)``, ``task_run_state(task_run_id)``
and ``log(flow_run_id)`` each lead a composite index of the same table (the unique
``(flow_run_id, task_key, dynamic_key)``, the unique ``(run id, timestamp)`` of the state
tables, the run page's ``(flow_run_id, timestamp)`` of logs), which answers every lookup by
that id, the foreign keys' cascades included, as well. Keeping both made every task run,
state and log row write one index more: about a tenth of the pages a task writes to SQLite's
WAL (bench/README.md).
"""

MODELS = ()

# (table, column): each index is peewee's default for the column, named "<table>_<column>".
INDEXES = (
    ("task_run", "flow_run_id"),
    ("flow_run_state", "flow_run_id"),
    ("task_run_state", "task_run_id"),
    ("log", "flow_run_id"),
)


def up(migrator, db):
    """Drop the four indexes."""
    for table, column in INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{table}_{column}"')


def down(migrator, db):
    """Create the four indexes again."""
    for table, column in INDEXES:
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{table}_{column}" ON "{table}" ("{column}")')
