"""Embedded services: the periodic services (``app.services.periodic.SERVICES``) on a server
thread.

``orion start`` without ``ORION_REDIS_URL`` starts a :class:`ServiceThread` in every gunicorn
worker (after fork, so each uses its own connections). Exactly one of them runs the services:
each first takes a lock held for the life of its process, and the others keep trying once a
loop, so when the holder's worker exits (restart, crash) another worker takes over within a
loop. The lock is

- SQLite: an exclusive ``flock`` on ``<database file>.services.lock`` (released by the
  kernel when the process ends);
- PostgreSQL: the session advisory lock :data:`ADVISORY_LOCK_KEY` on a connection of its
  own (released when that connection closes), so several ``orion start`` servers on one
  database also run one set of services between them.

Running the services in the gunicorn master instead would need threads and database
connections in a process that forks workers; the lock keeps every connection in the process
that opened it. The services are idempotent and safe concurrently anyway: the lock only
saves the duplicate work.
"""

import fcntl
import functools
import logging
import os
import threading
import time

import psycopg2

from app.db import database, is_sqlite
from app.services import periodic

log = logging.getLogger(__name__)

# pg_try_advisory_lock key of the embedded services ("ORIONSVC" read as a number).
ADVISORY_LOCK_KEY = 0x4F52494F4E535643


class SqliteServicesLock:
    """An exclusive, non-blocking lock on a file next to the SQLite database."""

    def __init__(self, database_path):
        self.path = database_path + ".services.lock"
        self._file = None

    def acquire(self):
        """True if this process holds the lock (now or already)."""
        if self._file is not None:
            return True
        handle = open(self.path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def held(self):
        return self._file is not None

    def release(self):
        """Give the lock up (closing the file releases the flock)."""
        if self._file is not None:
            self._file.close()
            self._file = None


class PostgresServicesLock:
    """A session advisory lock on a dedicated PostgreSQL connection."""

    def __init__(self, connect_params):
        self.connect_params = connect_params
        self._conn = None

    def acquire(self):
        """True if this process holds the lock (now or already)."""
        if self.held():
            return True
        conn = psycopg2.connect(**self.connect_params)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            acquired = cursor.fetchone()[0]
        if not acquired:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self):
        """True while the lock's connection is alive (a dropped connection lost the lock)."""
        if self._conn is None:
            return False
        try:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except psycopg2.Error:
            self._conn = None
            return False

    def release(self):
        """Give the lock up (closing its connection ends the session that holds it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def services_lock():
    """The lock for the bound database (see the module docstring)."""
    db = database.obj
    if is_sqlite():
        return SqliteServicesLock(db.database)
    return PostgresServicesLock({"dbname": db.database, **db.connect_params})


class ServiceThread(threading.Thread):
    """Runs the enabled periodic services, each its interval after its previous start, while
    this process holds the services lock. Errors are logged and the loop goes on; each
    pass's result is logged at debug level. :meth:`stop` ends the loop, which then gives the
    lock up, so another process takes the services over."""

    def __init__(self, config, logger=log):
        super().__init__(name="orion-services", daemon=True)
        self.config = config
        self.log = logger
        self.stopping = threading.Event()
        # (name, interval, one pass) of each enabled service.
        self.services = [
            (service.name, service.interval(config), functools.partial(service.function, config))
            for service in periodic.enabled_services(config)
        ]

    def run(self):
        if not self.services:
            return
        lock = services_lock()
        retry = min(loop for _, loop, _ in self.services)
        due = {name: 0.0 for name, _, _ in self.services}
        try:
            self._loop(lock, retry, due)
        finally:
            lock.release()

    def _loop(self, lock, retry, due):
        while not self.stopping.is_set():
            try:
                if not lock.held() and not lock.acquire():
                    self.stopping.wait(retry)
                    continue
            except Exception:  # e.g. the database is down: try again next loop
                self.log.exception("could not take the services lock")
                self.stopping.wait(retry)
                continue
            if not any(due.values()):
                self.log.info("Embedded services running in process %s", os.getpid())
            for name, loop, run in self.services:
                if time.monotonic() < due[name]:
                    continue
                due[name] = time.monotonic() + loop
                try:
                    with database.connection_context():
                        result = run()
                except Exception:
                    self.log.exception("Service %s failed", name)
                else:
                    self.log.debug("Service %s ran: %r", name, result)
            self.stopping.wait(max(0.0, min(due.values()) - time.monotonic()))

    def stop(self):
        self.stopping.set()
