"""The engine: runs flows and tasks, with every state change orchestrated by the server.

Flow run: create it (Pending), propose Running, run the function, propose Completed (result
reference in ``data``) or Failed. Task run: the same, starting with Running. The server's
answer to each proposal decides what happens next:

- ACCEPT: go on with the state as proposed;
- WAIT: sleep ``delay_seconds`` and propose the same state again;
- REJECT: adopt the returned state. AwaitingRetry (SCHEDULED): sleep until its scheduled
  time, then propose Running again (a retry); Cached (COMPLETED): the task returns the cached
  result, read back from results storage; any other state: the run stops in it;
- ABORT: stop; a task run that another attempt already completed returns that result, anything
  else raises :class:`RunAborted`.

A task run costs two requests when nothing goes wrong: create + propose Running in one call,
then propose Completed. Logs and heartbeats go from background threads.

Final states: Completed; Failed, with ``message`` "Task run encountered an exception:
<ExceptionType>: <message>" (or "Flow run ...") and ``data``
``{"type": "exception", "exception_type": ..., "message": ..., "traceback": ...}``; Crashed
when a BaseException that is not an Exception (KeyboardInterrupt, SIGTERM, SystemExit...)
interrupts the run: the run (and the task run it was in) is reported Crashed (Cancelled
when the interruption is the agent stopping a run being cancelled), then the interruption
goes on (SIGTERM is re-delivered to the process with its previous handler). An
interruption that arrives while a task run's start request is in flight leaves that task run
as the server recorded it (the client has no id to report against yet).

Subflows: a flow called inside a flow run first creates a task run in the parent run
(Pending), then its own flow run with ``parent_task_run_id``; the server copies each state
the subflow run gets onto that task run.

Results: a return value is persisted to results storage (see :mod:`client.sdk.results`) when
``persist_result`` is True, or, when it is None (the default), when something needs it later:
a task with a ``cache_key_fn`` (a later run reads it back on a cache hit), or a task in a flow
with retries (a retried flow run reuses the results of its task runs that completed).
A flow or task with ``persist_result=False`` never writes its results.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import os
import signal
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from client.api.objects import APIObject, OrchestrationResult
from client.api.states import (
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Pending,
    Running,
    State,
    StateType,
)
from client.sdk import results
from client.sdk.context import (
    FlowRunContext,
    TaskRunContext,
    current_tags,
    flow_run_scope,
    get_flow_run_context,
    is_trackable,
    task_run_scope,
)
from client.sdk.futures import OrionFuture, Outcome
from client.sdk.logs import (
    flush_logs,
    log_prints_default,
    printing_to_run_logger,
    run_logger,
    setup_logging,
)

if TYPE_CHECKING:
    from client.api.client import OrionClient
    from client.sdk.flows import Flow
    from client.sdk.tasks import Task

_UTC = datetime.UTC
_engine_log = logging.getLogger("orion.engine")


class RunAborted(RuntimeError):
    """The server told a run to stop (ABORT), or a run could not start."""


class UpstreamTaskError(RuntimeError):
    """A task run did not start because a run it depends on did not complete."""


class WorkerLost(RuntimeError):
    """A task run's attempt was lost with the worker process that ran it (a remote task
    runner's), and the task had no retries left: the run ends Crashed."""


class FlowRunCrashed(BaseException):
    """SIGTERM, turned into an exception so the flow run can report Crashed before exiting."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(_UTC)


def describe_state(st: State | None) -> str:
    """``Completed()`` / ``Failed('ValueError: boom')``, for log lines."""
    if st is None:
        return "None"
    return f"{st.name}({st.message!r})" if st.message else f"{st.name}()"


def exception_state(exc: BaseException, what: str, crashed: bool = False) -> State:
    """A Failed (or Crashed) state describing ``exc``: its message and traceback."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    make = Crashed if crashed else Failed
    return make(
        message=f"{what} encountered an exception: {text}",
        data={
            "type": "exception",
            "exception_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        },
    )


def jsonable(value: Any) -> Any:
    """``value`` made JSON-compatible for the API (what JSON cannot hold becomes its repr)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


# --- the API client the SDK uses -----------------------------------------------------------

_client_lock = threading.Lock()
_shared_client: OrionClient | None = None
_client_override: contextvars.ContextVar[OrionClient | None] = contextvars.ContextVar(
    "orion_sdk_client", default=None
)


class _FlowIds:
    """Flow ids by name, per client (a flow is upserted once per client, not per run)."""

    def __init__(self) -> None:
        self._ids: weakref.WeakKeyDictionary[OrionClient, dict[str, uuid.UUID]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, orion: OrionClient, name: str) -> uuid.UUID:
        with self._lock:
            flow_id = self._ids.get(orion, {}).get(name)
        if flow_id is None:
            flow_id = orion.create_flow_from_name(name)
            with self._lock:
                self._ids.setdefault(orion, {})[name] = flow_id
        return flow_id


_flow_ids = _FlowIds()


def get_sdk_client() -> OrionClient:
    """The OrionClient flows and tasks use: the one set by :func:`using_client`, else one
    shared client per process, made on first use from the ``ORION_*`` settings (remade if
    ``ORION_API_URL`` or ``ORION_API_KEY`` changed since)."""
    global _shared_client
    override = _client_override.get()
    if override is not None:
        return override
    from client.api.client import OrionClient
    from client.api.settings import get_settings

    settings = get_settings()
    with _client_lock:
        current = _shared_client
        if current is None or (current.settings.api_url, current.settings.api_key) != (
            settings.api_url,
            settings.api_key,
        ):
            current = _shared_client = OrionClient(settings=settings)
        return current


@contextlib.contextmanager
def using_client(orion: OrionClient) -> Iterator[OrionClient]:
    """Run the flows called inside the block through ``orion`` (an OrionClient), e.g. one
    talking to a given app in-process."""
    token = _client_override.set(orion)
    try:
        yield orion
    finally:
        _client_override.reset(token)


# --- call with a timeout ----------------------------------------------------------------------


def call_with_timeout(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    timeout: float | None,
    what: str,
) -> Any:
    """``fn(*args, **kwargs)``; with a ``timeout``, run it in a thread (in a copy of this
    context) and raise TimeoutError if it has not returned after ``timeout`` seconds. The
    abandoned call keeps running in its daemon thread until it returns (Python threads cannot
    be killed); task runs it tries to start after that are refused by the server."""
    if not timeout:
        return fn(*args, **kwargs)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(target,), name="orion-timeout", daemon=True
    )
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{what} exceeded timeout of {timeout} seconds")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --- heartbeats --------------------------------------------------------------------------------


class Heartbeats:
    """One daemon thread per process that sends ``POST /flow_runs/{id}/heartbeat`` for every
    flow run running here: once as soon as a run is added (the server watches a run for
    silence only once it has heartbeated), then every ``ORION_HEARTBEAT_SECONDS`` (default
    5). When the API has not been reached for longer than ``ORION_HEARTBEAT_CRASH_SECONDS``
    (default: three intervals) it logs an error at every beat, since the server may then
    mark the runs Crashed; shorter outages are warnings."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.crash_after = float(os.environ.get("ORION_HEARTBEAT_CRASH_SECONDS") or 3 * interval)
        self._runs: dict[str, OrionClient] = {}
        self._new: set[str] = set()
        self._added = threading.Event()
        self._lock = threading.Lock()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="orion-heartbeat", daemon=True)
        self._thread.start()

    def add(self, flow_run_id: str, orion: OrionClient) -> None:
        """Beat for ``flow_run_id`` from now on, the first time without waiting an interval."""
        with self._lock:
            self._runs[flow_run_id] = orion
            self._new.add(flow_run_id)
        self._added.set()

    def discard(self, flow_run_id: str) -> None:
        with self._lock:
            self._runs.pop(flow_run_id, None)
            self._new.discard(flow_run_id)

    def beat(self) -> None:
        """Send one heartbeat for every registered run (what the thread does each interval)."""
        with self._lock:
            runs = list(self._runs.items())
            self._new.clear()
        if not runs:
            self._last_ok = time.monotonic()
            return
        self._send(runs)

    def beat_new(self) -> None:
        """Send the first heartbeat of the runs added since the last beat that still run."""
        with self._lock:
            runs = [(run_id, self._runs[run_id]) for run_id in self._new]
            self._new.clear()
        if runs:
            self._send(runs)

    def _send(self, runs: list[tuple[str, OrionClient]]) -> None:
        try:
            for run_id, orion in runs:
                orion.send_flow_run_heartbeat(run_id)
            self._last_ok = time.monotonic()
        except Exception as exc:
            silent = time.monotonic() - self._last_ok
            log = _engine_log.error if silent > self.crash_after else _engine_log.warning
            log(
                "Heartbeat failed: the Orion API has not answered for %.0f s (after %.0f s "
                "the server may mark these flow runs Crashed): %s",
                silent,
                self.crash_after,
                exc,
            )

    def _loop(self) -> None:
        due = time.monotonic() + self.interval
        while True:
            if self._added.wait(max(0.0, due - time.monotonic())):
                self._added.clear()
                self.beat_new()
            if time.monotonic() >= due:
                self.beat()
                due = time.monotonic() + self.interval


# One registry (and thread) per interval: a run beats at its own client's interval, whichever
# client of the process started a run first.
_heartbeats: dict[float, Heartbeats] = {}


def _heartbeat_registry(orion: OrionClient) -> Heartbeats:
    interval = orion.settings.heartbeat_seconds
    with _client_lock:
        if interval not in _heartbeats:
            _heartbeats[interval] = Heartbeats(interval)
        return _heartbeats[interval]


# --- SIGTERM -------------------------------------------------------------------------------


class _SigtermTrap:
    """While a top-level flow runs in the main thread, SIGTERM raises FlowRunCrashed there, so
    the run reports Crashed; on exit the previous handler is restored and, if SIGTERM came, the
    signal is sent again so the process ends as it would have."""

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self.received = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.received:
            self.received = True
            raise FlowRunCrashed("the flow run process received SIGTERM")

    def __enter__(self) -> _SigtermTrap:
        if self.active:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.active:
            signal.signal(
                signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL
            )
            if self.received:
                flush_logs(timeout=10)
                os.kill(os.getpid(), signal.SIGTERM)


# --- orchestration ------------------------------------------------------------------------


def _sleep_until(when: datetime.datetime | None) -> None:
    delay = (when - _now()).total_seconds() if when else 0
    if delay > 0:
        time.sleep(delay)


def orchestrate(
    propose: Callable[[State], OrchestrationResult], proposed: State
) -> OrchestrationResult:
    """Propose ``proposed`` through ``propose(state) -> OrchestrationResult`` until the answer
    is not WAIT (sleeping the delay each time); return that answer."""
    while True:
        answer = propose(proposed)
        if answer.status != "WAIT":
            return answer
        time.sleep(max(answer.details.get("delay_seconds") or 0, 0))


def _reason(answer: OrchestrationResult) -> str:
    return answer.details.get("reason") or answer.status.value


# --- inputs -------------------------------------------------------------------------------


class _Inputs:
    """Resolves futures among a task's arguments and records where each input came from
    (``task_inputs``).

    An upstream task run is recorded only from what proves it: the run's future, its state,
    or the very object it returned in this flow run (see ``FlowRunContext.record_result``),
    found at any depth of lists, tuples, sets and dict values. A value Python shares between
    unrelated objects (``0``, ``True``, ``None``, an interned string) proves nothing and makes
    no edge. Otherwise an argument is a flow parameter (the same object) or a constant (its
    type name).
    """

    def __init__(self, flow_context: FlowRunContext) -> None:
        self.flow_context = flow_context
        self.failed_upstream: list[OrionFuture] = []

    def _visit(
        self, value: Any, refs: list[dict[str, Any]], path: frozenset[int] = frozenset()
    ) -> Any:
        """``value`` with futures replaced by their results; the task runs it came from are
        appended to ``refs``. A collection is rebuilt only when a future inside it is
        replaced, so the objects a task receives keep their identity otherwise. ``path``
        holds the ids of the collections being visited, so one that contains itself ends."""
        if isinstance(value, OrionFuture):
            result = value.result(raise_on_failure=False)
            if value.task_run is not None:
                refs.append(_task_run_input(value.task_run["id"]))
            final = value.get_state()
            if final is None or not final.is_completed():
                self.failed_upstream.append(value)
            return result
        if isinstance(value, State):
            task_run_id = value.state_details.get("task_run_id")
            if task_run_id:
                refs.append(_task_run_input(task_run_id))
            return value
        run_id = self.flow_context.result_origin(value)
        if run_id is not None:
            refs.append(_task_run_input(run_id))
        if id(value) in path:
            return value
        if isinstance(value, dict):
            inner = path | {id(value)}
            items = {k: self._visit(v, refs, inner) for k, v in value.items()}
            if any(items[k] is not v for k, v in value.items()):
                rebuilt = value.copy()
                rebuilt.update(items)
                return rebuilt
        elif isinstance(value, (list, tuple, set, frozenset)):
            inner = path | {id(value)}
            elements = [self._visit(v, refs, inner) for v in value]
            if any(new is not old for new, old in zip(elements, value)):
                return _rebuilt(value, elements)
        return value

    def _refs(
        self, value: Any, extra: Iterable[dict[str, Any]]
    ) -> tuple[Any, list[dict[str, Any]]]:
        refs = list(extra)
        resolved = self._visit(value, refs)
        refs = [dict(r) for r in dict.fromkeys(tuple(sorted(r.items())) for r in refs)]
        if refs:
            return resolved, refs
        if is_trackable(value):
            for name, param in self.flow_context.parameters.items():
                if param is value:
                    return resolved, [{"input_type": "parameter", "name": name}]
        return resolved, [{"input_type": "constant", "type": type(value).__name__}]

    def resolve(
        self,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None,
        extra_inputs: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """The parameters with futures replaced by their results, and the ``task_inputs``.

        ``extra_inputs`` maps a parameter to upstream inputs known beforehand (the future
        or result a ``.map()`` iterated over, which its elements came from)."""
        extra_inputs = extra_inputs or {}
        task_inputs: dict[str, list[dict[str, Any]]] = {}
        resolved: dict[str, Any] = {}
        for name, value in parameters.items():
            resolved[name], task_inputs[name] = self._refs(value, extra_inputs.get(name, ()))
        if wait_for:
            refs: list[dict[str, Any]] = []
            for item in wait_for:
                self._visit(item, refs)
            task_inputs["wait_for"] = [
                dict(r) for r in dict.fromkeys(tuple(sorted(r.items())) for r in refs)
            ]
        return resolved, task_inputs


def _task_run_input(task_run_id: str) -> dict[str, Any]:
    return {"input_type": "task_run", "id": task_run_id}


def _rebuilt(collection: Any, items: list[Any]) -> Any:
    """A list, tuple (named or not), set or frozenset like ``collection`` holding ``items``."""
    if isinstance(collection, tuple) and hasattr(collection, "_fields"):
        return type(collection)(*items)
    return type(collection)(items)


def _resolve_futures(value: Any) -> Any:
    """A flow's return value with futures (also in a list, tuple or dict) replaced by their
    results."""
    if isinstance(value, OrionFuture):
        return value.result()
    if isinstance(value, (list, tuple)) and any(isinstance(v, OrionFuture) for v in value):
        return type(value)(_resolve_futures(v) for v in value)
    if isinstance(value, dict) and any(isinstance(v, OrionFuture) for v in value.values()):
        return {k: _resolve_futures(v) for k, v in value.items()}
    return value


# --- task runs ------------------------------------------------------------------------------


def _task_should_persist(task: Task, flow_context: FlowRunContext) -> bool:
    setting = task.persist_result
    if setting is None:
        setting = flow_context.persist_result
    if setting is not None:
        return setting
    return task.cache_key_fn is not None or bool(flow_context.flow.retries)


def _result_from_state(st: State, what: str) -> Any:
    """The result a COMPLETED state refers to, read back from results storage."""
    if results.is_reference(st.data):
        return results.load_result(st.data)
    if st.data is None:
        raise RunAborted(
            f"{what} is {describe_state(st)} but its result was not persisted, so "
            f"it cannot be returned (set persist_result=True on the task)"
        )
    raise RunAborted(
        f"{what} is {describe_state(st)} with data that is not a result reference: {st.data!r:.200}"
    )


def run_task(
    task: Task,
    parameters: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext,
    future: OrionFuture | None = None,
    extra_inputs: Mapping[str, list[dict[str, Any]]] | None = None,
    dynamic_key: str | None = None,
    recover_lost_attempt: bool = False,
) -> Outcome:
    """Run one task run of ``task`` (``parameters`` bound to its signature) in
    ``flow_context``'s flow run; return its Outcome (with the task run, once created).
    ``future``, if given, gets the task run as soon as it exists; ``extra_inputs`` are
    upstream inputs known beforehand, by parameter (see ``_Inputs.resolve``); ``dynamic_key``
    the run's key when the caller assigned it (default: the flow run's next for the task).

    An exception of the task makes a Failed outcome (after the retries the server grants); a
    BaseException (interruption) reports the task run Crashed (Cancelled when its flow run is
    being cancelled) and propagates.

    ``recover_lost_attempt`` (task runners that may run a task again after the process running
    it died, as Dask does): a run found RUNNING when it is started was left so by a lost
    attempt. That attempt is reported Failed when the task has retries left, so the server
    grants a retry per its policy, and Crashed otherwise.
    """
    outcome = _run_task(
        task,
        parameters,
        wait_for,
        flow_context,
        future,
        extra_inputs,
        dynamic_key,
        recover_lost_attempt,
    )
    if outcome.task_run is None and future is not None:
        outcome.task_run = future.task_run
    return outcome


def _run_task(
    task: Task,
    parameters: dict[str, Any],
    wait_for: Iterable[Any] | None,
    flow_context: FlowRunContext,
    future: OrionFuture | None,
    extra_inputs: Mapping[str, list[dict[str, Any]]] | None,
    dynamic_key: str | None,
    recover_lost_attempt: bool,
) -> Outcome:
    orion = flow_context.client
    if dynamic_key is None:
        dynamic_key = flow_context.next_dynamic_key(task.task_key)
    inputs = _Inputs(flow_context)
    resolved, task_inputs = inputs.resolve(parameters, wait_for, extra_inputs)
    name = f"{task.name}-{dynamic_key}"
    create = dict(
        flow_run_id=flow_context.flow_run_id,
        dynamic_key=dynamic_key,
        name=name,
        extra_tags=current_tags(),
        task_inputs=task_inputs,
    )
    if inputs.failed_upstream:
        upstream = ", ".join(repr(f.task.name) for f in inputs.failed_upstream)
        # Its first state (no rules apply to a first Pending): it will never run.
        task_run = orion.create_task_run(
            task,
            state=Pending(
                name="NotReady", message=f"Upstream task run(s) {upstream} did not complete"
            ),
            **create,
        )
        if future is not None:
            future.task_run = task_run
        error = UpstreamTaskError(
            f"Task run {name!r} did not start: upstream task run(s) {upstream} did not complete"
        )
        return Outcome(State.from_json(task_run["state"]), exception=error, task_run=task_run)

    running = _running_proposal(task, flow_context, resolved)
    task_run, answer = orion.create_task_run_and_set_state(task, proposed_state=running, **create)
    if future is not None:
        future.task_run = task_run
    logger = run_logger(orion, flow_context.flow_run, task_run)
    context = TaskRunContext(
        task,
        task_run,
        flow_context,
        resolved,
        log_prints=(flow_context.log_prints if task.log_prints is None else task.log_prints),
    )

    def propose(proposed: State) -> OrchestrationResult:
        return orion.set_task_run_state(task_run["id"], proposed)

    try:
        while True:
            if answer.status == "WAIT":
                answer = orchestrate(propose, running)
                continue
            if recover_lost_attempt and _left_running(answer, task_run):
                recover_lost_attempt = False  # once: ``task_run`` is not read again
                answer = _recover_lost_attempt(task, task_run, propose, logger)
                if answer.status == "REJECT" and answer.state and answer.state.is_scheduled():
                    _sleep_until(answer.state.state_details.scheduled_time)
                    running = _running_proposal(task, flow_context, resolved)
                    answer = propose(running)
                    continue
                lost = WorkerLost(_lost_message(name))
                logger.error("Finished in state %s", describe_state(answer.state))
                return Outcome(answer.state, exception=lost, task_run=task_run)
            outcome = _adopt_start_answer(answer, task_run, name)
            if outcome is not None:
                logger.info("Finished in state %s", describe_state(outcome.state))
                return outcome
            try:
                with task_run_scope(context), printing_to_run_logger(context.log_prints):
                    value = call_with_timeout(
                        task.call, (resolved,), {}, task.timeout_seconds, f"Task run {name!r}"
                    )
            except Exception as exc:
                answer = orchestrate(propose, exception_state(exc, "Task run"))
                final = answer.state
                if answer.status == "REJECT" and final is not None and final.is_scheduled():
                    logger.info(
                        "Received %s; retrying at %s",
                        type(exc).__name__,
                        final.state_details.get("scheduled_time"),
                    )
                    _sleep_until(final.state_details.scheduled_time)
                    running = _running_proposal(task, flow_context, resolved)
                    answer = propose(running)
                    continue
                logger.error("Finished in state %s", describe_state(final), exc_info=exc)
                return Outcome(final, exception=exc)
            data = None
            if _task_should_persist(task, flow_context):
                try:
                    data = results.persist_result(
                        value,
                        task.result_storage or flow_context.result_storage,
                        task.result_serializer or flow_context.result_serializer,
                    )
                except results.ResultError as exc:  # the store refused: the run fails
                    answer = orchestrate(propose, exception_state(exc, "Task run"))
                    logger.error("Finished in state %s", describe_state(answer.state))
                    return Outcome(answer.state, exception=exc)
            # The cache key goes with the Completed state too: the server records the cache
            # entry when the run completes.
            answer = orchestrate(
                propose,
                Completed(
                    data=data,
                    cache_key=running.state_details.get("cache_key"),
                    cache_expiration=running.state_details.get("cache_expiration"),
                ),
            )
            logger.info("Finished in state %s", describe_state(answer.state))
            flow_context.record_result(value, task_run["id"])
            return Outcome(answer.state, value=value)
    except BaseException as exc:
        if not isinstance(exc, Exception):
            _report_interruption(propose, exc, "Task run", flow_context)
        raise


def _lost_message(name: str) -> str:
    return (
        f"Task run {name!r} was lost with the worker that ran it (the task runner started "
        f"it again elsewhere)"
    )


def _left_running(answer: OrchestrationResult, task_run: APIObject) -> bool:
    """Whether starting ``task_run`` was refused because it is RUNNING already."""
    current = task_run.get("state")
    return answer.status == "ABORT" and current is not None and current["type"] == "RUNNING"


def _recover_lost_attempt(
    task: Task,
    task_run: APIObject,
    propose: Callable[[State], OrchestrationResult],
    logger: logging.LoggerAdapter[logging.Logger],
) -> OrchestrationResult:
    """End the attempt of ``task_run`` that a lost worker left RUNNING: Failed while the task
    has retries left (the server answers with AwaitingRetry), else Crashed. Returns the
    server's answer."""
    message = _lost_message(task_run["name"])
    logger.warning(message)
    if task_run.get("run_count", 0) <= task.retries:
        return orchestrate(propose, Failed(message=message))
    return orchestrate(propose, Crashed(message=message))


def _running_proposal(
    task: Task, flow_context: FlowRunContext, parameters: dict[str, Any]
) -> State:
    cache_key = cache_expiration = None
    if task.cache_key_fn is not None:
        context = TaskRunContext(task, None, flow_context, parameters)
        cache_key = task.cache_key_fn(context, parameters)
        if cache_key is not None and task.cache_expiration is not None:
            cache_expiration = _now() + task.cache_expiration
    return Running(
        state_details=flow_context.runner_details,
        cache_key=cache_key,
        cache_expiration=cache_expiration,
        refresh_cache=True if task.refresh_cache else None,
    )


def _adopt_start_answer(
    answer: OrchestrationResult, task_run: APIObject, name: str
) -> Outcome | None:
    """None when the task run may run now; else the Outcome it ends with."""
    st = answer.state
    if answer.status == "ACCEPT":
        return None
    if answer.status == "REJECT" and st is not None and st.is_completed():
        return Outcome(st, value=_result_from_state(st, f"Task run {name!r}"))
    current = State.from_json(task_run["state"]) if task_run.get("state") else None
    if answer.status == "ABORT" and current is not None and current.is_completed():
        # An earlier attempt of this flow run completed this task run: reuse its result.
        return Outcome(current, value=_result_from_state(current, f"Task run {name!r}"))
    error = RunAborted(f"Task run {name!r} was not started: {_reason(answer)}")
    return Outcome(st or current, exception=error)


def _report_interruption(
    propose: Callable[[State], OrchestrationResult],
    exc: BaseException,
    what: str,
    flow_context: FlowRunContext | None,
) -> None:
    """Report a run that an interruption (SIGTERM, KeyboardInterrupt) ended. When
    ``flow_context``'s flow run or one of its parents is being cancelled (the agent stops a
    CANCELLING run's process, and that is no crash), a task run is reported Cancelled and a
    flow run is left as it is: whoever stops the process marks it Cancelled once the process
    is gone. Otherwise the run is reported Crashed. Best effort: the process is going down
    anyway."""
    try:
        if not _being_cancelled(flow_context):
            propose(exception_state(exc, what, crashed=True))
        elif what == "Task run":
            propose(Cancelled(message=f"{what} interrupted: its flow run was cancelled."))
    except Exception as report_error:
        _engine_log.error("Could not report the %s interruption: %s", what.lower(), report_error)


def _being_cancelled(flow_context: FlowRunContext | None) -> bool:
    """Whether the flow run of ``flow_context`` or any parent flow run is CANCELLING or
    CANCELLED on the server (one read per level, only when a run is interrupted)."""
    while flow_context is not None:
        current = flow_context.client.read_flow_run(flow_context.flow_run_id).state
        if current is not None and current.type in (StateType.CANCELLING, StateType.CANCELLED):
            return True
        flow_context = flow_context.parent
    return False


# --- flow runs ------------------------------------------------------------------------------


def run_flow(flow: Flow, parameters: dict[str, Any], return_state: bool = False) -> Any:
    """Run ``flow`` with ``parameters`` (bound to its signature) as a flow run, a subflow when
    called inside a flow run; return its result (its final State with ``return_state``)."""
    orion = get_sdk_client()
    setup_logging()
    parent = get_flow_run_context()
    if parent is not None:
        return _run_flow(flow, parameters, orion, parent, return_state)
    with _SigtermTrap():
        try:
            return _run_flow(flow, parameters, orion, None, return_state)
        finally:
            flush_logs()


def _flow_run_name(flow: Flow, parameters: dict[str, Any]) -> str | None:
    name = flow.flow_run_name
    if name is None:
        return None
    if callable(name):
        return str(name())
    return name.format(**parameters)


def run_flow_run(flow: Flow, flow_run: APIObject, return_state: bool = True) -> Any:
    """Run ``flow`` in ``flow_run``, a flow run that already exists (an agent's process runs a
    deployment's run this way), with the run's own parameters; return its final State (its
    result with ``return_state=False``). The run's orchestration then goes as for a run
    :func:`run_flow` creates: propose Running, run the function, propose the final state."""
    orion = get_sdk_client()
    setup_logging()
    with _SigtermTrap():
        try:
            log_prints = _flow_log_prints(flow, None)
            parameters, validation_error = _validated(flow, dict(flow_run["parameters"]))
            return _execute_flow_run(
                flow,
                flow_run,
                parameters,
                validation_error,
                orion,
                None,
                None,
                return_state,
                log_prints,
            )
        finally:
            flush_logs()


def _validated(flow: Flow, parameters: dict[str, Any]) -> tuple[dict[str, Any], Exception | None]:
    """``(parameters, None)`` validated against the flow's signature, or ``(parameters,
    error)``."""
    from client.sdk.validation import ParameterTypeError, validate_parameters

    if flow.validate_parameters:
        try:
            return validate_parameters(flow.fn, parameters, flow.name), None
        except ParameterTypeError as exc:
            return parameters, exc
    return parameters, None


def _run_flow(
    flow: Flow,
    parameters: dict[str, Any],
    orion: OrionClient,
    parent: FlowRunContext | None,
    return_state: bool,
) -> Any:
    log_prints = _flow_log_prints(flow, parent)
    parameters, validation_error = _validated(flow, parameters)
    parent_task_run = None
    if parent is not None:
        parent_task_run = _create_parent_task_run(flow, parameters, parent, orion)
    flow_run = orion.create_flow_run(
        _flow_ids.get(orion, flow.name),
        name=_flow_run_name(flow, parameters) if validation_error is None else None,
        parameters=jsonable(parameters),
        tags=sorted(current_tags()),
        parent_task_run_id=parent_task_run["id"] if parent_task_run else None,
        state=Pending(),
        flow_version=flow.version,
        empirical_policy={
            "retries": flow.retries,
            "retry_delay": int(flow.retry_delay_seconds or 0),
        },
    )
    return _execute_flow_run(
        flow,
        flow_run,
        parameters,
        validation_error,
        orion,
        parent,
        parent_task_run,
        return_state,
        log_prints,
        created=True,
    )


def _execute_flow_run(
    flow: Flow,
    flow_run: APIObject,
    parameters: dict[str, Any],
    validation_error: Exception | None,
    orion: OrionClient,
    parent: FlowRunContext | None,
    parent_task_run: APIObject | None,
    return_state: bool,
    log_prints: bool,
    created: bool = False,
) -> Any:
    """Orchestrate and run ``flow`` in the existing ``flow_run`` (``print()`` in it logged
    when ``log_prints``)."""
    logger = run_logger(orion, flow_run)

    def propose(proposed: State) -> OrchestrationResult:
        return orion.set_flow_run_state(flow_run["id"], proposed)

    if validation_error is not None:
        answer = propose(
            Failed(message=f"Validation of flow parameters failed: {validation_error}")
        )
        logger.error("Finished in state %s", describe_state(answer.state))
        if return_state:
            return answer.state
        raise validation_error
    logger.info(
        "%s flow run %r for flow %r",
        "Created" if created else "Running",
        flow_run["name"],
        flow.name,
    )
    context = FlowRunContext(
        flow=flow,
        flow_run=flow_run,
        client=orion,
        task_runner=None,
        parameters=parameters,
        result_storage=flow.result_storage or (parent.result_storage if parent else None),
        persist_result=flow.persist_result,
        result_serializer=flow.result_serializer
        or (parent.result_serializer if parent else "pickle"),
        parent=parent,
        log_prints=log_prints,
    )
    heartbeats = _heartbeat_registry(orion)
    heartbeats.add(flow_run["id"], orion)
    try:
        final, value, error = _flow_attempts(flow, context, propose, logger)
    except BaseException as exc:
        if not isinstance(exc, Exception):
            _report_interruption(propose, exc, "Flow run", context)
        raise
    finally:
        heartbeats.discard(flow_run["id"])
    logger.log(
        logging.ERROR if error else logging.INFO, "Finished in state %s", describe_state(final)
    )
    if return_state:
        return final
    if error is not None:
        raise error
    return value


def _flow_log_prints(flow: Flow, parent: FlowRunContext | None) -> bool:
    """The flow's ``log_prints``; unset, its parent flow run's, or the setting's."""
    if flow.log_prints is not None:
        return flow.log_prints
    return parent.log_prints if parent is not None else log_prints_default()


def _create_parent_task_run(
    flow: Flow, parameters: dict[str, Any], parent: FlowRunContext, orion: OrionClient
) -> APIObject:
    """The task run that stands for a subflow run in its parent flow run (its inputs are the
    subflow's parameters)."""
    dynamic_key = parent.next_dynamic_key(flow.task_key)
    _, task_inputs = _Inputs(parent).resolve(parameters, None)
    return orion.create_task_run(
        flow,
        parent.flow_run_id,
        dynamic_key,
        name=f"{flow.name}-{dynamic_key}",
        extra_tags=current_tags(),
        state=Pending(),
        task_inputs=task_inputs,
    )


def _flow_attempts(
    flow: Flow,
    context: FlowRunContext,
    propose: Callable[[State], OrchestrationResult],
    logger: logging.LoggerAdapter[logging.Logger],
) -> tuple[State | None, Any, BaseException | None]:
    """Propose Running, run the flow function, propose the final state; again while the
    server answers a failure with AwaitingRetry. Returns (final state, value, error)."""
    name = context.flow_run["name"]
    while True:
        answer = orchestrate(propose, Running())
        if answer.status == "ABORT":
            raise RunAborted(f"Flow run {name!r} was not started: {_reason(answer)}")
        st = answer.state
        if answer.status == "REJECT" and (st is None or not st.is_running()):
            return (
                st,
                None,
                RunAborted(f"Flow run {name!r} was not started: it is {describe_state(st)}"),
            )
        value, failure = _flow_body(flow, context)
        data = None
        if failure is None and flow.persist_result:
            try:
                data = results.persist_result(
                    value, context.result_storage, context.result_serializer
                )
            except results.ResultError as error:  # the store refused: the run fails, saying why
                failure = (exception_state(error, "Flow run"), error)
        if failure is None:
            answer = orchestrate(propose, Completed(data=data))
            return _end_of_cancel(propose, answer), value, None
        failed_state, exc = failure
        answer = orchestrate(propose, failed_state)
        final = answer.state
        if answer.status == "REJECT" and final is not None and final.is_scheduled():
            logger.info(
                "Received %s; retrying at %s",
                type(exc).__name__,
                final.state_details.get("scheduled_time"),
            )
            _sleep_until(final.state_details.scheduled_time)
            context.reset_for_retry()
            continue
        return _end_of_cancel(propose, answer), None, exc


def _end_of_cancel(
    propose: Callable[[State], OrchestrationResult], answer: OrchestrationResult
) -> State | None:
    """The flow run's final state, given the server's ``answer`` to its final proposal. A run
    cancelled while it ran stays Cancelling (the server refuses it any other final state; its
    first refused task run stopped the flow): this process, which is ending, is what stops it,
    so it proposes Cancelled rather than leave the run to the liveness service."""
    final = answer.state
    if answer.status == "REJECT" and final is not None and final.is_cancelling():
        message = "The flow run stopped after it was cancelled."
        final = orchestrate(propose, Cancelled(message=message)).state
    return final


def _flow_body(
    flow: Flow, context: FlowRunContext
) -> tuple[Any, tuple[State, BaseException] | None]:
    """Run the flow function in its context with a fresh task runner session; return (value,
    None), or (None, (Failed state, exception))."""
    try:
        runner = flow.task_runner.start()
    except Exception as exc:
        failed = exception_state(exc, "Flow run")
        failed.message = f"The task runner {flow.task_runner!r} could not start: {failed.message}"
        return None, (failed, exc)
    context.task_runner = runner
    context.runner_details = {"task_runner": type(flow.task_runner).__name__}
    interrupted = True  # by a BaseException: then do not wait for submitted task runs
    try:
        with flow_run_scope(context), printing_to_run_logger(context.log_prints):
            try:
                value = call_with_timeout(
                    flow.call,
                    (context.parameters,),
                    {},
                    flow.timeout_seconds,
                    f"Flow run {context.flow_run['name']!r}",
                )
                value = _resolve_futures(value)
            except Exception as exc:
                interrupted = False
                return None, (exception_state(exc, "Flow run"), exc)
        interrupted = False
    finally:
        runner.shutdown(wait=not interrupted)
    if value is None:
        unfinished = [
            f for f in context.futures if f.get_state() is None or not f.get_state().is_completed()
        ]
        if unfinished:
            error = unfinished[0].result(raise_on_failure=False)
            failed = exception_state(error, "Flow run")
            failed.message = (
                f"{len(unfinished)} of {len(context.futures)} submitted task "
                f"runs did not complete; the first: {failed.message}"
            )
            return None, (failed, error)
    return value, None
