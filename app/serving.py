"""The gunicorn worker ``orion start`` runs: gthread, serving a keep-alive connection's
requests back to back on one thread.

gunicorn's gthread worker hands a kept-alive connection back to its main loop after each
response: the loop registers the socket with its poller, wakes when the next request
arrives, and queues the connection to the thread pool again. That is three thread
switches and a handful of syscalls per request. Orion's clients (the SDK, agents, the
anchor benchmark) send their next request on the same connection a millisecond or two
later, so most of that work buys nothing.

:class:`KeepAliveThreadWorker` lets the thread that answered a keep-alive request wait up
to :attr:`~KeepAliveThreadWorker.linger_seconds` for that connection's next request and
serve it itself. Lingering never takes threads from other clients: a thread lingers only
when no connection is waiting for a thread, and at most half the pool lingers at once (so
with one thread it never does). A connection that stays quiet goes back to the poller as
in gthread; keep-alive timeouts, graceful stop and ``max_requests`` behave as there.

It relies on gthread internals (``TConn.parser``, the bool ``handle`` returns); gunicorn is
pinned in setup.py and tests/test_serving.py exercises the worker in real processes.

:func:`freeze_loaded_app` is the other half of serving: called once the app is built, in the
process that serves it.
"""

import gc
import select
import threading

from gunicorn.workers.gthread import ThreadWorker


class KeepAliveThreadWorker(ThreadWorker):
    """gthread with back-to-back keep-alive requests served on one thread (module doc)."""

    #: How long a thread waits for a kept-alive connection's next request before handing
    #: the connection back to the main loop. Long enough for a client's work between two
    #: calls; a lingering thread sleeps in poll(2), holding neither CPU nor the GIL.
    linger_seconds = 0.01

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._counts = threading.Lock()
        self._queued = 0  # connections submitted to the pool and not yet picked up
        self._lingering = 0
        self._max_lingering = self.cfg.threads // 2

    def enqueue_req(self, conn):
        with self._counts:
            self._queued += 1
        super().enqueue_req(conn)

    def handle(self, conn):
        """Serve ``conn``'s request, then, while allowed, its next ones as they arrive;
        return what gthread's ``handle`` returned for the last (True: keep the connection
        alive)."""
        with self._counts:
            self._queued -= 1
        while True:
            keep = super().handle(conn)
            if keep is not True or not self.alive:
                return keep
            if conn.parser.unreader.buf.getvalue():
                continue  # the client pipelined: its next request is already read
            if not self._next_request_arrived(conn):
                return keep

    def _take_lingering_slot(self):
        """True, counting this thread as lingering, if no connection waits for a thread
        and fewer than half the threads linger."""
        with self._counts:
            if self._queued or self._lingering >= self._max_lingering:
                return False
            self._lingering += 1
            return True

    def _next_request_arrived(self, conn):
        """Wait for ``conn`` to become readable, if a lingering thread is allowed now;
        True when it did (a request, or the client closing, which ``handle`` sees)."""
        if not self._take_lingering_slot():
            return False
        try:
            poller = select.poll()
            poller.register(conn.sock, select.POLLIN)  # poll(2) adds hang-ups and errors
            return bool(poller.poll(self.linger_seconds * 1000))
        except (OSError, ValueError):  # the socket closed under us
            return False
        finally:
            with self._counts:
                self._lingering -= 1


def freeze_loaded_app():
    """Collect garbage once, then freeze every object alive (the modules, the app, its
    routes and templates), as ``orion start`` and ``wsgi.py`` do once the app is built.

    Those objects live as long as the process. Frozen, they are skipped by every garbage
    collection after this one: a full collection otherwise walks them all, 60-80 ms with the
    app loaded, on whichever request triggers it (one every few large pages, which made the
    run page's p95 two to eight times its p50: bench/README.md). Before a fork their pages
    also stay shared with the workers, as no collection writes to their headers.
    """
    gc.collect()
    gc.freeze()
