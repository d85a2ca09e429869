"""SQLite only: runs by expected start with the columns the dashboard's chart counts.

The chart of the dashboard's last day (and the partial hours of any other window, and the
rollup's refresh) groups the runs expected in a range by bucket and state type, counting
them and summing their run time: with 1,000,000 runs SQLite found the day's 37,000 through
the ``expected_start_time`` index and read each row from the table, 41-55 ms of the page's
71 ms (bench_ui.py). With this index holding the state type, run time and state timestamp
after the expected start, and the queries counting ``*``, SQLite reads the index alone:
8 ms. Each state change updates the run's entry (its state columns change); bench/README.md
gives what that costs. PostgreSQL reads the same rows in table order quickly enough (38 ms for
the whole page) and gets nothing: this migration does nothing there, as the models declare
the index for SQLite only (``BackendIndex``).
"""

from peewee import SqliteDatabase

NAME = "flow_run_expected_start_time_state"
INDEX = (
    f'CREATE INDEX "{NAME}" ON "flow_run" '
    '("expected_start_time", "state_type", "total_run_time", "state_timestamp")'
)

MODELS = ()


def up(migrator, db):
    """Create the index, on SQLite."""
    if isinstance(db, SqliteDatabase):
        db.execute_sql(INDEX)


def down(migrator, db):
    """Drop the index, on SQLite."""
    if isinstance(db, SqliteDatabase):
        db.execute_sql(f'DROP INDEX IF EXISTS "{NAME}"')
