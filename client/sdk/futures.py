"""Futures for submitted task runs, and the task runners that execute them.

``task.submit(...)`` hands the task run to the flow's task runner and returns an
:class:`OrionFuture` at once. :class:`SequentialTaskRunner` (the default) runs each submission
immediately in the calling thread; :class:`ThreadPoolTaskRunner` runs them concurrently in a
pool of threads (``ConcurrentTaskRunner`` is its Prefect 2 name). A flow run starts its own
runner session and waits for every submission before it finishes.

A runner's ``submit`` takes a :class:`TaskCall`: calling it runs the task run here (what the
local runners do); runners that run it elsewhere (``client.task_runners``: Dask, Ray) read its
fields and ship what the other process needs.
"""

import concurrent.futures
import contextvars
import dataclasses
import typing
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass
class Outcome:
    """How a task run ended: its final state (as the API returned it), its return value, and
    the exception to raise to whoever asks for the result (None when it completed)."""

    state: typing.Any
    value: typing.Any = None
    exception: BaseException | None = None
    #: The task run as the API last returned it (None if it was never created).
    task_run: typing.Any = None


@dataclasses.dataclass
class TaskCall:
    """One submitted task run, as a task runner receives it: calling it runs the run in this
    process (``client.sdk.engine.run_task``) and returns its Outcome.

    ``flow_context`` is the submitting flow run's context; ``future`` the OrionFuture handed
    back to the caller; ``parameters`` and ``wait_for`` may hold futures of other task runs;
    ``extra_inputs`` are upstream inputs known beforehand, by parameter; ``dynamic_key`` is
    the run's key in its flow run when the runner assigned it at submission (None: assigned
    when the run starts)."""

    task: typing.Any
    parameters: dict[str, typing.Any]
    wait_for: typing.Any
    flow_context: typing.Any
    future: "OrionFuture"
    extra_inputs: typing.Any = None
    dynamic_key: str | None = None

    def __call__(self) -> Outcome:
        from client.sdk.engine import run_task

        return run_task(
            self.task,
            self.parameters,
            self.wait_for,
            self.flow_context,
            self.future,
            self.extra_inputs,
            dynamic_key=self.dynamic_key,
        )


class OrionFuture:
    """The eventual outcome of a submitted task run.

    ``task_run`` is the run as the API returned it, once created (None before, or if it could
    not be created).
    """

    def __init__(self, task: Any, future: concurrent.futures.Future[Outcome] | None) -> None:
        self.task = task
        self.task_run = None
        # A Future[Outcome]; None only until Task.submit sets it.
        self._future: Any = future

    def __repr__(self) -> str:
        status = "done" if self._future.done() else "pending"
        return f"OrionFuture({self.task.name!r}, {status})"

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for the run to finish; return its final state, or None if ``timeout`` seconds
        passed first."""
        try:
            return self._future.result(timeout).state
        except concurrent.futures.TimeoutError:
            return None

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """Wait for the run and return its result. If it did not complete, raise its exception
        (or return it, with ``raise_on_failure=False``). TimeoutError after ``timeout`` s."""
        outcome = self._future.result(timeout)
        if outcome.exception is not None:
            if raise_on_failure:
                raise outcome.exception
            return outcome.exception
        return outcome.value

    def get_state(self) -> Any:
        """The final state if the run has finished, else None (no waiting)."""
        return self._future.result().state if self._future.done() else None

    def done(self) -> bool:
        """Whether the run has finished."""
        return self._future.done()


def _run_now(fn: Callable[[], Outcome]) -> concurrent.futures.Future[Outcome]:
    future: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
    try:
        future.set_result(fn())
    except BaseException as exc:
        future.set_exception(exc)
        if not isinstance(exc, Exception):
            raise
    return future


class SequentialTaskRunner:
    """Runs each submitted task run at once, in the calling thread (the default)."""

    def start(self) -> "SequentialTaskRunner":
        """A session for one flow run (this runner keeps no state, so itself)."""
        return self

    def submit(self, fn: Callable[[], Outcome]) -> concurrent.futures.Future[Outcome]:
        """Run ``fn`` now; return a done ``concurrent.futures.Future`` of its return value."""
        return _run_now(fn)

    def shutdown(self, wait: bool = True) -> None:
        """Nothing to wait for: every submission already ran."""


class ThreadPoolTaskRunner:
    """Runs submitted task runs concurrently in a pool of ``max_workers`` threads (default:
    ``concurrent.futures.ThreadPoolExecutor``'s). Each runs in a copy of its submitter's
    context, so it sees the flow run, the tags and the logger of the code that submitted it."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def start(self) -> "ThreadPoolTaskRunner":
        """A new session with its own thread pool, for one flow run."""
        session = ThreadPoolTaskRunner(self.max_workers)
        session._executor = concurrent.futures.ThreadPoolExecutor(
            self.max_workers, thread_name_prefix="orion-task"
        )
        return session

    def submit(self, fn: Callable[[], Outcome]) -> concurrent.futures.Future[Outcome]:
        """Schedule ``fn`` on the pool; return its ``concurrent.futures.Future``."""
        if self._executor is None:
            raise RuntimeError("ThreadPoolTaskRunner.submit() outside a started session")
        return self._executor.submit(contextvars.copy_context().run, fn)

    def shutdown(self, wait: bool = True) -> None:
        """Wait for every submitted run to finish, then stop the threads. With ``wait=False``
        (the flow run was interrupted), drop the runs not started yet and do not wait."""
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=not wait)


ConcurrentTaskRunner = ThreadPoolTaskRunner
