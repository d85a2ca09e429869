"""PostgreSQL only: flow and task run names up to 2,000 bytes (they were ``varchar(255)``).

Run names are often made from a run's parameters (Prefect's ``flow_run_name`` and
``task_run_name`` templates: a file's path, an object's key), and Prefect's own columns
are unbounded: a Prefect task named after a 300-character path failed here with a 422 and
crashed its flow. They stay bounded, at 2,000 bytes of UTF-8 (``RUN_NAME_MAX_BYTES`` in
``app.schemas.limits``): both columns lead B-tree indexes, whose entries PostgreSQL caps at
2,704 bytes (the flow run's ``(state_type, name, id)`` index included).

Widening a ``varchar`` rewrites neither the table nor its indexes. On the way down longer
names are cut to 255 characters, which does rewrite them.
SQLite: nothing (it enforces no declared length; ``app.db`` keeps its declared type).
"""

from peewee import SqliteDatabase

MODELS = ()
TABLES = ("flow_run", "task_run")


def _set_name_type(db, column_type, using=""):
    if isinstance(db, SqliteDatabase):
        return
    for table in TABLES:
        db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "name" TYPE {column_type}{using}')


def up(migrator, db):
    """Widen ``flow_run.name`` and ``task_run.name`` to ``varchar(2000)`` (PostgreSQL)."""
    _set_name_type(db, "varchar(2000)")


def down(migrator, db):
    """Narrow them to ``varchar(255)`` again, cutting longer names (PostgreSQL)."""
    _set_name_type(db, "varchar(255)", ' USING left("name", 255)')
