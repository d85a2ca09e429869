"""SQLite only: an FTS5 trigram index of ``flow_run.name`` for name substring filters.

The flow runs list's "name contains" filter is ``name LIKE '%text%'``, which no B-tree can
serve: with 1,000,000 runs and a rare match ("otter-12": 1,110 runs) SQLite walked the
start-time index reading names until 51 matched, 117 ms at p95 (bench_ui.py). PostgreSQL has
its trigram index (0009); this is SQLite's: a full-text table with the ``trigram`` tokenizer
(SQLite 3.34+), external content (it keeps the trigrams, keyed by the run's rowid, not a copy
of the names) and no per-row sizes (``columnsize=0``: no ranking is done). Triggers keep it in
step on insert, delete and ``UPDATE OF name`` only, so state changes, which update a run's
other columns, do not touch it. The filter asks it for the rowids of runs whose name holds
the text (a phrase of trigrams) and still checks the ``LIKE`` on them
(:func:`app.models.runs.name_contains`).

The index is keyed by rowid: VACUUM keeps rowids, but a table rebuild (a copy of ``flow_run``
into a new table, as peewee's SQLite migrator does to drop or alter a column) renumbers them
and drops the triggers; such a migration must recreate both and run the 'rebuild' command,
as ``up`` does. On PostgreSQL this migration does nothing.
"""

from peewee import Model, SqliteDatabase

NAME = "flow_run_name_fts"
_ROW = '(rowid, "name") VALUES (new.rowid, new."name")'
_DELETE = (
    f'INSERT INTO "{NAME}" ("{NAME}", rowid, "name") VALUES (\'delete\', old.rowid, old."name");'
)
_INSERT = f'INSERT INTO "{NAME}" {_ROW};'
CREATE = (
    (
        f'CREATE VIRTUAL TABLE IF NOT EXISTS "{NAME}" USING fts5("name", '
        "content='flow_run', content_rowid='rowid', columnsize=0, tokenize='trigram')"
    ),
    f'CREATE TRIGGER IF NOT EXISTS "{NAME}_insert" AFTER INSERT ON "flow_run" BEGIN {_INSERT} END',
    f'CREATE TRIGGER IF NOT EXISTS "{NAME}_delete" AFTER DELETE ON "flow_run" BEGIN {_DELETE} END',
    (
        f'CREATE TRIGGER IF NOT EXISTS "{NAME}_update" AFTER UPDATE OF "name" ON "flow_run" '
        f"BEGIN {_DELETE} {_INSERT} END"
    ),
)


class FlowRunNameSearch(Model):
    """The full-text table, listed so that a reset drops it with the tables."""

    class Meta:
        table_name = NAME


MODELS = (FlowRunNameSearch,)


def up(migrator, db):
    """Create the index and its triggers, then fill it from the runs already stored."""
    if not isinstance(db, SqliteDatabase):
        return
    for statement in CREATE:
        db.execute_sql(statement)
    db.execute_sql(f'INSERT INTO "{NAME}" ("{NAME}") VALUES (\'rebuild\')')


def down(migrator, db):
    """Drop the triggers and the index."""
    if not isinstance(db, SqliteDatabase):
        return
    for event in ("insert", "delete", "update"):
        db.execute_sql(f'DROP TRIGGER IF EXISTS "{NAME}_{event}"')
    db.execute_sql(f'DROP TABLE IF EXISTS "{NAME}"')
