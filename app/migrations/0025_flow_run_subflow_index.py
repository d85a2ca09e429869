"""A flow run's subflows: ``flow_run.parent_task_run_id`` indexed only where it is set.

The index on ``parent_task_run_id`` (0001) held every run, nearly all with no parent (NULL).
After ANALYZE, SQLite's statistics for it say one value covers the whole table, so for "the
runs whose parent is one of this run's task runs, oldest first" (the run page, its live
poll, its radar, the API's graph) SQLite walked ``flow_run`` by expected start time instead:
2.4-2.6 s per run page with 1,000,000 flow runs (bench_ui.py). Partial (``WHERE
parent_task_run_id IS NOT NULL``), the index holds the subflows only and its statistics
describe them; equality and ``IN`` on the column imply the condition, so both backends use
it for every lookup by parent (PostgreSQL already did). Same name as before.
"""

from peewee import SQL, Model, UUIDField


class FlowRun(Model):
    id = UUIDField(primary_key=True)
    parent_task_run_id = UUIDField(null=True)

    class Meta:
        table_name = "flow_run"


NAME = "flow_run_parent_task_run_id"
PARTIAL = FlowRun.index(
    FlowRun.parent_task_run_id, name=NAME, where=SQL('"parent_task_run_id" IS NOT NULL')
)
FULL = FlowRun.index(FlowRun.parent_task_run_id, name=NAME)

MODELS = ()


def up(migrator, db):
    """Replace the index by its partial form."""
    db.execute_sql(f'DROP INDEX IF EXISTS "{NAME}"')
    with db.bind_ctx((FlowRun,)):
        db.execute(PARTIAL)


def down(migrator, db):
    """Back to the index of every run."""
    db.execute_sql(f'DROP INDEX IF EXISTS "{NAME}"')
    with db.bind_ctx((FlowRun,)):
        db.execute(FULL)
