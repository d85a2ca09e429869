"""SQLite only: runs of a state by end time and by name, with the id (issue 16).

The runs list combines a state filter with any sort. With 1,000,000 runs SQLite served the
first page of FAILED runs by end time (``END_TIME_DESC``) or by name (``NAME_ASC``,
``NAME_DESC``) by walking the sort's index and reading each run's row to test its state:
170-680 ms p50 (bench_ui.py ``--combinations``; unfinished runs sort first by end time, and
the seeded names cluster by state, so the walk passes 100,000 runs or more before it finds
the page). Through ``flow_run_state_type`` it would read every run of the state and sort them
(60-320 ms). With ``(state_type, end_time, id)`` and ``(state_type, name, id)`` a page of one
state is a search of the index alone, in the sort's order (``SEARCH ... USING COVERING INDEX
(state_type=?)``); several states are read from the index alone and sorted. Each state change
moves the run's entry in both (its state type changes); bench/README.md gives what that costs.
PostgreSQL gets nothing: the models declare both indexes for SQLite only (``BackendIndex``).

A database that was ANALYZEd (``sqlite_stat1`` exists) gets the new indexes analyzed too, so
its statistics stay complete (SQLite's default guess for an index without statistics would
steer its plans).
"""

from peewee import SqliteDatabase

INDEXES = {
    "flow_run_state_type_end_time_id": ("state_type", "end_time", "id"),
    "flow_run_state_type_name_id": ("state_type", "name", "id"),
}

MODELS = ()


def up(migrator, db):
    """Create both indexes on SQLite, and analyze them if the database has statistics."""
    if not isinstance(db, SqliteDatabase):
        return
    for name, columns in INDEXES.items():
        listed = ", ".join(f'"{column}"' for column in columns)
        db.execute_sql(f'CREATE INDEX "{name}" ON "flow_run" ({listed})')
    analyzed = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).fetchone()
    if analyzed:
        for name in INDEXES:
            db.execute_sql(f'ANALYZE "{name}"')


def down(migrator, db):
    """Drop both indexes, on SQLite."""
    if isinstance(db, SqliteDatabase):
        for name in INDEXES:
            db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
