"""Versioned schema migrations, run by peewee's built-in runner (``playhouse.migrations``).

Migrations are the numbered modules in this folder (``0001_initial.py``, ...), applied in order
and recorded by name in the ``orion_migrations`` table. Each defines ``up(migrator, db)`` and
``down(migrator, db)``, declares frozen copies of the models it touches (a migration never
imports ``app.models``), and lists the models whose tables it creates in a module-level
``MODELS`` tuple, which is how :func:`reset` knows every table any Orion version has created.

Every operation that changes the schema runs as ONE transaction holding the migration lock:
``pg_advisory_xact_lock`` on PostgreSQL, the database write lock (``BEGIN IMMEDIATE``) on
SQLite. A second process migrating at the same time waits, then finds nothing left to do; a
migration that fails rolls the whole run back (DDL is transactional on both backends), so the
history never records half a run. On SQLite, foreign-key enforcement is off while migrating (so
table rebuilds do not cascade; the pragma only changes outside a transaction) and
``PRAGMA foreign_key_check`` must come back clean before the commit.

Call these functions outside any transaction; they use the calling thread's connection (peewee
connects on demand) and leave it open. ``db`` may be the ``app.db.database`` proxy or a peewee
database. Failures raise :class:`app.exceptions.SchemaTooNew` (the database was migrated by a
newer Orion), ``playhouse.migrations.MigrationError`` (unknown target, foreign-key violations)
or a peewee ``DatabaseError``.
"""

import os
from contextlib import contextmanager, nullcontext

from peewee import OperationalError, ProgrammingError, Proxy, SqliteDatabase
from playhouse.migrations import Migration, MigrationError, Runner

from app.exceptions import SchemaTooNew
from app.models import TABLES

HISTORY_TABLE = "orion_migrations"
DIRECTORY = os.path.dirname(os.path.abspath(__file__))

# Key of the PostgreSQL advisory lock that serialises Orion migrations ("orion" in ASCII).
_PG_LOCK_KEY = 0x6F72696F6E

__all__ = ["HISTORY_TABLE", "upgrade", "downgrade", "status", "reset", "check_schema"]


def upgrade(db, target=None):
    """Apply pending migrations in order, stopping after ``target`` if given.

    Returns the names applied (empty when up to date). Raises ``SchemaTooNew`` if the database
    records a migration this Orion does not have, and ``MigrationError`` for an unknown target.
    """
    runner = _runner(db)
    with _migration_lock(db):
        _refuse_newer(runner.applied())
        return runner.up(target)


def downgrade(db, target=None):
    """Revert applied migrations, newest first, leaving the database at ``target``.

    ``target=None`` reverts every migration (all Orion tables and data are dropped); otherwise
    ``target`` stays applied and everything after it is reverted. Returns the names reverted,
    newest first. Raises ``SchemaTooNew`` if the database is newer than this Orion, and
    ``MigrationError`` if ``target`` is not applied.
    """
    runner = _runner(db)
    with _migration_lock(db):
        _refuse_newer(runner.applied())
        applied = [m.name for m in runner.status() if m.applied is not None]
        if target is None:
            through = applied[0] if applied else None
        elif target not in applied:
            raise MigrationError(f'"{target}" is not an applied migration.')
        else:
            after = applied[applied.index(target) + 1 :]
            through = after[0] if after else None
        return runner.down(through) if through is not None else []


def status(db):
    """Every migration with whether it is applied, oldest first: ``[(name, applied), ...]``.

    Migrations recorded in the database but unknown to this Orion are listed as applied.
    """
    return [(m.name, m.applied is not None) for m in _runner(db).status()]


def reset(db):
    """Drop every Orion table and the history, then apply every migration; returns their names.

    Works on an empty database and on one whose tables were created some other way (no history,
    or a history from a newer Orion). All data in Orion's tables is lost.
    """
    runner = _runner(db)
    tables = _orion_tables(runner)
    # SQLite has no DROP ... CASCADE, and needs none: its foreign keys are off while migrating.
    cascade = not isinstance(runner.database, SqliteDatabase)
    with _migration_lock(db):
        for table in tables:
            runner.migrator.migrate(runner.migrator.drop_table(table, safe=True, cascade=cascade))
        return runner.up()


def check_schema(db):
    """Refuse a database migrated by a newer Orion; pass when it is empty, current or behind.

    One query in the common case. Raises ``SchemaTooNew`` naming the database's newest
    migration and the latest one this Orion knows.
    """
    _refuse_newer(_recorded_names(_runner(db)))


def _real(db):
    """The peewee database behind ``db`` (which may be a proxy)."""
    return db.obj if isinstance(db, Proxy) else db


def _runner(db):
    """A playhouse runner over this folder's migrations, with Orion's history table."""
    return Runner(_real(db), DIRECTORY, table_name=HISTORY_TABLE)


def _known_names():
    """Names of the migrations shipped with this Orion, oldest first."""
    return [m.name for m in Migration.load_directory(DIRECTORY)]


def _refuse_newer(recorded):
    """Raise ``SchemaTooNew`` if ``recorded`` (names) holds a migration this Orion lacks."""
    known = _known_names()
    unknown = set(recorded) - set(known)
    if unknown:
        latest = known[-1] if known else "none"
        raise SchemaTooNew(
            f"database schema is at migration {max(unknown)}, newer than this Orion knows "
            f"(latest {latest}); upgrade Orion"
        )


def _recorded_names(runner):
    """Names recorded in the history table; empty if the table does not exist."""
    db = runner.database
    history = runner.History
    # A failed statement aborts a PostgreSQL transaction: isolate the probe if one is open.
    guard = db.savepoint() if db.in_transaction() else nullcontext()
    try:
        with guard:
            return [name for (name,) in history.select(history.name).tuples()]
    except (OperationalError, ProgrammingError):
        if history.table_exists():
            raise
        return []


def _orion_tables(runner):
    """Names of every table Orion may have created, plus the history table."""
    names = {model._meta.table_name for model in TABLES}
    for migration in runner.migrations():
        names.update(model._meta.table_name for model in getattr(migration.load(), "MODELS", ()))
    return sorted(names) + [HISTORY_TABLE]


@contextmanager
def _migration_lock(db):
    """One transaction holding the migration lock (see the module docstring)."""
    db = _real(db)
    if not isinstance(db, SqliteDatabase):
        with db.atomic():
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
            yield
        return
    foreign_keys = db.pragma("foreign_keys")
    db.pragma("foreign_keys", 0)
    try:
        with db.atomic(lock_type="IMMEDIATE"):
            yield
            violations = (
                db.execute_sql("PRAGMA foreign_key_check").fetchall() if foreign_keys else []
            )
            if violations:
                raise MigrationError(
                    f"migration left {len(violations)} foreign key violation(s), first: "
                    f"table {violations[0][0]!r} row {violations[0][1]} -> {violations[0][2]!r}"
                )
    finally:
        db.pragma("foreign_keys", foreign_keys)
