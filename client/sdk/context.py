"""Run contexts: what the code of a running flow or task can ask about its run.

They live in context variables, so each thread (and each task submitted to a thread pool,
which runs in a copy of its submitter's context) sees the run it belongs to.
"""

import contextlib
import contextvars
import dataclasses
import enum
import threading
import typing
from collections.abc import Iterator

_flow_run_context: contextvars.ContextVar["FlowRunContext | None"] = contextvars.ContextVar(
    "orion_flow_run_context", default=None
)
_task_run_context: contextvars.ContextVar["TaskRunContext | None"] = contextvars.ContextVar(
    "orion_task_run_context", default=None
)
_tags: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "orion_tags", default=frozenset()
)


# Values Python may share between unrelated objects: singletons (None, True, False, Ellipsis,
# NotImplemented, enum members), cached small ints and one-character strings, interned
# strings, and the literals a module's compiler merges into one constant (any number, string
# or bytes, and tuples or frozensets of them).
_SHARED_TYPES = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    type(...),
    type(NotImplemented),
    enum.Enum,
)


def is_trackable(value: typing.Any) -> bool:
    """Whether ``value``'s identity is its own, so that meeting the same object again proves
    it came from the same place. False for values Python may share between unrelated objects
    (``0`` returned by one task is the very ``0`` another task is called with)."""
    if isinstance(value, _SHARED_TYPES):
        return False
    if isinstance(value, (tuple, frozenset)):
        return any(is_trackable(item) for item in value)
    return True


@dataclasses.dataclass(eq=False)
class FlowRunContext:
    """The flow run being executed in this context.

    ``flow_run`` is the run as the API returned it (a dict); ``parameters`` its validated
    parameters; ``result_storage``/``persist_result``/``result_serializer`` the flow's result
    settings, inherited by its tasks; ``task_runner`` the started runner its tasks use;
    ``parent`` the parent run's context for a subflow; ``futures`` every task run submitted
    in the current attempt; ``log_prints`` whether ``print()`` in the run goes to its logger
    (tasks and subflows inherit it unless they set their own); ``runner_details`` what its
    task runs record of where they ran, in their Running states' details (``task_runner``:
    the runner's class name; ``worker``: the address of the worker of a remote runner).
    """

    flow: typing.Any
    flow_run: dict
    client: typing.Any
    task_runner: typing.Any
    parameters: dict
    result_storage: typing.Any
    persist_result: bool | None
    result_serializer: str
    parent: typing.Optional["FlowRunContext"] = None
    log_prints: bool = False
    runner_details: dict = dataclasses.field(default_factory=dict)
    futures: list = dataclasses.field(default_factory=list)
    _dynamic_keys: dict = dataclasses.field(default_factory=dict)
    _origins: dict = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def flow_run_id(self) -> str:
        return self.flow_run["id"]

    def next_dynamic_key(self, task_key: str) -> str:
        """The next ``dynamic_key`` for ``task_key`` in this run: "0", "1", ... (per key)."""
        with self._lock:
            n = self._dynamic_keys.get(task_key, 0)
            self._dynamic_keys[task_key] = n + 1
        return str(n)

    def record_result(self, value: typing.Any, task_run_id: str) -> None:
        """Remember that ``value`` (and each element of it, one level deep) is the result of
        task run ``task_run_id``, so passing it to another task records that upstream
        dependency. Values are tracked by identity, and only values whose identity is their
        own (see :func:`is_trackable`); they are kept alive for the flow run, so identities are
        not reused."""
        tracked = [value]
        if isinstance(value, dict):
            tracked.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            tracked.extend(value)
        with self._lock:
            for item in tracked:
                if is_trackable(item):
                    self._origins[id(item)] = (item, task_run_id)

    def result_origin(self, value: typing.Any) -> str | None:
        """The id of the task run that returned ``value`` in this flow run, or None."""
        if not is_trackable(value):
            return None
        origin = self._origins.get(id(value))
        return origin[1] if origin is not None and origin[0] is value else None

    def reset_for_retry(self) -> None:
        """Start a new attempt of the flow run: task runs are numbered from 0 again (so the
        server hands back the runs of the previous attempt) and no future is pending."""
        with self._lock:
            self._dynamic_keys.clear()
            self._origins.clear()
            self.futures.clear()


@dataclasses.dataclass(eq=False)
class TaskRunContext:
    """The task run being executed (or, for ``cache_key_fn``, about to start) in this context.

    ``task_run`` is the run as the API returned it, None while computing the cache key;
    ``log_prints`` whether ``print()`` in the task run goes to its logger.
    """

    task: typing.Any
    task_run: dict | None
    flow_run_context: FlowRunContext
    parameters: dict
    log_prints: bool = False

    @property
    def flow_run_id(self) -> str:
        return self.flow_run_context.flow_run_id


def get_flow_run_context() -> FlowRunContext | None:
    """The current :class:`FlowRunContext`, or None outside flow runs."""
    return _flow_run_context.get()


def get_task_run_context() -> TaskRunContext | None:
    """The current :class:`TaskRunContext`, or None outside task runs."""
    return _task_run_context.get()


def get_run_context() -> FlowRunContext | TaskRunContext:
    """The innermost run context: the task run's inside a task, else the flow run's.

    Raises RuntimeError outside any run.
    """
    context = _task_run_context.get() or _flow_run_context.get()
    if context is None:
        raise RuntimeError("There is no active flow or task run in this context.")
    return context


@contextlib.contextmanager
def flow_run_scope(context: FlowRunContext) -> Iterator[FlowRunContext]:
    """Make ``context`` the current flow run (and no task run) inside the block."""
    flow_token = _flow_run_context.set(context)
    task_token = _task_run_context.set(None)
    try:
        yield context
    finally:
        _task_run_context.reset(task_token)
        _flow_run_context.reset(flow_token)


@contextlib.contextmanager
def task_run_scope(context: TaskRunContext) -> Iterator[TaskRunContext]:
    """Make ``context`` the current task run inside the block."""
    token = _task_run_context.set(context)
    try:
        yield context
    finally:
        _task_run_context.reset(token)


def current_tags() -> frozenset[str]:
    """The tags added by enclosing :func:`tags` blocks (a frozenset)."""
    return _tags.get()


@contextlib.contextmanager
def tags(*new_tags: str) -> Iterator[frozenset[str]]:
    """Add ``new_tags`` to every flow run and task run created inside the block.

    Blocks nest (tags accumulate) and yield the full set in effect::

        with tags("prod", "nightly"):
            my_flow()
    """
    combined = _tags.get() | frozenset(new_tags)
    token = _tags.set(combined)
    try:
        yield combined
    finally:
        _tags.reset(token)
