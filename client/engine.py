"""The engine: runs flows and tasks, with every state change orchestrated by the server.

Flow run: create it (Pending), propose Running, run the function, propose Completed (result
reference in ``data``) or Failed; the server's answer decides what happens next:

- ACCEPT: go on with the state as proposed;
- WAIT: sleep ``delay_seconds`` and propose the same state again;
- REJECT: adopt the returned state. AwaitingRetry (SCHEDULED): sleep until its scheduled
  time, then propose Running again (a retry); Cached (COMPLETED): the task returns the cached
  result, read back from results storage; any other state: the run stops in it;
- ABORT: stop; a task run that another attempt already completed returns that result, anything
  else raises :class:`RunAborted`.

A task run costs two requests when nothing goes wrong: create + propose Running in one call,
then propose Completed. Logs and heartbeats go from background threads.

Final states: Completed; Failed, with ``message`` "<ExceptionType>: <message>" and ``data``
``{"type": "exception", "exception_type": ..., "message": ..., "traceback": ...}``; Crashed
when a BaseException that is not an Exception (KeyboardInterrupt, SIGTERM, SystemExit...)
interrupts the run: the run (and the task run it was in) is reported Crashed, then the
interruption goes on (SIGTERM is re-delivered to the process with its previous handler).

Results: a return value is persisted to results storage (see :mod:`client.results`) when
``persist_result`` is True, or, when it is None (the default), when something needs it later:
a task with a ``cache_key_fn`` (a later run reads it back on a cache hit), or a task in a flow
with retries (a retried flow run reuses the results of its task runs that completed).
A flow or task with ``persist_result=False`` never writes its results.
"""
import datetime
import json
import logging
import os
import signal
import threading
import time
import traceback

from client import results
from client.context import (
    FlowRunContext,
    TaskRunContext,
    current_tags,
    flow_run_scope,
    get_flow_run_context,
    get_task_run_context,
    task_run_scope,
)
from client.futures import OrionFuture, Outcome
from client.logs import flush_logs, run_logger, setup_logging

_UTC = datetime.timezone.utc
_engine_log = logging.getLogger("orion.engine")


class RunAborted(RuntimeError):
    """The server told a run to stop (ABORT), or a run could not start."""


class UpstreamTaskError(RuntimeError):
    """A task run did not start because a run it depends on did not complete."""


class FlowRunCrashed(BaseException):
    """SIGTERM, turned into an exception so the flow run can report Crashed before exiting."""


def _now():
    return datetime.datetime.now(_UTC)


def _parse_time(value):
    return datetime.datetime.fromisoformat(value) if value else None


def state(type_, name=None, message=None, data=None, **details):
    """A state proposal as the API takes it."""
    body = {"type": type_, "state_details": {k: v for k, v in details.items() if v is not None}}
    if name:
        body["name"] = name
    if message is not None:
        body["message"] = message
    if data is not None:
        body["data"] = data
    return body


def describe_state(st):
    """``Completed()`` / ``Failed('ValueError: boom')``, for log lines."""
    message = st.get("message")
    return f"{st.get('name') or st['type'].capitalize()}({message!r})" if message else (
        f"{st.get('name') or st['type'].capitalize()}()")


def exception_state(exc, what, type_="FAILED", name=None):
    """A Failed (or Crashed) state describing ``exc``: its message and traceback."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return state(type_, name=name, message=f"{what} encountered an exception: {text}", data={
        "type": "exception",
        "exception_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    })


def jsonable(value):
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


# --- call with a timeout ----------------------------------------------------------------------

def call_with_timeout(fn, args, kwargs, timeout, what):
    """``fn(*args, **kwargs)``; with a ``timeout``, run it in a thread (in a copy of this
    context) and raise TimeoutError if it has not returned after ``timeout`` seconds. The
    abandoned call keeps running in its daemon thread until it returns (Python threads cannot
    be killed); runs it tries to start after that are refused by the server."""
    if not timeout:
        return fn(*args, **kwargs)
    import contextvars

    outcome = {}

    def target():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,),
                              name=f"orion-timeout-{what}", daemon=True)
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
    flow run running here, every ``ORION_HEARTBEAT_SECONDS`` (default 30). When the server has
    not answered for longer than ``ORION_HEARTBEAT_CRASH_SECONDS`` (default: 3 intervals) it
    logs an error at every beat: the server may then mark these runs Crashed."""

    def __init__(self, api):
        self.api = api
        self.interval = float(os.environ.get("ORION_HEARTBEAT_SECONDS") or 30)
        self.crash_after = float(os.environ.get("ORION_HEARTBEAT_CRASH_SECONDS")
                                 or 3 * self.interval)
        self._runs = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="orion-heartbeat", daemon=True)
        self._thread.start()

    def add(self, flow_run_id):
        with self._lock:
            self._runs.add(flow_run_id)

    def discard(self, flow_run_id):
        with self._lock:
            self._runs.discard(flow_run_id)

    def _loop(self):
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                runs = list(self._runs)
            if not runs:
                self._last_ok = time.monotonic()
                continue
            try:
                for run_id in runs:
                    self.api.heartbeat(run_id)
                self._last_ok = time.monotonic()
            except Exception as exc:
                silent = time.monotonic() - self._last_ok
                log = _engine_log.error if silent > self.crash_after else _engine_log.warning
                log("Heartbeat failed; the API has not been reached for %.0f s "
                    "(flow runs may be marked Crashed after %.0f s): %s",
                    silent, self.crash_after, exc)


_heartbeats = None
_heartbeats_lock = threading.Lock()


def _heartbeat_registry(api):
    global _heartbeats
    with _heartbeats_lock:
        if _heartbeats is None:
            _heartbeats = Heartbeats(api)
        return _heartbeats


# --- SIGTERM -------------------------------------------------------------------------------

class _SigtermTrap:
    """While a top-level flow runs in the main thread, SIGTERM raises FlowRunCrashed there, so
    the run reports Crashed; on exit the previous handler is restored and, if SIGTERM came, the
    signal is sent again so the process ends as it would have."""

    def __init__(self):
        self.active = threading.current_thread() is threading.main_thread()
        self.received = False
        self._previous = None

    def _handle(self, signum, frame):
        self.received = True
        raise FlowRunCrashed("Flow run process received SIGTERM")

    def __enter__(self):
        if self.active:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc_info):
        if self.active:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None
                          else signal.SIG_DFL)
            if self.received:
                flush_logs(timeout=10)
                os.kill(os.getpid(), signal.SIGTERM)


# --- orchestration ------------------------------------------------------------------------

def _sleep_until(when):
    delay = (when - _now()).total_seconds() if when else 0
    if delay > 0:
        time.sleep(delay)


def orchestrate(propose, proposed, on_wait=None):
    """Propose ``proposed`` through ``propose(state) -> orchestration result`` until the
    answer is not WAIT; return the final answer (status + state)."""
    while True:
        answer = propose(proposed)
        if answer["status"] != "WAIT":
            return answer
        delay = answer["details"].get("delay_seconds") or 0
        if on_wait is not None:
            on_wait(delay, answer["details"].get("reason"))
        time.sleep(max(delay, 0))


def _reason(answer):
    return answer.get("details", {}).get("reason") or answer["status"]


# --- inputs -------------------------------------------------------------------------------

class _Inputs:
    """Resolves futures among a task's arguments and records where each input came from
    (``task_inputs``): upstream task runs, flow parameters (by identity) and constants."""

    def __init__(self, flow_context):
        self.flow_context = flow_context
        self.failed_upstream = []

    def _refs(self, value, refs):
        if isinstance(value, OrionFuture):
            result = value.result(raise_on_failure=False)
            if value.task_run is not None:
                refs.append({"input_type": "task_run", "id": value.task_run["id"]})
            final = value.get_state()
            if final is None or final.get("type") != "COMPLETED":
                self.failed_upstream.append(value)
            return result
        if isinstance(value, (list, tuple, set)) and any(
                isinstance(v, OrionFuture) for v in value):
            return type(value)(self._refs(v, refs) for v in value)
        if isinstance(value, dict) and any(isinstance(v, OrionFuture) for v in value.values()):
            return {k: self._refs(v, refs) for k, v in value.items()}
        run_id = self.flow_context.result_origin(value)
        if run_id is not None:
            refs.append({"input_type": "task_run", "id": run_id})
            return value
        for name, param in self.flow_context.parameters.items():
            if param is value and value is not None:
                refs.append({"input_type": "parameter", "name": name})
                return value
        refs.append({"input_type": "constant", "type": type(value).__name__})
        return value

    def resolve(self, parameters, wait_for):
        """Parameters with futures replaced by their results, and the ``task_inputs``."""
        task_inputs, resolved = {}, {}
        for name, value in parameters.items():
            refs = []
            resolved[name] = self._refs(value, refs)
            task_inputs[name] = refs
        if wait_for:
            refs = []
            for item in wait_for:
                self._refs(item, refs)
            task_inputs["wait_for"] = [r for r in refs if r["input_type"] == "task_run"]
        return resolved, task_inputs


def _resolve_futures(value):
    """A flow's return value with futures (also inside lists, tuples, dicts) replaced by
    their results."""
    if isinstance(value, OrionFuture):
        return value.result()
    if isinstance(value, (list, tuple)) and any(isinstance(v, OrionFuture) for v in value):
        return type(value)(_resolve_futures(v) for v in value)
    if isinstance(value, dict) and any(isinstance(v, OrionFuture) for v in value.values()):
        return {k: _resolve_futures(v) for k, v in value.items()}
    return value


# --- task runs ------------------------------------------------------------------------------

def _task_should_persist(task, flow_context):
    setting = task.persist_result
    if setting is None:
        setting = flow_context.persist_result
    if setting is not None:
        return setting
    return task.cache_key_fn is not None or bool(flow_context.flow.retries)


def _result_from_state(st, what):
    data = st.get("data")
    if results.is_reference(data):
        return results.load_result(data)
    if data is None:
        return None
    raise RunAborted(f"{what} ended in {describe_state(st)} with a result that is not a "
                     f"result reference: {data!r:.200}")


def run_task(task, parameters, wait_for, flow_context, future=None):
    """Run one task run of ``task`` in ``flow_context``'s flow run; return its Outcome.
    ``future``, if given, gets the task run as soon as it is created.

    Exceptions of the task become a Failed outcome; BaseExceptions (interruptions) report the
    task run Crashed and propagate.
    """
    api = flow_context.client
    task_key = task.task_key
    dynamic_key = flow_context.next_dynamic_key(task_key)
    inputs = _Inputs(flow_context)
    resolved, task_inputs = inputs.resolve(parameters, wait_for)
    task_run_name = f"{task.name}-{dynamic_key}"
    body = {
        "flow_run_id": flow_context.flow_run_id,
        "task_key": task_key,
        "dynamic_key": dynamic_key,
        "name": task_run_name,
        "tags": sorted(set(task.tags) | current_tags()),
        "task_inputs": task_inputs,
        "empirical_policy": {"retries": task.retries, "retry_delay": task.retry_delay_seconds,
                             "retry_jitter_factor": task.retry_jitter_factor},
    }
    if inputs.failed_upstream:
        upstream = ", ".join(f.task.name for f in inputs.failed_upstream)
        task_run, _ = api.create_task_run(body, state(
            "PENDING", name="NotReady", message=f"Upstream task run(s) did not complete: "
                                                 f"{upstream}"))
        if future is not None:
            future.task_run = task_run
        error = UpstreamTaskError(f"Task run {task_run_name!r} did not start: upstream task "
                                  f"run(s) {upstream} did not complete")
        return Outcome(task_run["state"], exception=error)

    running = _running_proposal(task, flow_context, resolved)
    task_run, answer = api.create_task_run(body, running)
    if future is not None:
        future.task_run = task_run
    task_context = TaskRunContext(task, task_run, flow_context, resolved)
    logger = run_logger(flow_context.flow_run, task_run)
    propose = lambda st: api.set_task_run_state(task_run["id"], st)  # noqa: E731
    persist = _task_should_persist(task, flow_context)
    try:
        while True:
            if answer["status"] == "WAIT":
                time.sleep(max(answer["details"].get("delay_seconds") or 0, 0))
                answer = propose(running)
                continue
            outcome = _adopt_start_answer(answer, task_run, task_run_name)
            if outcome is not None:
                logger.info("Finished in state %s", describe_state(outcome.state))
                return outcome
            try:
                with task_run_scope(task_context):
                    value = call_with_timeout(task.fn, (), resolved, task.timeout_seconds,
                                              f"Task run {task_run_name!r}")
            except Exception as exc:
                answer = orchestrate(propose, exception_state(exc, "Task run"))
                final = answer["state"]
                if answer["status"] == "REJECT" and final["type"] == "SCHEDULED":
                    logger.info("Received %s: retrying at %s (%s)",
                                type(exc).__name__, final["state_details"].get(
                                    "scheduled_time"), final.get("name"))
                    _sleep_until(_parse_time(final["state_details"].get("scheduled_time")))
                    answer = propose(running)
                    continue
                logger.error("Finished in state %s", describe_state(final or {"type": "FAILED"}),
                             exc_info=exc)
                return Outcome(final, exception=exc)
            data = None
            if persist:
                data = results.persist_result(value, task.result_storage or
                                              flow_context.result_storage,
                                              task.result_serializer or
                                              flow_context.result_serializer)
            answer = orchestrate(propose, state("COMPLETED", data=data))
            final = answer["state"] or {"type": "COMPLETED"}
            logger.info("Finished in state %s", describe_state(final))
            flow_context.record_result(value, task_run["id"])
            return Outcome(final, value=value)
    except BaseException as exc:
        if not isinstance(exc, Exception):
            _report_crash(propose, exc, "Task run")
        raise


def _running_proposal(task, flow_context, parameters):
    cache_key = cache_expiration = None
    if task.cache_key_fn is not None:
        context = TaskRunContext(task, None, flow_context, parameters)
        cache_key = task.cache_key_fn(context, parameters)
        if cache_key is not None and task.cache_expiration is not None:
            cache_expiration = (_now() + task.cache_expiration).isoformat()
    return state("RUNNING", cache_key=cache_key, cache_expiration=cache_expiration,
                 refresh_cache=True if task.refresh_cache else None)


def _adopt_start_answer(answer, task_run, task_run_name):
    """None when the task run may run now; else the Outcome it ends with."""
    status, st = answer["status"], answer["state"]
    if status == "ACCEPT":
        return None
    if status == "REJECT" and st is not None and st["type"] == "COMPLETED":
        return Outcome(st, value=_result_from_state(st, f"Task run {task_run_name!r}"))
    current = task_run.get("state") or {}
    if status == "ABORT" and current.get("type") == "COMPLETED":
        # An earlier attempt of this flow run completed this task run: reuse its result.
        return Outcome(current, value=_result_from_state(current, f"Task run {task_run_name!r}"))
    reason = _reason(answer)
    error = RunAborted(f"Task run {task_run_name!r} was not started: {reason}")
    return Outcome(st or current or None, exception=error)


def _report_crash(propose, exc, what):
    """Report the run Crashed (best effort: the process is going down anyway)."""
    try:
        propose(exception_state(exc, what, type_="CRASHED"))
    except Exception as report_error:
        _engine_log.error("Could not report %s crash: %s", what.lower(), report_error)


# --- flow runs ------------------------------------------------------------------------------

def run_flow(flow, parameters, api, return_state=False):
    """Run ``flow`` with bound ``parameters`` as a flow run (a subflow when called inside a
    flow run); return its result (or its final state with ``return_state``)."""
    setup_logging(api.create_logs)
    parent = get_flow_run_context()
    if parent is None:
        with _SigtermTrap():
            try:
                return _run_flow(flow, parameters, api, None, return_state)
            finally:
                flush_logs()
    return _run_flow(flow, parameters, api, parent, return_state)


def _flow_run_name(flow, parameters):
    name = flow.flow_run_name
    if name is None:
        return None
    if callable(name):
        return str(name())
    return name.format(**parameters)


def _run_flow(flow, parameters, api, parent, return_state):
    from client.validation import ParameterTypeError, validate_parameters

    validation_error = None
    if flow.validate_parameters:
        try:
            parameters = validate_parameters(flow.fn, parameters, flow.name)
        except ParameterTypeError as exc:
            validation_error = exc
    flow_id = api.flow_id(flow.name)
    parent_task_run = None
    if parent is not None:
        parent_task_run = _create_parent_task_run(flow, parameters, parent, api)
    flow_run = api.create_flow_run({
        "flow_id": flow_id,
        "name": _flow_run_name(flow, parameters) if validation_error is None else None,
        "flow_version": flow.version,
        "parameters": jsonable(parameters),
        "tags": sorted(current_tags()),
        "parent_task_run_id": parent_task_run["id"] if parent_task_run else None,
        "empirical_policy": {"retries": flow.retries, "retry_delay": flow.retry_delay_seconds},
        "state": state("PENDING"),
    })
    logger = run_logger(flow_run)
    mirror = _mirror_to(api, parent_task_run, flow_run)
    propose = lambda st: mirror(api.set_flow_run_state(flow_run["id"], st))  # noqa: E731
    if validation_error is not None:
        answer = propose(state("FAILED", message=f"Validation of flow parameters failed: "
                                                 f"{validation_error}"))
        logger.error("Finished in state %s", describe_state(answer["state"]))
        if return_state:
            return answer["state"]
        raise validation_error
    logger.info("Created flow run %r for flow %r", flow_run["name"], flow.name)
    context = FlowRunContext(
        flow=flow, flow_run=flow_run, client=api, task_runner=None, parameters=parameters,
        result_storage=flow.result_storage or (parent.result_storage if parent else None),
        persist_result=flow.persist_result,
        result_serializer=flow.result_serializer or (
            parent.result_serializer if parent else "pickle"),
        parent=parent)
    heartbeats = _heartbeat_registry(api)
    heartbeats.add(flow_run["id"])
    try:
        final, value, error = _flow_attempts(flow, context, propose, logger)
    except BaseException as exc:
        if not isinstance(exc, Exception):
            _report_crash(propose, exc, "Flow run")
        raise
    finally:
        heartbeats.discard(flow_run["id"])
    logger.log(logging.ERROR if error else logging.INFO, "Finished in state %s",
               describe_state(final))
    if return_state:
        return final
    if error is not None:
        raise error
    return value


def _create_parent_task_run(flow, parameters, parent, api):
    """The task run that stands for a subflow in its parent flow run."""
    task_key = f"{flow.fn.__module__}.{flow.fn.__qualname__}"
    dynamic_key = parent.next_dynamic_key(task_key)
    inputs = _Inputs(parent)
    _, task_inputs = inputs.resolve(parameters, None)
    task_run, _ = api.create_task_run({
        "flow_run_id": parent.flow_run_id,
        "task_key": task_key,
        "dynamic_key": dynamic_key,
        "name": f"{flow.name}-{dynamic_key}",
        "tags": sorted(current_tags()),
        "task_inputs": task_inputs,
    }, state("PENDING"))
    return task_run


def _mirror_to(api, parent_task_run, flow_run):
    """For a subflow: a function that copies each state the subflow run gets onto its parent
    task run (forced: it only records what the subflow's orchestration decided)."""
    def mirror(answer):
        st = answer.get("state")
        if parent_task_run is not None and answer["status"] in ("ACCEPT", "REJECT") and st:
            copy = state(st["type"], name=st.get("name"), message=st.get("message"),
                         data=st.get("data"), child_flow_run_id=flow_run["id"])
            api.set_task_run_state(parent_task_run["id"], copy, force=True)
        return answer
    return mirror


def _flow_attempts(flow, context, propose, logger):
    """Propose Running, run the flow function, propose the final state; again while the
    server answers a failure with AwaitingRetry. Returns (final state, value, error)."""
    while True:
        answer = orchestrate(propose, state("RUNNING"))
        if answer["status"] == "ABORT":
            raise RunAborted(f"Flow run {context.flow_run['name']!r} was not started: "
                             f"{_reason(answer)}")
        if answer["status"] == "REJECT" and answer["state"]["type"] != "RUNNING":
            st = answer["state"]
            error = None if st["type"] == "COMPLETED" else RunAborted(
                f"Flow run {context.flow_run['name']!r} was not started: it is "
                f"{describe_state(st)}")
            return st, None, error
        value, error = _flow_body(flow, context)
        if error is None:
            data = None
            if flow.persist_result:
                data = results.persist_result(value, context.result_storage,
                                              context.result_serializer)
            answer = orchestrate(propose, state("COMPLETED", data=data))
            return answer["state"], value, None
        answer = orchestrate(propose, error[0])
        final = answer["state"]
        if answer["status"] == "REJECT" and final and final["type"] == "SCHEDULED":
            scheduled = final["state_details"].get("scheduled_time")
            logger.info("Received %s: retrying at %s", type(error[1]).__name__, scheduled)
            _sleep_until(_parse_time(scheduled))
            context.reset_for_retry()
            continue
        return final, None, error[1]


def _flow_body(flow, context):
    """Run the flow function in its context with a fresh task runner session; return (value,
    None) or (None, (failed state, exception))."""
    runner = flow.task_runner.start()
    context.task_runner = runner
    try:
        with flow_run_scope(context):
            try:
                value = call_with_timeout(flow.fn, (), context.parameters, flow.timeout_seconds,
                                          f"Flow run {context.flow_run['name']!r}")
                value = _resolve_futures(value)
            except Exception as exc:
                return None, (exception_state(exc, "Flow run"), exc)
    finally:
        runner.shutdown()
    if value is None:
        failed = [f for f in context.futures if f.get_state() is None
                  or f.get_state().get("type") != "COMPLETED"]
        if failed:
            exc = failed[0].result(raise_on_failure=False)
            message = f"{len(failed)}/{len(context.futures)} submitted task runs did not complete"
            return None, (exception_state(exc, "Flow run") | {"message": message}, exc)
    return value, None
