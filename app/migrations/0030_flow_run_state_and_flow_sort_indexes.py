"""Runs of one state, or of one flow, by end time, by name and (PostgreSQL) by expected start,
with the id (issue 16).

The runs list combines a state or flow filter with any sort. With 1,000,000 runs both
backends served a page of one flow by end time (``END_TIME_DESC``) or by name (``NAME_ASC``,
``NAME_DESC``) by walking the sort's index and testing each run's flow in its row (SQLite
120-260 ms p50, PostgreSQL 530-2,600; bench_ui.py ``--combinations``): the flow's runs are
few among the first in that order (unfinished runs sort first by end time, and the seeded
names cluster). PostgreSQL did the same for one state by end time, by name and by expected
start (the 100,000 SCHEDULED runs come first newest first): 240-2,500 ms, as migration 0029's
two indexes, which fixed it on SQLite, were SQLite's only. Its planner guesses how far it must
walk from the state's share of the runs, and the seeded states, like real ones, are not spread
evenly along those orders.

An index whose columns are the filter's column, then the sort's, then the id, serves a page of
one state or one flow as one range of the index in the sort's order, forwards or backwards
(every sort here puts NULL where a B-tree index has it: last ascending, first descending), and
reads only the page's rows. Added here:

- both backends: ``(flow_id, end_time, id)`` and ``(flow_id, name, id)``;
- PostgreSQL: 0029's ``(state_type, end_time, id)`` and ``(state_type, name, id)`` (SQLite has
  them already), and ``(state_type, expected_start_time, id)`` (SQLite reads the state's runs
  through ``flow_run_state_type`` and sorts them within budget: 16 ms p50 for RUNNING).

Each write of a run updates its entries; a state change moves it in the three state indexes on
PostgreSQL (bench/README.md gives what the writes cost on both backends). A SQLite database
that was ANALYZEd (``sqlite_stat1`` exists) gets the new indexes analyzed too, as in 0029;
PostgreSQL's statistics are per column, so its plans need no new ones.
"""

from peewee import SqliteDatabase

# Name -> columns, per backend.
BOTH = {
    "flow_run_flow_id_end_time_id": ("flow_id", "end_time", "id"),
    "flow_run_flow_id_name_id": ("flow_id", "name", "id"),
}
POSTGRES = {
    "flow_run_state_type_end_time_id": ("state_type", "end_time", "id"),
    "flow_run_state_type_name_id": ("state_type", "name", "id"),
    "flow_run_state_type_expected_start_time_id": ("state_type", "expected_start_time", "id"),
}

MODELS = ()


def _indexes(db):
    return BOTH if isinstance(db, SqliteDatabase) else {**BOTH, **POSTGRES}


def up(migrator, db):
    """Create this backend's indexes, and on SQLite analyze them if it has statistics."""
    indexes = _indexes(db)
    for name, columns in indexes.items():
        listed = ", ".join(f'"{column}"' for column in columns)
        db.execute_sql(f'CREATE INDEX "{name}" ON "flow_run" ({listed})')
    if not isinstance(db, SqliteDatabase):
        return
    analyzed = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).fetchone()
    if analyzed:
        for name in indexes:
            db.execute_sql(f'ANALYZE "{name}"')


def down(migrator, db):
    """Drop this backend's indexes."""
    for name in _indexes(db):
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
