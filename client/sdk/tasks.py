"""``@task``: a function whose calls inside a flow run are task runs (Prefect 2 signature).

Inside a flow run, calling a task runs it as a task run and returns its result (or raises
its exception); ``task.submit(...)`` hands it to the flow's task runner and returns an
:class:`client.sdk.futures.OrionFuture`; ``task.map(...)`` submits one run per element.
Arguments may be futures (their results are passed, and the dependency is recorded), and
``wait_for=[...]`` adds dependencies without passing data. Outside a flow run (or inside
another task run) a task is a plain function call.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from client.sdk.callables import bind_arguments, call_with_parameters
from client.sdk.context import (
    FlowRunContext,
    TaskRunContext,
    get_flow_run_context,
    get_task_run_context,
)
from client.sdk.futures import OrionFuture, TaskCall

if TYPE_CHECKING:
    from client.sdk.results import ResultStorage

__all__ = ["Task", "task", "unmapped"]


class unmapped:
    """Wraps an argument of ``task.map`` that is passed whole to every run, not iterated."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Task:
    """A task; see :func:`task` for the options."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None] | None = None,
        cache_expiration: datetime.timedelta | None = None,
        refresh_cache: bool = False,
        retries: int = 0,
        retry_delay_seconds: float | list[float] | tuple[float, ...] = 0,
        retry_jitter_factor: float | None = None,
        timeout_seconds: float | None = None,
        persist_result: bool | None = None,
        result_storage: str | ResultStorage | None = None,
        result_serializer: str | None = None,
        log_prints: bool | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@task needs a function")
        if cache_expiration is not None and not isinstance(cache_expiration, datetime.timedelta):
            raise TypeError("cache_expiration must be a datetime.timedelta")
        if retries < 0:
            raise ValueError("retries must not be negative")
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description or fn.__doc__
        self.tags = set(tags or ())
        self.version = version
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self.retries = retries
        self.retry_delay_seconds = (
            list(retry_delay_seconds)
            if isinstance(retry_delay_seconds, (list, tuple))
            else retry_delay_seconds
        )
        self.retry_jitter_factor = retry_jitter_factor
        self.timeout_seconds = timeout_seconds
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    def with_options(self, **options: Any) -> Task:
        """A copy of this task with some options changed (same arguments as :func:`task`)."""
        settings: dict[str, Any]
        settings = dict(
            name=self.name,
            description=self.description,
            tags=self.tags,
            version=self.version,
            cache_key_fn=self.cache_key_fn,
            cache_expiration=self.cache_expiration,
            refresh_cache=self.refresh_cache,
            retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds,
            retry_jitter_factor=self.retry_jitter_factor,
            timeout_seconds=self.timeout_seconds,
            persist_result=self.persist_result,
            result_storage=self.result_storage,
            result_serializer=self.result_serializer,
            log_prints=self.log_prints,
        )
        settings.update(options)
        return Task(self.fn, **settings)

    def call(self, parameters: Mapping[str, Any]) -> Any:
        """Call the function with bound ``parameters`` (what a task run executes)."""
        return call_with_parameters(self.fn, parameters)

    def _flow_context(self) -> FlowRunContext | None:
        """The flow run to run in, or None to make the call a plain function call."""
        if get_task_run_context() is not None:
            return None
        return get_flow_run_context()

    def __call__(self, *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any) -> Any:
        """Run as a task run of the current flow run and return its result (raise its
        exception); a plain call outside flow runs."""
        from client.sdk.engine import run_task

        context = self._flow_context()
        if context is None:
            return self.fn(*args, **kwargs)
        outcome = run_task(self, bind_arguments(self.fn, args, kwargs), wait_for, context)
        if outcome.exception is not None:
            raise outcome.exception
        return outcome.value

    def submit(
        self, *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any
    ) -> OrionFuture:
        """Hand a task run to the flow run's task runner; return its OrionFuture at once.
        Its dynamic key (the ``-N`` of its name) is taken now, so runs are numbered in the
        order they were submitted, whichever runner starts them first."""
        return self._submit(bind_arguments(self.fn, args, kwargs), wait_for)

    def _submit(
        self,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None,
        extra_inputs: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> OrionFuture:
        context = get_flow_run_context()
        if context is None or get_task_run_context() is not None:
            raise RuntimeError(
                f"Task {self.name!r}: submit() and map() work only inside a "
                f"flow run (not outside, nor inside a task run)"
            )
        future = OrionFuture(self, None)
        future._future = context.task_runner.submit(
            TaskCall(
                self,
                parameters,
                wait_for,
                context,
                future,
                extra_inputs,
                dynamic_key=context.next_dynamic_key(self.task_key),
            )
        )
        with context._lock:
            context.futures.append(future)
        return future

    def map(
        self, *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any
    ) -> list[OrionFuture]:
        """Submit one task run per element of the iterable arguments (all the same length;
        futures are resolved first, ``unmapped(x)`` and non-iterables are passed whole to
        every run); return the list of futures.

        Each run records where its element came from: the element's own future, or the
        future or task result that was iterated over."""
        parameters = bind_arguments(self.fn, args, kwargs)
        context = get_flow_run_context()
        mapped: dict[str, list[Any]] = {}
        extra_inputs: dict[str, list[dict[str, Any]]] = {}
        for name, value in parameters.items():
            items = value.result() if isinstance(value, OrionFuture) else value
            if isinstance(items, (unmapped, str, bytes, dict)) or not _iterable(items):
                continue
            mapped[name] = list(items)
            origin = _origin(value, context)
            if origin is not None:
                extra_inputs[name] = [{"input_type": "task_run", "id": origin}]
        lengths = {len(v) for v in mapped.values()}
        if len(lengths) > 1:
            raise ValueError(
                f"Task {self.name!r}.map(): the iterable arguments have "
                f"different lengths: " + ", ".join(f"{k}={len(v)}" for k, v in mapped.items())
            )
        if not mapped:
            raise ValueError(f"Task {self.name!r}.map() needs at least one iterable argument")
        # Static arguments stay as given (a future among them is resolved, and recorded, by
        # each run).
        static = {
            k: (v.value if isinstance(v, unmapped) else v)
            for k, v in parameters.items()
            if k not in mapped
        }
        return [
            self._submit(
                dict(static, **{k: v[i] for k, v in mapped.items()}), wait_for, extra_inputs
            )
            for i in range(lengths.pop())
        ]


def _origin(value: Any, context: FlowRunContext | None) -> str | None:
    """The task run a mapped-over argument came from: its future's run, or the run that
    returned this very object; None otherwise."""
    if isinstance(value, OrionFuture):
        return value.task_run["id"] if value.task_run is not None else None
    if context is None:
        return None
    return context.result_origin(value)


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def task(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    cache_key_fn: Callable[[TaskRunContext, dict[str, Any]], str | None] | None = None,
    cache_expiration: datetime.timedelta | None = None,
    refresh_cache: bool = False,
    retries: int = 0,
    retry_delay_seconds: float | list[float] | tuple[float, ...] = 0,
    retry_jitter_factor: float | None = None,
    timeout_seconds: float | None = None,
    persist_result: bool | None = None,
    result_storage: str | ResultStorage | None = None,
    result_serializer: str | None = None,
    log_prints: bool | None = None,
) -> Task | Callable[[Callable[..., Any]], Task]:
    """Make a function a task; use as ``@task`` or ``@task(...)``.

    - ``name`` (default: the function's name; task runs are named ``<name>-<n>``),
      ``description``, ``tags`` (added to every run; tag concurrency limits apply), ``version``;
    - ``retries`` and ``retry_delay_seconds``: a number, or a list of delays, one per retry
      (the last repeats); ``retry_jitter_factor`` spreads delays randomly by that factor;
    - ``cache_key_fn(context, parameters)`` → key or None, ``cache_expiration`` (timedelta;
      default: never expires), ``refresh_cache`` (run even on a hit, refreshing the cache);
    - ``timeout_seconds``: the run fails with TimeoutError when it takes longer;
    - ``persist_result``, ``result_storage`` (path, fsspec URL, file system block,
      ``"slug/name"`` of a saved one, or ResultStorage),
      ``result_serializer`` ("pickle", the default, or "json"); unset, the flow's apply;
    - ``log_prints``: ``print()`` in the task run becomes an INFO line of its run logger;
      None (the default) follows the flow run.
    """
    options: dict[str, Any]
    options = dict(
        name=name,
        description=description,
        tags=tags,
        version=version,
        cache_key_fn=cache_key_fn,
        cache_expiration=cache_expiration,
        refresh_cache=refresh_cache,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        retry_jitter_factor=retry_jitter_factor,
        timeout_seconds=timeout_seconds,
        persist_result=persist_result,
        result_storage=result_storage,
        result_serializer=result_serializer,
        log_prints=log_prints,
    )
    if fn is None:
        return lambda f: Task(f, **options)
    return Task(fn, **options)
