"""The database handle and how it is opened.

``database`` is a proxy bound at run time by :func:`init_database` from the one URL setting:

- ``sqlite:///<path>``: WAL journal, foreign keys on, a busy timeout, and every transaction
  opened with ``BEGIN IMMEDIATE``. A deferred transaction that reads first cannot wait for the
  write lock when it later writes (SQLite answers "database is locked" at once); an immediate
  one takes the lock up front and waits up to the busy timeout instead.
- ``postgresql://user:pass@host:port/name``: a pool of psycopg2 connections, which return
  timestamps as aware UTC datetimes, UUIDs as canonical strings and JSON parsed by the C
  scanner (psycopg2's defaults cost a Python ``json.loads`` and a ``UUID()`` per value,
  about half the time of reading a page of 200 runs).

Services own their transactions (``with database.atomic():``); request hooks only connect and
return the connection to the pool.
"""
import datetime
import json
import os
from urllib.parse import urlsplit

from peewee import DatabaseProxy
from psycopg2 import extensions as pg_extensions
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

database = DatabaseProxy()

# Seconds a request waits for a free pooled connection before failing.
POOL_WAIT_SECONDS = 30


_parse_json = json.JSONDecoder().scan_once
_fromisoformat = datetime.datetime.fromisoformat

_PG_TYPECASTERS = (
    # timestamp: stored as UTC (see app.models.UTCDateTimeField).
    pg_extensions.new_type(
        (1114,), "ORION_TIMESTAMP_UTC",
        lambda value, cursor: None if value is None else _fromisoformat(value + "+00:00")),
    pg_extensions.new_type((2950,), "ORION_UUID_TEXT", lambda value, cursor: value),
    # json, jsonb: the server's text never starts with whitespace, as scan_once requires.
    pg_extensions.new_type(
        (114, 3802), "ORION_JSON",
        lambda value, cursor: None if value is None else _parse_json(value, 0)[0]),
)


class OrionPostgresqlDatabase(PooledPostgresqlDatabase):
    """Pooled PostgreSQL whose connections use Orion's typecasters (module docstring).

    A connection handed out by the pool is checked with its local status only. peewee's
    default sends ``SELECT 1`` on every checkout, a round trip per request; without it, a
    connection the server dropped fails its next query once (503) and is then discarded.
    """

    def begin(self, isolation_level=None):
        """Open a transaction lazily: ``BEGIN`` travels with the transaction's first statement.

        peewee keeps PostgreSQL connections in autocommit mode and sends ``BEGIN`` as its own
        statement, a network round trip per transaction (one in five of a state transition).
        Here it is prepended to the first statement the transaction runs, so the two share a
        round trip; a transaction that runs nothing sends nothing.
        """
        if isolation_level or self._isolation_level:
            return super().begin(isolation_level)
        if self.is_closed():
            self.connect()  # now, as peewee's begin() does: connecting resets the state
        self._state.begin_pending = True

    def _execute_cursor(self, sql, params, **cursor_options):
        if getattr(self._state, "begin_pending", False):
            self._state.begin_pending = False
            sql = "BEGIN; " + sql
        return super()._execute_cursor(sql, params, **cursor_options)

    def commit(self):
        if not self._discard_pending_begin():
            super().commit()

    def rollback(self):
        if not self._discard_pending_begin():
            super().rollback()

    def _discard_pending_begin(self):
        """True (and forgets it) if a lazy BEGIN was never sent: nothing to end."""
        pending = getattr(self._state, "begin_pending", False)
        self._state.begin_pending = False
        return pending

    def _is_closed(self, conn):
        return bool(conn.closed) or self._adapter.txn_status(conn) == self._adapter.txn_unknown

    def _connect(self):
        conn = super()._connect()
        for caster in _PG_TYPECASTERS:
            pg_extensions.register_type(caster, conn)
        return conn


def open_database(url, pool_size=20, stale_seconds=300, busy_timeout_seconds=60):
    """Return an unconnected peewee database for ``url`` (see the module docstring)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///"):]
        if path != ":memory:":
            path = os.path.abspath(os.path.expanduser(path))
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return PooledSqliteDatabase(
            path,
            max_connections=pool_size,
            stale_timeout=stale_seconds,
            timeout=POOL_WAIT_SECONDS,
            lock_type="IMMEDIATE",
            # Pooled connections move between threads; each is used by one thread at a time.
            check_same_thread=False,
            pragmas={
                "journal_mode": "wal",
                "synchronous": "normal",
                "foreign_keys": 1,
                "busy_timeout": int(busy_timeout_seconds * 1000),
            },
        )
    if scheme in ("postgresql", "postgres"):
        params = parse_db_url(url, unquote_password=True, unquote_user=True)
        name = params.pop("database")
        return OrionPostgresqlDatabase(
            name,
            max_connections=pool_size,
            stale_timeout=stale_seconds,
            timeout=POOL_WAIT_SECONDS,
            **params,
        )
    raise ValueError(
        f"Unsupported database URL scheme {scheme!r}: use sqlite:///<path> or "
        "postgresql://user:password@host:port/name"
    )


def init_database(config):
    """Bind the ``database`` proxy to the database named by ``config['DATABASE_URL']``.

    Binding again (another app in the same process, or a test switching backends) closes the
    previous database's pooled connections first.
    """
    previous = database.obj
    if previous is not None:
        previous.close_all()
    db = open_database(
        config["DATABASE_URL"],
        pool_size=config["DATABASE_POOL_SIZE"],
        stale_seconds=config["DATABASE_POOL_STALE_SECONDS"],
        busy_timeout_seconds=config["DATABASE_BUSY_TIMEOUT_SECONDS"],
    )
    database.initialize(db)
    return db


def is_sqlite():
    """True when the bound database is SQLite."""
    return isinstance(database.obj, PooledSqliteDatabase)


def for_update(query):
    """Lock the selected rows until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite has no row locks, and needs none: every
    transaction already holds the database write lock (``BEGIN IMMEDIATE``).
    """
    return query if is_sqlite() else query.for_update()


def connect_db():
    """Request hook: take a connection for this thread (a no-op if it has one)."""
    database.connect(reuse_if_open=True)


def close_db(exc=None):
    """Request hook: hand this thread's connection back to the pool."""
    if not database.is_closed():
        database.close()
