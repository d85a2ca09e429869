"""Run loggers, and shipping their records to ``POST /api/logs/`` from a background thread.

``get_run_logger()`` inside a flow or task returns a logger whose records are printed to the
console as usual (stderr, through the ``orion`` logger's handler) and also shipped to the API,
tagged with the flow run id (and task run id).

Shipping (:class:`LogShipper`): records are queued by the logging call (cheap, no I/O) and sent
by one background thread in batches of at most ``ORION_LOGS_BATCH_SIZE`` records (default 500)
and ``ORION_LOGS_BATCH_BYTES`` bytes (default 2 MB), at least every
``ORION_LOGS_INTERVAL_SECONDS`` (default 1 s) while records are waiting. A batch that cannot be
sent is kept and retried with a growing pause (each record carries a client-made id, so a batch
the server stored before the connection broke is not stored twice). The engine flushes at the
end of every flow run, and the process flushes at exit (for at most
``ORION_LOGS_EXIT_TIMEOUT_SECONDS``, default 30 s, so a server that is gone cannot hang the
exit; what could not be sent then is counted on stderr). A message longer than
``ORION_LOGS_MAX_MESSAGE_CHARS`` (default 100,000) is truncated, never dropped, and says so.

Timestamps shipped for one process are strictly increasing (a record created in the same
microsecond as the previous one is stamped one microsecond later), so sorting by timestamp
gives the order the lines were logged in.

``log_prints`` (:func:`printing_to_run_logger`): while a flow or task run whose
``log_prints`` is on executes, ``print()`` to stdout or stderr in its context becomes an INFO
line of its run logger, as in Prefect 2. ``builtins.print`` is replaced while at least one
such run executes in the process; the replacement looks at the calling context, so other
threads and runs without ``log_prints`` print as usual.
"""

from __future__ import annotations

import atexit
import builtins
import collections
import contextlib
import datetime
import io
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from client.sdk.context import get_flow_run_context, get_run_context, get_task_run_context

if TYPE_CHECKING:
    from client.api.client import OrionClient

_UTC = datetime.UTC
_RECORD_OVERHEAD_BYTES = 200
# How a batch of records is sent: the ``create_logs`` of a run's client.
Send = Callable[[list[dict[str, Any]]], Any]


def _env_number(name: str, default: float) -> Any:
    value = os.environ.get(name)
    return type(default)(value) if value else default


def truncate_message(message: str, limit: int) -> str:
    """``message`` cut to ``limit`` characters, ending with a note of how much was cut."""
    if len(message) <= limit:
        return message
    cut = len(message) - limit
    return f"{message[:limit]}... [truncated {cut} characters]"


class LogShipper:
    """Queues log records (dicts in the ``POST /api/logs/`` shape) and sends them in batches
    from a daemon thread, each through the ``send(records)`` it was queued with (the
    ``create_logs`` of the client of its flow run), which raises when a batch was not stored.
    """

    def __init__(
        self,
        batch_size: int = 500,
        batch_bytes: int = 2_000_000,
        interval: float = 1.0,
        exit_timeout: float = 30.0,
    ) -> None:
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.interval = interval
        self.exit_timeout = exit_timeout
        self._pending: collections.deque[tuple[Send, dict[str, Any]]] = collections.deque()
        self._cond = threading.Condition()
        self._queued = 0
        self._sent = 0
        self._flush_wanted = False
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="orion-log-shipper", daemon=True)
        self._thread.start()

    def put(self, record: dict[str, Any], send: Send) -> None:
        """Queue one record, to be sent with ``send``."""
        with self._cond:
            self._pending.append((send, record))
            self._queued += 1
            if len(self._pending) in (1, self.batch_size):
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued before this call was sent; False if ``timeout``
        seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._queued
            self._flush_wanted = True
            self._cond.notify_all()
            while self._sent < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """Flush (for at most ``exit_timeout`` seconds) and stop the thread; report on stderr
        how many records could not be sent."""
        flushed = self.flush(self.exit_timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            unsent = len(self._pending)
        if not flushed and unsent:
            print(
                f"orion: {unsent} log records could not be sent to the API before exit",
                file=sys.stderr,
            )

    def _take_batch(
        self,
    ) -> tuple[Send | None, list[dict[str, Any]]]:
        """The oldest records that share one ``send``, within the size bounds."""
        batch: list[dict[str, Any]] = []
        size = 0
        send = self._pending[0][0] if self._pending else None
        while self._pending and len(batch) < self.batch_size and self._pending[0][0] == send:
            cost = len(self._pending[0][1]["message"]) + _RECORD_OVERHEAD_BYTES
            if batch and size + cost > self.batch_bytes:
                break
            batch.append(self._pending.popleft()[1])
            size += cost
        return send, batch

    def _wait_for_batch(self) -> bool:
        """Under the lock: wait until a batch is due (full, a flush asked for, or the oldest
        waiting record has waited ``interval`` seconds). False when closing."""
        first_seen = None
        while not self._closing:
            if len(self._pending) >= self.batch_size:
                return True
            if not self._pending:
                self._flush_wanted = False
                first_seen = None
                self._cond.wait()
                continue
            if self._flush_wanted:
                return True
            if first_seen is None:
                first_seen = time.monotonic()
            remaining = first_seen + self.interval - time.monotonic()
            if remaining <= 0:
                return True
            self._cond.wait(remaining)
        return False

    def _loop(self) -> None:
        failures = 0
        while True:
            with self._cond:
                if not self._wait_for_batch():
                    return
                send, batch = self._take_batch()
            if send is None or not batch:
                continue
            try:
                send(batch)
            except Exception as exc:
                failures += 1
                with self._cond:
                    self._pending.extendleft((send, r) for r in reversed(batch))
                print(
                    f"orion: could not send {len(batch)} log records to the API "
                    f"(attempt {failures}, will retry): {exc}",
                    file=sys.stderr,
                )
                time.sleep(min(0.5 * 2**failures, 10.0))
                continue
            failures = 0
            with self._cond:
                self._sent += len(batch)
                self._cond.notify_all()


class OrionLogHandler(logging.Handler):
    """Turns records of run loggers (those carrying ``flow_run_id``) into API log records and
    queues them on the process's shipper; other records are ignored."""

    def __init__(self, shipper: LogShipper, max_message_chars: int = 100_000) -> None:
        super().__init__()
        self.shipper = shipper
        self.max_message_chars = max_message_chars
        self._last_micros = 0
        self._stamp_lock = threading.Lock()

    def _timestamp(self, created: float) -> str:
        micros = int(created * 1_000_000)
        with self._stamp_lock:
            if micros <= self._last_micros:
                micros = self._last_micros + 1
            self._last_micros = micros
        return datetime.datetime.fromtimestamp(micros / 1_000_000, _UTC).isoformat()

    def emit(self, record: logging.LogRecord) -> None:
        flow_run_id = getattr(record, "flow_run_id", None)
        send = getattr(record, "orion_send", None)
        task_run_id = getattr(record, "task_run_id", None)
        if flow_run_id is None or send is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message = message + "\n" + logging.Formatter().formatException(record.exc_info)
            self.shipper.put(
                {
                    "id": str(uuid.uuid4()),
                    "name": record.name,
                    "level": record.levelno,
                    "message": truncate_message(message, self.max_message_chars),
                    "timestamp": self._timestamp(record.created),
                    "flow_run_id": str(flow_run_id),
                    "task_run_id": str(task_run_id) if task_run_id else None,
                },
                send,
            )
        except Exception:
            self.handleError(record)


class RunFormatter(logging.Formatter):
    """Console lines: ``12:00:01.234 | INFO    | Task run 'add-0' - message``."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(run_label)s%(message)s",
            datefmt="%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        task_name = getattr(record, "task_run_name", None)
        flow_name = getattr(record, "flow_run_name", None)
        if task_name:
            record.run_label = f"Task run {task_name!r} - "
        elif flow_name:
            record.run_label = f"Flow run {flow_name!r} - "
        else:
            record.run_label = f"{record.name} - "
        return super().format(record)


_setup_lock = threading.Lock()
_shipper = None


def setup_logging() -> LogShipper:
    """Configure the ``orion`` logger once per process: console output (unless the logger
    already has handlers) and shipping to the API. Returns the shipper."""
    global _shipper
    with _setup_lock:
        if _shipper is not None:
            return _shipper
        logger = logging.getLogger("orion")
        if not logger.handlers:
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(RunFormatter())
            logger.addHandler(console)
            logger.setLevel(os.environ.get("ORION_LOGGING_LEVEL", "INFO").upper())
            logger.propagate = False
        _shipper = LogShipper(
            batch_size=_env_number("ORION_LOGS_BATCH_SIZE", 500),
            batch_bytes=_env_number("ORION_LOGS_BATCH_BYTES", 2_000_000),
            interval=_env_number("ORION_LOGS_INTERVAL_SECONDS", 1.0),
            exit_timeout=_env_number("ORION_LOGS_EXIT_TIMEOUT_SECONDS", 30.0),
        )
        logger.addHandler(
            OrionLogHandler(_shipper, _env_number("ORION_LOGS_MAX_MESSAGE_CHARS", 100_000))
        )
        atexit.register(_shipper.close)
        return _shipper


def flush_logs(timeout: float | None = None) -> bool:
    """Wait until every run log record so far was sent, for at most ``timeout`` seconds
    (default: ``ORION_LOGS_EXIT_TIMEOUT_SECONDS``); False if some were not. A no-op before
    any flow ran."""
    if _shipper is None:
        return True
    return _shipper.flush(_shipper.exit_timeout if timeout is None else timeout)


def run_logger(
    orion: OrionClient, flow_run: Mapping[str, Any], task_run: Mapping[str, Any] | None = None
) -> logging.LoggerAdapter[logging.Logger]:
    """The logger of a flow run (a dict with ``id`` and ``name``) or of one of its task runs;
    its records are shipped through ``orion`` (an OrionClient)."""
    extra = {
        "flow_run_id": flow_run["id"],
        "flow_run_name": flow_run.get("name"),
        "orion_send": orion.create_logs,
    }
    if task_run is None:
        return logging.LoggerAdapter(logging.getLogger("orion.flow_runs"), extra)
    extra.update(task_run_id=task_run["id"], task_run_name=task_run.get("name"))
    return logging.LoggerAdapter(logging.getLogger("orion.task_runs"), extra)


def get_run_logger() -> logging.LoggerAdapter[logging.Logger]:
    """The logger of the current task run, else of the current flow run.

    Its records go to the console and to the API's logs for that run. Raises RuntimeError
    outside a flow or task run.
    """
    get_run_context()  # RuntimeError outside runs
    flow_context = get_flow_run_context()
    assert flow_context is not None  # get_run_context raised outside runs
    task_context = get_task_run_context()
    if task_context is not None and task_context.task_run is not None:
        return run_logger(flow_context.client, flow_context.flow_run, task_context.task_run)
    return run_logger(flow_context.client, flow_context.flow_run)


def log_prints_default() -> bool:
    """``ORION_LOGGING_LOG_PRINTS`` (true/false, default false): whether a top-level flow
    that does not set ``log_prints`` logs its prints."""
    raw = os.environ.get("ORION_LOGGING_LOG_PRINTS", "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"ORION_LOGGING_LOG_PRINTS={raw!r} is not true or false.")


def print_as_log(*args: Any, **kwargs: Any) -> None:
    """``print`` that, in a flow or task run whose ``log_prints`` is on, logs the line on the
    run's logger instead (unless it is printed to a file other than stdout or stderr)."""
    context = get_task_run_context() or get_flow_run_context()
    target = kwargs.get("file")
    if (
        context is None
        or not context.log_prints
        or getattr(_printing, "active", False)
        or (target is not None and target not in (sys.stdout, sys.stderr))
    ):
        return _original_print(*args, **kwargs)
    buffer = io.StringIO()
    _original_print(*args, **dict(kwargs, file=buffer))
    # What logging itself prints meanwhile (a handler's error report) is printed, not
    # logged again, which would recurse.
    _printing.active = True
    try:
        # print()'s own end ("\n") would make every line end in a blank one.
        get_run_logger().info(buffer.getvalue().rstrip())
    finally:
        _printing.active = False


_original_print = builtins.print
_print_lock = threading.Lock()
_printing = threading.local()
_print_users = 0


@contextlib.contextmanager
def printing_to_run_logger(enabled: bool = True) -> Iterator[None]:
    """Inside the block, ``print`` is :func:`print_as_log` (nothing changes unless
    ``enabled``). Blocks may nest and overlap across threads: the builtin comes back when the
    last one exits."""
    global _print_users, _original_print
    if not enabled:
        yield
        return
    with _print_lock:
        if _print_users == 0:
            _original_print = builtins.print
            builtins.print = print_as_log
        _print_users += 1
    try:
        yield
    finally:
        with _print_lock:
            _print_users -= 1
            if _print_users == 0:
                builtins.print = _original_print
