"""The database handle and how it is opened.

``database`` is a proxy bound at run time by :func:`init_database` from the one URL setting:

- ``sqlite:///<path>``: WAL journal, ``synchronous`` as ``ORION_SQLITE_SYNCHRONOUS`` says
  (:data:`SQLITE_SYNCHRONOUS`), foreign keys on, a busy timeout, and every transaction
  opened with ``BEGIN IMMEDIATE``. A deferred transaction that reads first cannot wait for the
  write lock when it later writes (SQLite answers "database is locked" at once); an immediate
  one takes the lock up front and waits up to the busy timeout instead.
- ``postgresql://user:pass@host:port/name``: a pool of psycopg2 connections, which return
  timestamps as aware UTC datetimes, UUIDs as canonical strings and JSON parsed by the C
  scanner (psycopg2's defaults cost a Python ``json.loads`` and a ``UUID()`` per value,
  about half the time of reading a page of 200 runs).

:func:`ensure_database` creates a PostgreSQL database that does not exist yet (``orion start``
and ``orion db upgrade`` call it before migrating), or says how to.

Services own their transactions (``with database.atomic():``); request hooks only connect and
return the connection to the pool.

Both database classes offer two ways to run the fixed-shape statements of
``app.models.statements``:

- ``execute_deferred(sql, params, prepared=False)``, for a statement whose result nobody reads.
  On PostgreSQL it is queued and travels in the round trip of the transaction's next
  statement, or of its COMMIT; on SQLite, which has no round trips to save, it runs at once.
- ``execute_prepared(sql, params)``: on PostgreSQL the statement is prepared on the server once
  per connection and executed by name afterwards, which skips parsing and planning (a third
  of the server's time for a run read with its state). SQLite's driver already keeps
  compiled statements per connection, so there it is ``execute_sql``.

See :class:`OrionPostgresqlDatabase`.
"""

import datetime
import functools
import hashlib
import json
import os
import re
import threading
from typing import ClassVar
from urllib.parse import urlsplit

import psycopg2
from peewee import DatabaseProxy, __exception_wrapper__
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase
from psycopg2 import errors as pg_errors
from psycopg2 import extensions as pg_extensions
from psycopg2 import sql as pg_sql

from app.exceptions import DatabaseMissing

database = DatabaseProxy()

# Seconds a request waits for a free pooled connection before failing.
POOL_WAIT_SECONDS = 30

# SQLite's ``synchronous`` levels ORION_SQLITE_SYNCHRONOUS accepts. In WAL mode both keep
# every acknowledged commit through a crash of the process: ``normal`` syncs the WAL only at
# checkpoints, so a power loss or OS crash may lose the last commits (never corrupt the
# file); ``full`` syncs it at every commit, so they survive that too, at the cost of an fsync
# per commit (figures in bench/README.md, ``bench_liveness.py``).
SQLITE_SYNCHRONOUS = ("normal", "full")


_parse_json = json.JSONDecoder().scan_once
_fromisoformat = datetime.datetime.fromisoformat

_PG_TYPECASTERS = (
    # timestamp: stored as UTC (see app.models.UTCDateTimeField).
    pg_extensions.new_type(
        (1114,),
        "ORION_TIMESTAMP_UTC",
        lambda value, cursor: None if value is None else _fromisoformat(value + "+00:00"),
    ),
    pg_extensions.new_type((2950,), "ORION_UUID_TEXT", lambda value, cursor: value),
    # json, jsonb: the server's text never starts with whitespace, as scan_once requires.
    pg_extensions.new_type(
        (114, 3802),
        "ORION_JSON",
        lambda value, cursor: None if value is None else _parse_json(value, 0)[0],
    ),
)


class OrionSqliteDatabase(PooledSqliteDatabase):
    """Pooled SQLite; ``execute_deferred`` runs the statement at once (no round trips) and
    ``execute_prepared`` is ``execute_sql`` (sqlite3 caches compiled statements itself).

    Threads of one process take turns at transactions on a mutex before ``BEGIN
    IMMEDIATE``. SQLite lets one writer in at a time anyway, and a writer that finds the
    database locked sleeps in its busy handler (1, 2, 5, 10 ... 100 ms) before trying again,
    so threads contending through SQLite alone wait long after the lock is free: with four
    clients on one server, a p95 of 16 ms for a 2 ms request. Queued on the mutex, the next
    thread starts the moment the previous one commits. Other processes (a CLI command, a
    second worker) still meet at SQLite's lock and its busy timeout.
    """

    # Run names (``RunNameField`` in app.models.runs): SQLite enforces no declared length,
    # and changing a column's declared type would mean rebuilding the table, so its tables
    # keep the one they were created with.
    field_types: ClassVar[dict[str, str]] = {
        **PooledSqliteDatabase.field_types,
        "RUN_NAME": "VARCHAR(255)",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._transaction_mutex = threading.Lock()

    def begin(self, lock_type=None):
        self._transaction_mutex.acquire()
        self._state.holds_transaction_mutex = True
        try:
            super().begin(lock_type)
        except BaseException:
            self._release_transaction_mutex()
            raise

    def commit(self):
        try:
            super().commit()
        finally:
            self._release_transaction_mutex()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release_transaction_mutex()

    def close(self):
        try:
            return super().close()
        finally:
            self._release_transaction_mutex()  # a transaction abandoned with its connection

    def _release_transaction_mutex(self):
        if getattr(self._state, "holds_transaction_mutex", False):
            self._state.holds_transaction_mutex = False
            self._transaction_mutex.release()

    def execute_deferred(self, sql, params=(), prepared=False):
        """Execute ``sql`` now; the result is not returned (see the module docstring)."""
        self.execute_sql(sql, params)

    def execute_prepared(self, sql, params=()):
        """Execute ``sql``; returns the cursor."""
        return self.execute_sql(sql, params)


# At most this many statements are kept prepared per PostgreSQL connection; past it,
# statements run unprepared (the hot ones are prepared first, in practice a few dozen).
MAX_PREPARED_PER_CONNECTION = 256


class _PreparingConnection(pg_extensions.connection):
    """A psycopg2 connection that remembers the statements prepared on its session.

    ``prepared``: names believed prepared, including PREPAREs queued or in flight;
    ``unconfirmed``: those whose PREPARE has not yet come back from a successful round trip;
    ``deallocate_first``: the session's prepared statements are uncertain (a round trip that
    carried a PREPARE failed, or a queued one was dropped), so the next PREPARE sent is
    preceded by ``DEALLOCATE ALL``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = set()
        self.unconfirmed = set()
        self.deallocate_first = False


@functools.lru_cache(maxsize=1024)
def _prepared_forms(sql):
    """``(name, "PREPARE name AS ...", "EXECUTE name(%s, ...)")`` for ``sql``, or None if its
    text holds a ``%`` that is not a ``%s`` placeholder (it is then run unprepared)."""
    if sql.count("%") != sql.count("%s"):
        return None
    count = sql.count("%s")
    numbers = iter(range(1, count + 1))
    body = re.sub("%s", lambda match: f"${next(numbers)}", sql)
    name = "orion_" + hashlib.sha1(sql.encode()).hexdigest()[:20]
    arguments = f"({', '.join(['%s'] * count)})" if count else ""
    return name, f"PREPARE {name} AS {body}", f"EXECUTE {name}{arguments}"


class OrionPostgresqlDatabase(PooledPostgresqlDatabase):
    """Pooled PostgreSQL whose connections use Orion's typecasters (module docstring), and
    which sends a transaction's statements in as few network round trips as it can.

    A connection handed out by the pool is checked with its local status only. peewee's
    default sends ``SELECT 1`` on every checkout, a round trip per request; without it, a
    connection the server dropped fails its next query once (503) and is then discarded.

    Round trips: ``BEGIN`` is not sent on its own but ahead of the transaction's first
    statement, and statements whose result nobody reads (``execute_deferred``: a state
    transition's row lock, state row and run update, for instance) wait and go ahead of the
    next statement or with ``COMMIT``. A transition is then two round trips, not five. The
    statements still run in the order they were issued, in the same transaction; what changes
    is where an error in a deferred one is raised: at the next statement or at the commit,
    inside the same ``atomic()`` block, which rolls the whole transaction back as before.

    Prepared statements (``execute_prepared``, ``execute_deferred(prepared=True)``): the first
    use on a connection sends ``PREPARE`` in the same round trip as the ``EXECUTE``. Prepared
    statements belong to the session, not to transactions, so a rollback keeps them; when it
    is unclear whether a PREPARE ran (its round trip failed, or it was queued and dropped by a
    rollback), the connection forgets them all and drops them with ``DEALLOCATE ALL`` ahead of
    its next PREPARE.
    """

    # Run names (``RunNameField`` in app.models.runs): 2,000 bytes of UTF-8 at most (the API's
    # ``RUN_NAME_MAX_BYTES``), which keeps their index entries under PostgreSQL's B-tree limit.
    field_types: ClassVar[dict[str, str]] = {
        **PooledPostgresqlDatabase.field_types,
        "RUN_NAME": "VARCHAR(2000)",
    }

    def begin(self, isolation_level=None):
        """Open a transaction lazily: ``BEGIN`` travels with the transaction's first statement.

        A transaction that runs nothing sends nothing.
        """
        self._state.deferred = []
        if isolation_level or self._isolation_level:
            return super().begin(isolation_level)
        if self.is_closed():
            self.connect()  # now, as peewee's begin() does: connecting resets the state
        self._state.begin_pending = True

    def execute_deferred(self, sql, params=(), prepared=False):
        """Queue ``sql`` (with ``params``) to be sent ahead of the transaction's next statement
        or with its commit; outside a transaction, execute it now. ``prepared``: run it as a
        prepared statement (see ``execute_prepared``)."""
        if prepared:
            sql = self._prepared_text(sql)
        if not self.in_transaction():
            self.execute_sql(sql, params)
            return
        with __exception_wrapper__:
            statement = self.cursor().mogrify(sql, params or ())
        self._state.deferred.append(statement.decode())

    def execute_prepared(self, sql, params=()):
        """Execute ``sql`` (``%s`` placeholders) as a statement prepared on this connection;
        returns the cursor."""
        return self.execute_sql(self._prepared_text(sql), params)

    def _prepared_text(self, sql):
        """The text that runs ``sql`` prepared: EXECUTE, preceded by its PREPARE the first
        time on this connection; ``sql`` itself if it cannot or need not be prepared."""
        forms = _prepared_forms(sql)
        conn = self.connection()
        if forms is None or not isinstance(conn, _PreparingConnection):
            return sql
        name, prepare, execute = forms
        if name in conn.prepared:
            return execute
        if len(conn.prepared) >= MAX_PREPARED_PER_CONNECTION:
            return sql
        conn.prepared.add(name)
        conn.unconfirmed.add(name)
        if conn.deallocate_first:
            conn.deallocate_first = False
            prepare = f"DEALLOCATE ALL; {prepare}"
        return f"{prepare}; {execute}"

    def _forget_unconfirmed(self):
        """A PREPARE may or may not have run: forget every prepared statement of this
        connection (its next PREPARE drops them all first)."""
        conn = self._state.conn
        if isinstance(conn, _PreparingConnection) and conn.unconfirmed:
            conn.prepared.clear()
            conn.unconfirmed.clear()
            conn.deallocate_first = True

    def _execute_cursor(self, sql, params, **cursor_options):
        prefix = self._take_pending()
        if prefix:
            # The queued statements are already interpolated and their values may hold "%",
            # which the interpolation of this statement's parameters would read as a
            # placeholder: doubled, it comes out as itself.
            sql = prefix.replace("%", "%%") + sql
        try:
            cursor = super()._execute_cursor(sql, params, **cursor_options)
        except Exception:
            self._forget_unconfirmed()
            raise
        conn = self._state.conn
        if isinstance(conn, _PreparingConnection):
            conn.unconfirmed.clear()
        return cursor

    def commit(self):
        if getattr(self._state, "deferred", None):
            self._execute_cursor("COMMIT", ())
        elif not self._discard_pending_begin():
            super().commit()

    def rollback(self):
        deferred = getattr(self._state, "deferred", None)
        if deferred:
            deferred.clear()  # never sent: nothing to undo (but a PREPARE may be among them)
            self._forget_unconfirmed()
        if not self._discard_pending_begin():
            super().rollback()

    def _take_pending(self):
        """The text to send ahead of the next statement: a lazy BEGIN and the deferred
        statements, each ending in ``; ``; empty if there is none. Forgets them."""
        parts = []
        if getattr(self._state, "begin_pending", False):
            self._state.begin_pending = False
            parts.append("BEGIN")
        deferred = getattr(self._state, "deferred", None)
        if deferred:
            parts.extend(deferred)
            deferred.clear()
        return "".join(f"{part}; " for part in parts)

    def _discard_pending_begin(self):
        """True (and forgets it) if a lazy BEGIN was never sent: nothing to end."""
        pending = getattr(self._state, "begin_pending", False)
        self._state.begin_pending = False
        return pending

    def _is_closed(self, conn):
        return bool(conn.closed) or self._adapter.txn_status(conn) == self._adapter.txn_unknown

    def _can_reuse(self, conn):
        """Checked when a connection comes back to the pool. One the server dropped is
        discarded, and so are the idle ones: a server restart or a failover drops them all,
        and each would otherwise fail one more request."""
        if conn.closed:
            self.close_idle()
            return False
        return super()._can_reuse(conn)

    def _connect(self):
        conn = super()._connect()
        for caster in _PG_TYPECASTERS:
            pg_extensions.register_type(caster, conn)
        return conn


def open_database(
    url, pool_size=20, stale_seconds=300, busy_timeout_seconds=60, sqlite_synchronous="normal"
):
    """Return an unconnected peewee database for ``url`` (see the module docstring).

    ``sqlite_synchronous`` (one of :data:`SQLITE_SYNCHRONOUS`, any case) applies to SQLite
    only; another value is a ValueError naming ORION_SQLITE_SYNCHRONOUS."""
    scheme = urlsplit(url).scheme
    synchronous = str(sqlite_synchronous).strip().lower()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"ORION_SQLITE_SYNCHRONOUS={sqlite_synchronous!r}: use one of "
            + ", ".join(SQLITE_SYNCHRONOUS)
        )
    if scheme == "sqlite":
        path = url[len("sqlite:///") :]
        if path != ":memory:":
            path = os.path.abspath(os.path.expanduser(path))
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return OrionSqliteDatabase(
            path,
            max_connections=pool_size,
            stale_timeout=stale_seconds,
            timeout=POOL_WAIT_SECONDS,
            lock_type="IMMEDIATE",
            # Pooled connections move between threads; each is used by one thread at a time.
            check_same_thread=False,
            pragmas={
                "journal_mode": "wal",
                "synchronous": synchronous,
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
            connection_factory=_PreparingConnection,
            **params,
        )
    raise ValueError(
        f"Unsupported database URL scheme {scheme!r}: use sqlite:///<path> or "
        "postgresql://user:password@host:port/name"
    )


# Databases every PostgreSQL server has, to ask whether another one exists and to create it.
_MAINTENANCE_DATABASES = ("postgres", "template1")


def ensure_database(url, create=True):
    """Make sure the PostgreSQL database named in ``url`` exists; True if this created it.

    If it cannot be connected to because it does not exist, ``create`` makes it
    (``CREATE DATABASE``, owned by the URL's user, through the server's maintenance
    database); without ``create``, or when the user may not create databases, it raises
    :class:`DatabaseMissing` saying how to create it. Any other connection failure is raised
    as the peewee error queries would raise. SQLite files are created on first use: nothing to do.
    """
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        return False
    params = pg_extensions.parse_dsn(url)
    name = params.pop("dbname", None) or params.get("user")
    try:
        psycopg2.connect(dbname=name, **params).close()
        return False
    except psycopg2.OperationalError as error:
        failure = error
    admin = _maintenance_connection(params)
    if admin is None:
        if f'database "{name}" does not exist' in str(failure):
            raise DatabaseMissing(
                _how_to_create(
                    name,
                    params,
                    "cannot check or create it: its maintenance database is closed to it",
                )
            )
        _raise_as_peewee(failure)
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone():
                _raise_as_peewee(failure)  # it exists: the failure was something else
            if not create:
                raise DatabaseMissing(
                    f'PostgreSQL database "{name}" does not exist: `orion db upgrade` '
                    "creates it (or create it yourself) and migrates it."
                )
            try:
                cursor.execute(pg_sql.SQL("CREATE DATABASE {}").format(pg_sql.Identifier(name)))
            except pg_errors.DuplicateDatabase:
                return False  # created meanwhile by another process
            except psycopg2.Error as error:
                reason = error.diag.message_primary or str(error).strip()
                raise DatabaseMissing(_how_to_create(name, params, reason)) from None
    finally:
        admin.close()
    return True


def _raise_as_peewee(error):
    """Raise a driver error as the peewee error it maps to, as queries raise them."""
    with __exception_wrapper__:
        raise error


def _maintenance_connection(params):
    """An autocommit connection to a maintenance database, or None if none will have us."""
    for maintenance in _MAINTENANCE_DATABASES:
        try:
            connection = psycopg2.connect(dbname=maintenance, **params)
        except psycopg2.OperationalError:
            continue
        connection.autocommit = True
        return connection
    return None


def _how_to_create(name, params, reason):
    """The message for a database that does not exist and cannot be created here."""
    user = params.get("user")
    flags = [
        f"-{flag} {params[key]}" for flag, key in (("h", "host"), ("p", "port")) if params.get(key)
    ]
    flags.append("-U postgres")
    owner = f' OWNER "{user}"' if user else ""
    if user:
        flags.append(f"-O {user}")
    return (
        f'PostgreSQL database "{name}" does not exist, and user {user or "(default)"} '
        f"cannot create it ({reason}). Create it as a user who may, then run this again: "
        f"`createdb {' '.join(flags)} {name}`, or in psql "
        f'`CREATE DATABASE "{name}"{owner};`.'
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
        sqlite_synchronous=config["SQLITE_SYNCHRONOUS"],
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


def pool_use():
    """This process's pooled connections: ``(open, in_use)``."""
    pool = database.obj
    if pool is None:
        return 0, 0
    in_use = len(pool._in_use)
    return len(pool._connections) + in_use, in_use


def close_db(exc=None):
    """Request hook: hand this thread's connection back to the pool."""
    if not database.is_closed():
        database.close()
