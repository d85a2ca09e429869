"""What the remote task runners (Dask, Ray) share: a task run shipped to a worker process of
a cluster, and its outcome mapped back onto the flow run's future.

Flow side, at submission (:func:`remote_call`): the run gets its dynamic key (so keys follow
submission order); every OrionFuture among its arguments and ``wait_for`` becomes a
placeholder, and the future's engine future is handed to the engine as a dependency, so the
engine, not the flow process, waits for upstream runs and moves their results between
workers. What only the flow process can tell about the arguments is worked out now and sent
as known inputs: which values were returned by earlier task runs of this flow run, and which
are the flow's parameters (identities do not survive pickling). So a run records the same
``task_inputs`` as on the thread runner (refs known this way come first in their list).

Worker side (:func:`run_on_worker`): a client for the flow run's API (one per worker
process), a flow run context with the flow's result settings and tags, then the engine's
``run_task``, with retries, caching and concurrency limits orchestrated by the server as
anywhere else. Its Running states record the runner and the worker's address
(``state_details``: ``task_runner``, ``worker``). An attempt found RUNNING when the run starts
was lost with a worker that died: it ends Failed (retried per the task's policy) or Crashed.

Back on the flow side (:func:`settle`): the outcome completes the OrionFuture, and its value
is remembered as the run's result (so passing it on records the dependency). When the engine
gives up on a run (its workers died, the cluster went away, the result could not be sent),
the run is reported Crashed with the reason, unless it already ended.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

from client.api.settings import Settings
from client.api.states import Crashed, Pending, State
from client.sdk.context import (
    FlowRunContext,
    current_tags,
    flow_run_scope,
    is_trackable,
    tags,
)
from client.sdk.futures import OrionFuture, Outcome, TaskCall

_log = logging.getLogger("orion.task_runners")


@dataclasses.dataclass(frozen=True)
class Upstream:
    """Stands, in a shipped task run's arguments, for the result of upstream run ``index``
    (the engine passes its outcome as the ``index``-th extra argument)."""

    index: int
    name: str


@dataclasses.dataclass(frozen=True)
class FlowFacts:
    """What a worker knows of the flow: its name and retries (which decide whether task
    results are persisted by default)."""

    name: str
    retries: int


@dataclasses.dataclass
class RemoteCall:
    """Everything a worker needs to run one task run (picklable)."""

    task: Any
    parameters: dict[str, Any]
    wait_for: list[Any] | None
    known_inputs: dict[str, list[dict[str, Any]]]
    dynamic_key: str
    flow_run: dict[str, Any]
    flow: FlowFacts
    api_url: str
    settings: Settings
    result_storage: Any
    persist_result: bool | None
    result_serializer: str
    log_prints: bool
    tags: tuple[str, ...]
    task_runner: str
    flush_logs: bool = False


def _swap(value: Any, swap: Callable[[Any], Any], path: frozenset[int] = frozenset()) -> Any:
    """``value`` with every object ``swap`` replaces (returns something else for) replaced, in
    dicts, lists, tuples, sets and frozensets at any depth; a collection is rebuilt only when
    something inside it was replaced."""
    new = swap(value)
    if new is not value or id(value) in path:
        return new
    inner = path | {id(value)}
    if isinstance(value, dict):
        items = {k: _swap(v, swap, inner) for k, v in value.items()}
        if any(items[k] is not v for k, v in value.items()):
            rebuilt = value.copy()
            rebuilt.update(items)
            return rebuilt
    elif isinstance(value, (list, tuple, set, frozenset)):
        elements = [_swap(v, swap, inner) for v in value]
        if any(a is not b for a, b in zip(elements, value)):
            if isinstance(value, tuple) and hasattr(value, "_fields"):
                return type(value)(*elements)
            return type(value)(elements)
    return value


def _known_refs(
    value: Any, context: FlowRunContext, refs: list[dict[str, Any]], path: frozenset[int]
) -> bool:
    """Append to ``refs`` the task runs ``value`` (at any depth) was returned by, as
    ``_Inputs`` of the engine finds them; True if it holds an OrionFuture."""
    if isinstance(value, OrionFuture):
        return True
    if isinstance(value, State):
        task_run_id = value.state_details.get("task_run_id")
        if task_run_id:
            refs.append({"input_type": "task_run", "id": task_run_id})
        return False
    run_id = context.result_origin(value)
    if run_id is not None:
        refs.append({"input_type": "task_run", "id": run_id})
    if id(value) in path:
        return False
    inner = path | {id(value)}
    items: Any = ()
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    found = False
    for item in items:
        found = _known_refs(item, context, refs, inner) or found
    return found


def _known_inputs(call: TaskCall) -> dict[str, list[dict[str, Any]]]:
    """The inputs of ``call`` only the flow process can tell (see the module docstring)."""
    context: FlowRunContext = call.flow_context
    known: dict[str, list[dict[str, Any]]] = {}
    for name, value in call.parameters.items():
        refs = list((call.extra_inputs or {}).get(name, ()))
        has_futures = _known_refs(value, context, refs, frozenset())
        if not refs and not has_futures and is_trackable(value):
            for param_name, param in context.parameters.items():
                if param is value:
                    refs = [{"input_type": "parameter", "name": param_name}]
                    break
        if refs:
            known[name] = refs
    if call.wait_for:
        refs = []
        for item in call.wait_for:
            _known_refs(item, context, refs, frozenset())
        if refs:
            known["wait_for"] = refs
    return known


def api_url_of(context: FlowRunContext, runner: str) -> str:
    """The API URL workers use: the flow run's client's; ValueError if it is in-process."""
    from client.api.client import _EPHEMERAL_BASE_URL

    url = context.client.api_url
    if url == _EPHEMERAL_BASE_URL:
        raise ValueError(
            f"{runner} runs task runs in other processes, which reach the Orion API over "
            f"HTTP, but this flow run's client is in-process: set ORION_API_URL to a server"
        )
    return str(url)


def remote_call(
    call: TaskCall, runner: str, upstream_of: Callable[[OrionFuture], Any]
) -> tuple[RemoteCall, list[Any]]:
    """``call`` made ready to ship: the RemoteCall, and the engine futures of its upstream
    runs (``upstream_of(orion_future)``), in placeholder order."""
    context: FlowRunContext = call.flow_context
    api_url = api_url_of(context, runner)
    dynamic_key = call.dynamic_key or context.next_dynamic_key(call.task.task_key)
    known = _known_inputs(call)
    upstream: list[Any] = []
    slots: dict[int, Upstream] = {}

    def placeholder(value: Any) -> Any:
        if not isinstance(value, OrionFuture):
            return value
        slot = slots.get(id(value))
        if slot is None:
            slot = slots[id(value)] = Upstream(len(upstream), value.task.name)
            upstream.append(upstream_of(value))
        return slot

    parameters = {k: _swap(v, placeholder) for k, v in call.parameters.items()}
    wait_for = [_swap(v, placeholder) for v in call.wait_for] if call.wait_for else None
    flow = context.flow
    remote = RemoteCall(
        task=call.task,
        parameters=parameters,
        wait_for=wait_for,
        known_inputs=known,
        dynamic_key=dynamic_key,
        flow_run=dict(context.flow_run),
        flow=FlowFacts(flow.name, int(flow.retries or 0)),
        api_url=api_url,
        settings=context.client.settings,
        result_storage=context.result_storage,
        persist_result=context.persist_result,
        result_serializer=context.result_serializer,
        log_prints=context.log_prints,
        tags=tuple(sorted(current_tags())),
        task_runner=runner,
    )
    call.dynamic_key = dynamic_key
    return remote, upstream


# --- worker side ---------------------------------------------------------------------------

_clients: dict[tuple[str, Settings], Any] = {}
_clients_lock = threading.Lock()


def _worker_client(api_url: str, settings: Settings) -> Any:
    """One OrionClient per API and settings in this worker process."""
    from client.api.client import OrionClient

    key = (api_url, settings)
    with _clients_lock:
        orion = _clients.get(key)
        if orion is None:
            orion = _clients[key] = OrionClient(api_url, settings=settings)
        return orion


class _Done:
    """The ``concurrent.futures`` side of an upstream run's OrionFuture on a worker."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Outcome:
        return self.outcome


def _upstream_future(slot: Upstream, outcome: Any) -> OrionFuture:
    """A finished OrionFuture of the upstream run ``slot`` stands for."""
    future = OrionFuture(slot, None)  # the engine reads the upstream task's name only
    future._future = _Done(outcome)
    future.task_run = outcome.task_run
    return future


def run_on_worker(
    call: RemoteCall, upstream: Sequence[Outcome], worker: str, recover_lost_attempt: bool
) -> Outcome:
    """Run ``call`` here (a worker of ``call.task_runner`` at address ``worker``); return its
    Outcome, made safe to send back (an exception that does not pickle is replaced by a
    RuntimeError with its text)."""
    from client.sdk.engine import run_task
    from client.sdk.logs import flush_logs, setup_logging

    setup_logging()
    orion = _worker_client(call.api_url, call.settings)
    futures: dict[Upstream, OrionFuture] = {}

    def resolve(value: Any) -> Any:
        if not isinstance(value, Upstream):
            return value
        if value not in futures:
            futures[value] = _upstream_future(value, upstream[value.index])
        return futures[value]

    parameters = {k: _swap(v, resolve) for k, v in call.parameters.items()}
    wait_for = [_swap(v, resolve) for v in call.wait_for] if call.wait_for else None
    context = FlowRunContext(
        flow=call.flow,
        flow_run=call.flow_run,
        client=orion,
        task_runner=None,
        parameters={},
        result_storage=call.result_storage,
        persist_result=call.persist_result,
        result_serializer=call.result_serializer,
        log_prints=call.log_prints,
        runner_details={"task_runner": call.task_runner, "worker": worker},
    )
    holder = OrionFuture(call.task, None)
    with flow_run_scope(context), tags(*call.tags):
        outcome = run_task(
            call.task,
            parameters,
            wait_for,
            context,
            holder,
            call.known_inputs,
            dynamic_key=call.dynamic_key,
            recover_lost_attempt=recover_lost_attempt,
        )
    if call.flush_logs:
        flush_logs()
    if outcome.exception is not None:
        try:
            pickle.dumps(outcome.exception)
        except Exception:
            error = outcome.exception
            outcome.exception = RuntimeError(f"{type(error).__name__}: {error}")
    return outcome


def flush_worker_logs() -> bool:
    """Send the run logs this worker process has queued (a runner calls it on every worker
    when its flow run's tasks are done)."""
    from client.sdk.logs import flush_logs

    return flush_logs()


# --- back on the flow side -----------------------------------------------------------------


def settle(
    call: TaskCall, result: Callable[[], Any], target: concurrent.futures.Future[Outcome]
) -> None:
    """Complete ``target`` (the future a runner's ``submit`` returned) with ``call``'s outcome,
    ``result()`` (the engine's result, which raises when the engine lost the run). Never
    raises: it runs in the engine's callback thread."""
    try:
        try:
            outcome = result()
        except BaseException as exc:
            outcome = _lost(call, exc)
        if outcome.task_run is not None:
            call.future.task_run = outcome.task_run
            if outcome.exception is None:
                call.flow_context.record_result(outcome.value, outcome.task_run["id"])
        target.set_result(outcome)
    except BaseException as exc:
        if not target.done():
            target.set_exception(exc)


def _lost(call: TaskCall, error: BaseException) -> Outcome:
    """The outcome of a run the engine gave up on with ``error``: its task run, reported
    Crashed with the reason unless it already ended (created, if it never was, so that the
    flow run shows what happened)."""
    context: FlowRunContext = call.flow_context
    orion = context.client
    name = f"{call.task.name}-{call.dynamic_key}"
    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    message = f"Task run {name!r} crashed: the task runner lost it: {reason}"
    try:
        task_run = orion.create_task_run(
            call.task,
            context.flow_run_id,
            call.dynamic_key,
            name=name,
            state=Pending(),
        )
        state = State.from_json(task_run["state"])
        if not state.is_final():
            answer = orion.set_task_run_state(task_run["id"], Crashed(message=message))
            state = answer.state or state
        _log.error("%s", message)
        return Outcome(state, exception=RuntimeError(message), task_run=task_run)
    except Exception as report_error:
        _log.error("%s; it could not be reported: %s", message, report_error)
        return Outcome(None, exception=RuntimeError(message))
