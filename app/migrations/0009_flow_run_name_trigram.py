"""PostgreSQL only: a trigram GIN index on ``flow_run.name`` for name substring filters.

The flow runs list's "name contains" filter is ``name ILIKE '%text%'``, which no B-tree can
serve: with a million runs and rare matches, the newest-first walk read most of the
start-time index (0.2-0.75 s, bench/README.md). ``pg_trgm``'s GIN index finds the matching
rows directly. SQLite has no such index (and needs none at its sizes): there this migration
does nothing, as the models declare the index for PostgreSQL only (``BackendIndex``).
The extension is created if missing (``pg_trgm`` is a trusted extension: the database's
owner may create it) and left in place on downgrade, as other objects may use it.
"""

from peewee import SqliteDatabase

INDEX = 'CREATE INDEX "flow_run_name_trgm" ON "flow_run" USING GIN ("name" gin_trgm_ops)'

MODELS = ()


def up(migrator, db):
    """Create the extension (if missing) and the index, on PostgreSQL."""
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    db.execute_sql(INDEX)


def down(migrator, db):
    """Drop the index, on PostgreSQL."""
    if isinstance(db, SqliteDatabase):
        return
    db.execute_sql('DROP INDEX IF EXISTS "flow_run_name_trgm"')
