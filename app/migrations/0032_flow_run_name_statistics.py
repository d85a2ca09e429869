"""PostgreSQL only: finer statistics on ``flow_run.name``, so "name contains" is planned on
how many runs match.

The flow runs list's "name contains" filter (``name ILIKE '%text%'``, newest first, 51 a
page) has two good plans: read the trigram index's matches and sort them (migration 0009),
best when few runs match, or walk the runs newest first testing names, best when many do.
PostgreSQL estimates a substring's matches from the column's histogram, and with the
default statistics target (100 entries) a rare substring comes out near 2 % whatever the
data: with 1,000,000 runs, PostgreSQL 15 took "otter-12" (1,110 matches) for 20,202 rows
and walked 46,000 runs for it, 90-120 ms (bench_ui.py, bench/README.md), instead of 3 ms
from the index. With a statistics target of 1,000 on the column (a histogram of 1,000
entries) the estimate follows the data: 1,001 rows for "otter-12", 99,000 for "otter",
which 1 run in 10 holds and the walk serves in 5 ms.

ANALYZE then samples 300,000 rows of the table instead of 30,000 (5 s at 1,000,000 runs).
The table is analyzed here, so the plans change now rather than at autovacuum's next pass.
SQLite: nothing (its search is migration 0026's).
"""

from peewee import SqliteDatabase

MODELS = ()
STATISTICS = 1000


def _set_statistics(db, target):
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql(f'ALTER TABLE "flow_run" ALTER COLUMN "name" SET STATISTICS {target}')
    db.execute_sql('ANALYZE "flow_run"')


def up(migrator, db):
    """Raise the statistics target of ``flow_run.name`` and analyze the table (PostgreSQL)."""
    _set_statistics(db, STATISTICS)


def down(migrator, db):
    """Give ``flow_run.name`` the default statistics target again (PostgreSQL)."""
    _set_statistics(db, -1)
