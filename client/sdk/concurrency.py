"""Global concurrency and rate limits: hold slots of a limit kept on the Orion server.

    from client.sdk.concurrency import concurrency, rate_limit

    with concurrency("warehouse", occupy=2):   # waits for 2 free slots, gives them back after
        load()

    rate_limit("github-api")                   # waits for a slot of a limit with slot decay

The limits are Prefect 2.20's global concurrency limits (``/api/v2/concurrency_limits``),
made with ``OrionClient.create_global_concurrency_limit`` or Prefect's own tools. A name with
no limit gets an inactive one, which limits nothing. Calls go through the client flows and
tasks use (``client.sdk.engine.get_sdk_client``). While a limit has no room the server
answers 423 Locked with an estimate of the wait; these functions sleep that long (at least
:data:`MIN_WAIT_SECONDS`, at most :data:`MAX_WAIT_SECONDS`, with jitter so waiters spread
out) and ask again, until ``timeout_seconds`` (None: forever) has passed, then raise
TimeoutError.

Slots never leak when the process holding them dies: :func:`concurrency` takes its slots
with a lease. It names itself with a random holder id, and the server records, with the
increment and in the same transaction, that the holder has these slots until now +
``lease_seconds``. A daemon thread renews the lease every ``lease_seconds / 3`` while the
block runs; leaving the block stops it and gives the slots back under the same holder. If
the process is killed, renewals stop, and the first liveness pass of the server
(``app.services.periodic.check_liveness``, every ``ORION_LIVENESS_LOOP_SECONDS``) after the
expiry gives the slots back. A holder that was only frozen past its expiry (its slots
already given back) finds its lease gone when it renews (a warning is logged) and its final
release gives back nothing, so the slots are never freed twice. :func:`rate_limit` takes
slots that decay by themselves and holds nothing.
"""

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from client.api.exceptions import Locked, ObjectNotFound

log = logging.getLogger(__name__)

MIN_WAIT_SECONDS = 0.05
MAX_WAIT_SECONDS = 5.0
DEFAULT_LEASE_SECONDS = 30.0


def _names(names: str | Iterable[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _acquire(
    orion: Any,
    names: list[str],
    occupy: int,
    mode: str,
    timeout_seconds: float | None,
    holder: uuid.UUID | None = None,
    lease_seconds: float | None = None,
) -> None:
    """Ask for the slots until granted; TimeoutError after ``timeout_seconds``."""
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    attempt = 0
    while True:
        try:
            orion.increment_concurrency_slots(names, occupy, mode, holder, lease_seconds)
            return
        except Locked as locked:
            backoff = MIN_WAIT_SECONDS * 2**attempt
            wait = locked.retry_after if locked.retry_after is not None else backoff
            wait = min(max(wait, MIN_WAIT_SECONDS), MAX_WAIT_SECONDS)
            wait = random.uniform(wait / 2, wait)
        attempt = min(attempt + 1, 10)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"No {occupy} free slot(s) of {', '.join(names)} within {timeout_seconds} s."
                )
            wait = min(wait, left)
        time.sleep(wait)


class _Renewer:
    """A daemon thread renewing ``holder``'s leases every ``lease_seconds / 3`` until
    stopped."""

    def __init__(self, orion: Any, holder: uuid.UUID, lease_seconds: float) -> None:
        self._orion, self._holder, self._lease_seconds = orion, holder, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orion-lease-renewer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_seconds / 3):
            try:
                self._orion.renew_concurrency_leases(self._holder, self._lease_seconds)
            except ObjectNotFound:
                log.warning(
                    "Concurrency slots of holder %s were released after their lease expired; "
                    "the limit no longer counts this block.",
                    self._holder,
                )
                return
            except Exception:  # a failed renewal is retried on the next tick
                log.warning("Could not renew concurrency lease of %s", self._holder, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def concurrency(
    names: str | Iterable[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> Iterator[None]:
    """Hold ``occupy`` slots of each limit in ``names`` for the block: wait until all are
    free (TimeoutError after ``timeout_seconds``), take them under a lease of
    ``lease_seconds`` renewed while the block runs, give them back when it ends (see the
    module docstring for what happens if the process dies)."""
    from client.sdk.engine import get_sdk_client

    names = _names(names)
    orion = get_sdk_client()
    holder = uuid.uuid4()
    _acquire(orion, names, occupy, "concurrency", timeout_seconds, holder, lease_seconds)
    started = time.monotonic()
    renewer = _Renewer(orion, holder, lease_seconds)
    try:
        yield
    finally:
        renewer.stop()
        orion.release_concurrency_slots(
            names, occupy, occupancy_seconds=time.monotonic() - started, holder=holder
        )


def rate_limit(
    names: str | Iterable[str], occupy: int = 1, timeout_seconds: float | None = None
) -> None:
    """Take ``occupy`` slots of each limit in ``names``, waiting until they are free
    (TimeoutError after ``timeout_seconds``). The slots are not given back: they decay at the
    limit's ``slot_decay_per_second``, which every active limit named must have (the server
    refuses others: ValidationError)."""
    from client.sdk.engine import get_sdk_client

    _acquire(get_sdk_client(), _names(names), occupy, "rate_limit", timeout_seconds)
