"""SQLite only: the START_TIME sorts' index also holds the columns it reads and the id.

The dashboard's runs list is sorted by ``COALESCE(start_time, expected_start_time)`` newest
first, ties broken by id, and pages by ``OFFSET``: page 100 skips 4,950 runs. With 1,000,000
runs SQLite took 59 ms p95 for it (bench_ui.py), walking the skipped runs in 0002's index
and reading each one's row (for the id, the tiebreak) and joining its state. The runs list
now picks a page's rowids first in a subquery (``app.services.runs.read_page``); with this
index that subquery reads the index alone (``SCAN ... USING COVERING INDEX``; SQLite 3.40
counts an index on an expression as covering only when it also holds the columns the
expression reads). The id comes last, after those columns, not right after the expression:
an index in the sort's full order made SQLite 3.40 (``LIMIT ?``, its limit unknown when
planning) walk it for the first page of FAILED runs, testing each run's state, 250-350 ms
instead of 5-6 through the state type index; in this order the index serves the sort as 0002's
did (ties sorted apart, ``USE TEMP B-TREE FOR RIGHT PART OF ORDER BY``), so plans choose
between the indexes as before. It replaces 0002's index on SQLite, whose leading column it
shares, so writes keep one index for these sorts. PostgreSQL keeps 0002's index (its one
query is within budget, bench/README.md): this migration does nothing there, as the models
declare each index for its backend (``BackendIndex``).

A database that was ANALYZEd (``sqlite_stat1`` exists) gets the new index analyzed too (0.2 s
for 1,000,000 runs), so its statistics stay complete rather than default for one index.
"""

from peewee import DateTimeField, Model, SqliteDatabase, TextField, fn

OLD = "flow_run_start_time_or_expected"
NEW = "flow_run_start_time_or_expected_id"


class FlowRun(Model):
    id = TextField(primary_key=True)
    start_time = DateTimeField(null=True)
    expected_start_time = DateTimeField(null=True)

    class Meta:
        table_name = "flow_run"


STARTED = fn.COALESCE(FlowRun.start_time, FlowRun.expected_start_time)
OLD_INDEX = FlowRun.index(STARTED, name=OLD)
NEW_INDEX = FlowRun.index(
    STARTED, FlowRun.start_time, FlowRun.expected_start_time, FlowRun.id, name=NEW
)

MODELS = ()


def _replace(db, create, name, drop):
    """Create index ``create`` (called ``name``), analyze it if the database has statistics,
    and drop index ``drop``."""
    with db.bind_ctx((FlowRun,)):
        db.execute(create)
    analyzed = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).fetchone()
    if analyzed:
        db.execute_sql(f'ANALYZE "{name}"')
    db.execute_sql(f'DROP INDEX IF EXISTS "{drop}"')


def up(migrator, db):
    """On SQLite, replace 0002's start-time index by the covering one."""
    if isinstance(db, SqliteDatabase):
        _replace(db, NEW_INDEX, NEW, OLD)


def down(migrator, db):
    """On SQLite, bring 0002's index back and drop the covering one."""
    if isinstance(db, SqliteDatabase):
        _replace(db, OLD_INDEX, OLD, NEW)
