"""``@flow``: a function whose calls are flow runs orchestrated by Orion (Prefect 2 signature).

Calling a flow creates a flow run, runs the function in it and returns the function's return
value, which is also the result of the run's final state (futures in it are resolved). A
failed run raises the function's exception; with ``return_state=True`` the call returns the
final :class:`client.api.states.State` instead. A flow called inside a flow run is a subflow: a
child flow run, represented in the parent run by a task run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from client.sdk.callables import bind_arguments, call_with_parameters
from client.sdk.futures import SequentialTaskRunner

if TYPE_CHECKING:
    from client.sdk.results import ResultStorage

__all__ = ["Flow", "flow"]


class Flow:
    """A flow; see :func:`flow` for the options."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 0,
        task_runner: Any = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        result_storage: str | ResultStorage | None = None,
        result_serializer: str | None = None,
        log_prints: bool | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@flow needs a function")
        if retries < 0:
            raise ValueError("retries must not be negative")
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        self.version = version
        self.flow_run_name = flow_run_name
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        if isinstance(task_runner, type):
            task_runner = task_runner()
        self.task_runner = task_runner or SequentialTaskRunner()
        self.description = description or fn.__doc__
        self.timeout_seconds = timeout_seconds
        self.validate_parameters = validate_parameters
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        # A subflow's run is stood for by a task run of its parent: this is that run's key.
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"

    def with_options(self, **options: Any) -> Flow:
        """A copy of this flow with some options changed (same arguments as :func:`flow`)."""
        settings: dict[str, Any]
        settings = dict(
            name=self.name,
            version=self.version,
            flow_run_name=self.flow_run_name,
            retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds,
            task_runner=self.task_runner,
            description=self.description,
            timeout_seconds=self.timeout_seconds,
            validate_parameters=self.validate_parameters,
            persist_result=self.persist_result,
            result_storage=self.result_storage,
            result_serializer=self.result_serializer,
            log_prints=self.log_prints,
        )
        settings.update(options)
        return Flow(self.fn, **settings)

    def call(self, parameters: Mapping[str, Any]) -> Any:
        """Call the function with bound ``parameters`` (what a flow run executes)."""
        return call_with_parameters(self.fn, parameters)

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        """Run the flow as a flow run; return its result (or its final state)."""
        from client.sdk.engine import run_flow

        return run_flow(self, bind_arguments(self.fn, args, kwargs), return_state)


def flow(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0,
    task_runner: Any = None,
    description: str | None = None,
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
    persist_result: bool | None = None,
    result_storage: str | ResultStorage | None = None,
    result_serializer: str | None = None,
    log_prints: bool | None = None,
) -> Flow | Callable[[Callable[..., Any]], Flow]:
    """Make a function a flow; use as ``@flow`` or ``@flow(...)``.

    - ``name`` (default: the function's name, "_" as "-"), ``version``, ``description``;
    - ``flow_run_name``: a format string of the parameters (``"etl-{day}"``) or a callable;
      default: a generated two-word name;
    - ``retries``, ``retry_delay_seconds`` (whole seconds): the server turns a failure into
      AwaitingRetry while retries remain, and the run goes again in this process;
    - ``timeout_seconds``: the run fails with TimeoutError when it takes longer;
    - ``validate_parameters`` (default True): parameters are checked against the type hints
      (see :mod:`client.sdk.validation`); a mismatch fails the run with a clear message;
    - ``task_runner``: ``SequentialTaskRunner()`` (default) or ``ThreadPoolTaskRunner(n)``;
    - ``persist_result``, ``result_storage``, ``result_serializer``: see :mod:`client.sdk.results`;
      tasks inherit them unless they set their own;
    - ``log_prints``: ``print()`` in the flow run (and its tasks and subflows, unless they set
      their own) becomes an INFO line of the run logger; None (the default) inherits the
      parent flow's, or for a top-level flow ``ORION_LOGGING_LOG_PRINTS`` (default false).
    """
    options: dict[str, Any]
    options = dict(
        name=name,
        version=version,
        flow_run_name=flow_run_name,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        task_runner=task_runner,
        description=description,
        timeout_seconds=timeout_seconds,
        validate_parameters=validate_parameters,
        persist_result=persist_result,
        result_storage=result_storage,
        result_serializer=result_serializer,
        log_prints=log_prints,
    )
    if fn is None:
        return lambda f: Flow(f, **options)
    return Flow(fn, **options)
