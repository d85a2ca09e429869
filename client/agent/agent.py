"""The agent: takes scheduled flow runs from work queues or a work pool and runs each on its
infrastructure.

``orion agent start -q QUEUE [-q ...] [--limit N] [--run-once]`` runs :class:`Agent` on work
queues of the agents' pool (:class:`WorkQueueSource`); ``orion agent start --pool POOL [-q
QUEUE ...]`` on a work pool, as a worker of it (:class:`WorkPoolSource`). Only where the runs
come from differs: claiming, starting, watching and cancelling them is the same code. Every
query interval (``ORION_AGENT_QUERY_INTERVAL``, 10 s, ±30 % jitter) it

1. reads where its runs come from: its queues by name (creating missing ones; the list is
   cached for 30 s), skipping paused ones; or, on a pool, heartbeats as the pool's worker
   (checking first, once, that the pool exists, is of a type it runs and has the queues
   named: :class:`AgentStartError` otherwise);
2. stops its runs that were asked to cancel: a run of its queues in CANCELLING that it
   started is stopped through its infrastructure (``kill``, in a thread: SIGTERM, SIGKILL
   after ``ORION_AGENT_CANCEL_GRACE_SECONDS`` (10); a container is stopped the same way), and
   is force-set Cancelled once it is gone;
3. asks each queue (or the pool, for the queues named or all of its queues, by priority) for
   runs due by now + ``ORION_AGENT_PREFETCH_SECONDS`` (10), sending its id and name (the
   server records the agent), and claims each by proposing PENDING: the run is its own only
   if the server ACCEPTs (another agent's claim, or the queue's or pool's concurrency limit,
   ABORTs it, and the run is left alone). It then starts the run on the run's
   infrastructure block (``infrastructure_document_id``, with the deployment's
   ``infra_overrides`` applied; default: a ``Process``, which runs ``python -m
   client.agent.run FLOW_RUN_ID`` in a new session: :mod:`client.agent.run` fetches the code
   and runs the flow; a ``DockerContainer`` runs the same in a container) through the
   interface of :mod:`client.infrastructure.base`, and records its identifier as the run's
   ``infrastructure_pid`` (``host:pid``, ``DOCKER_HOST:CONTAINER_ID``). A run whose block
   cannot be loaded, or that cannot start there, is made Failed with the reason.
   ``--limit`` caps how many runs it has going at once.

Between polls it watches its runs (every ``TICK_SECONDS``): output the infrastructure
captures (a container's) is sent as the run's logs (logger ``orion.infrastructure``); when
the infrastructure ends, its exit code is recorded on the run (``infrastructure_exit_code``),
and a run whose infrastructure ends non-zero and leaves it without a final state is made
Crashed with the exit code and the reason (out of memory, daemon gone; Cancelled if it was
cancelling).

From start to exit a thread heartbeats (``POST /api/agents/{id}/heartbeat``; on a pool, ``POST
/api/work_pools/{pool}/workers/heartbeat``) every ``ORION_AGENT_HEARTBEAT_SECONDS`` (5),
whatever the polls are doing, so the dashboard's queue health (the pool's status) shows the
agent online; the server shows it offline once it has been silent for
``ORION_AGENT_HEARTBEAT_TIMEOUT`` (20 s).

When the API cannot be reached, polls back off exponentially (up to ``MAX_BACKOFF_SECONDS``)
and reports not yet delivered are kept and retried; running flows are unaffected. On SIGTERM
or SIGINT the agent stops polling and waits for its processes to finish, at most
``ORION_AGENT_SHUTDOWN_TIMEOUT`` seconds (300); it then lists the runs still going (their
processes keep running, and heartbeat, in their own sessions) and exits.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import math
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from client import OrionClient
from client.api.exceptions import ObjectAlreadyExists, ObjectNotFound, OrionClientError
from client.api.objects import APIObject
from client.api.settings import get_settings
from client.api.states import Cancelled, Crashed, Failed, Pending, SetStateStatus, StateType

if TYPE_CHECKING:
    from client.blocks.core import BlockLoadError
    from client.infrastructure.base import Infrastructure

log = logging.getLogger("orion.agent")

UTC = datetime.UTC
# Seconds between two looks at the agent's processes.
TICK_SECONDS = 0.25
# Seconds the agent keeps its list of queues before reading them again.
QUEUE_CACHE_SECONDS = 30
# Longest wait between polls while the API is unreachable.
MAX_BACKOFF_SECONDS = 60
# Jitter of the query interval, as a fraction of it.
JITTER = 0.3
# Most runs asked for per queue and poll.
RUNS_PER_POLL = 10
# Longest wait, when the agent stops, for a heartbeat in flight to end.
HEARTBEAT_JOIN_SECONDS = 5

# The logger name of the output lines an infrastructure captured, in the run's logs.
OUTPUT_LOGGER = "orion.infrastructure"
# Types of work pool whose runs the agent runs, as it runs queue runs (on the deployment's
# infrastructure block, or as a local process): process pools, and the agents' own pool
# (its queues are those of ``-q``). Other types (docker, kubernetes ...) configure their runs
# through the pool's base job template, which only Prefect's workers apply.
POOL_TYPES = ("process", "prefect-agent")

# Where a poll looks for runs: a description for the logs ("work queue 'etl'") and a function
# ``(limit, scheduled_before) -> flow runs`` asking the API for that many due runs.
Batch = tuple[str, Callable[[int, datetime.datetime], list[APIObject]]]


class AgentStartError(Exception):
    """What the agent was asked to serve cannot be served (an unknown pool, a pool of a type
    it does not run, a queue the pool does not have); the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """The agent's ``ORION_AGENT_*`` settings."""

    query_interval: float = 10.0
    prefetch_seconds: float = 10.0
    cancel_grace_seconds: float = 10.0
    shutdown_timeout: float = 300.0
    heartbeat_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        environ = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            raw = (environ.get(name) or "").strip()
            try:
                return float(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None

        return cls(
            query_interval=number("ORION_AGENT_QUERY_INTERVAL", cls.query_interval),
            prefetch_seconds=number("ORION_AGENT_PREFETCH_SECONDS", cls.prefetch_seconds),
            cancel_grace_seconds=number(
                "ORION_AGENT_CANCEL_GRACE_SECONDS", cls.cancel_grace_seconds
            ),
            shutdown_timeout=number("ORION_AGENT_SHUTDOWN_TIMEOUT", cls.shutdown_timeout),
            heartbeat_seconds=number("ORION_AGENT_HEARTBEAT_SECONDS", cls.heartbeat_seconds),
        )


@dataclasses.dataclass
class Child:
    """A flow run this agent started: its infrastructure block, the handle ``start`` gave,
    and the output lines captured and not yet sent (``(timestamp, line)``, appended by the
    infrastructure's thread)."""

    flow_run_id: str
    infrastructure: Infrastructure
    handle: Any
    output: list[tuple[datetime.datetime, str]] = dataclasses.field(default_factory=list)
    cancelling: bool = False
    exit_code: int | None = None

    @property
    def identifier(self) -> str:
        return str(self.handle.identifier)


class WorkQueueSource:
    """The runs of work queues of the agents' pool, by name (``orion agent start -q``): each
    queue (created if missing) is asked in turn, highest priority first, through
    ``/api/work_queues/{id}/get_runs``, which records the agent as the queue's poller. The
    agent heartbeats as an agent (``/api/agents/{id}/heartbeat``)."""

    def __init__(self, agent: Agent, queue_names: Sequence[str]) -> None:
        if not queue_names:
            raise ValueError("An agent needs at least one work queue.")
        self.agent = agent
        self.queue_names = list(dict.fromkeys(queue_names))
        self._queues: list[APIObject] = []
        self._queues_read_at: float | None = None

    def describe(self) -> str:
        return "work queue(s) " + ", ".join(repr(name) for name in self.queue_names)

    def check(self) -> None:
        """Nothing to check: missing queues are created."""

    def heartbeat(self) -> None:
        self.agent.client.send_agent_heartbeat(self.agent.id, self.agent.name)

    def queues(self) -> list[APIObject]:
        """The agent's queues (created if missing), cached for QUEUE_CACHE_SECONDS."""
        client = self.agent.client
        now = time.monotonic()
        if self._queues_read_at is None or now - self._queues_read_at > QUEUE_CACHE_SECONDS:
            queues = []
            for name in self.queue_names:
                try:
                    queues.append(client.read_work_queue_by_name(name))
                except ObjectNotFound:
                    try:
                        queues.append(client.create_work_queue(name))
                        log.info("Created work queue %r", name)
                    except ObjectAlreadyExists:
                        queues.append(client.read_work_queue_by_name(name))
            self._queues, self._queues_read_at = queues, now
        return self._queues

    def queues_by_priority(self) -> list[APIObject]:
        """:meth:`queues`, highest priority (1) first, as Prefect's workers serve the queues of
        their pool; equal priorities keep the order the agent was given."""
        return sorted(self.queues(), key=lambda queue: queue.get("priority", 1))

    def batches(self) -> list[Batch]:
        """One batch per unpaused queue, highest priority first."""
        return [
            (f"work queue {queue.name!r}", functools.partial(self._runs, queue))
            for queue in self.queues_by_priority()
            if not queue.is_paused
        ]

    def _runs(
        self, queue: APIObject, limit: int, scheduled_before: datetime.datetime
    ) -> list[APIObject]:
        return self.agent.client.get_runs_in_work_queue(
            queue.id,
            limit=limit,
            scheduled_before=scheduled_before,
            agent_id=self.agent.id,
            agent_name=self.agent.name,
        )


class WorkPoolSource:
    """The runs of a work pool (``orion agent start --pool POOL [-q QUEUE ...]``): the named
    queues of the pool, or all of its queues, asked at once through
    ``/api/work_pools/{pool}/get_scheduled_flow_runs`` (queues by priority; nothing from a
    paused pool or queue, nothing beyond their concurrency limits). The agent is a worker of
    the pool, named as the agent (``agent-<id>`` without ``--name``): it heartbeats through
    ``/api/work_pools/{pool}/workers/heartbeat`` at each poll and from the heartbeat thread,
    announcing ``ORION_AGENT_HEARTBEAT_SECONDS`` as its heartbeat interval.

    :meth:`check` (done by the first poll that reaches the API) raises AgentStartError for a
    pool that does not exist (the agent does not create pools: a mistyped name would leave
    it polling an empty pool; ``orion pool create`` makes one), a pool whose type is not in
    :data:`POOL_TYPES`, or a queue the pool does not have. No heartbeat is sent before it
    passed, so a refused agent never shows as a worker of the pool."""

    def __init__(self, agent: Agent, pool_name: str, queue_names: Sequence[str] = ()) -> None:
        self.agent = agent
        self.pool_name = pool_name
        self.queue_names = list(dict.fromkeys(queue_names))
        self.checked = False

    def describe(self) -> str:
        queues = (
            ", ".join(repr(name) for name in self.queue_names)
            if self.queue_names
            else "all its queues"
        )
        return f"work pool {self.pool_name!r} ({queues})"

    def check(self) -> None:
        client = self.agent.client
        try:
            pool = client.read_work_pool(self.pool_name)
        except ObjectNotFound:
            raise AgentStartError(
                f"Work pool {self.pool_name!r} not found; create it with "
                f"`orion pool create {self.pool_name} --type process`."
            ) from None
        if pool.type not in POOL_TYPES:
            raise AgentStartError(
                f"Work pool {self.pool_name!r} is of type {pool.type!r}: this agent runs pools "
                f"of type {' or '.join(repr(t) for t in POOL_TYPES)}. Serve it with a Prefect "
                f"worker of type {pool.type!r}, or put the deployments in a process pool with "
                "an infrastructure block (orion deployment create -ib)."
            )
        if self.queue_names:
            found = client.read_work_pool_queues(
                self.pool_name, {"name": {"any_": self.queue_names}}
            )
            missing = sorted(set(self.queue_names) - {queue.name for queue in found})
            if missing:
                have = [queue.name for queue in client.read_work_pool_queues(self.pool_name)]
                raise AgentStartError(
                    f"Work pool {self.pool_name!r} has no queue named "
                    f"{', '.join(repr(name) for name in missing)}; its queues: "
                    f"{', '.join(have)}."
                )
        self.checked = True

    @property
    def heartbeat_interval(self) -> int:
        """The heartbeat interval the worker announces, in whole seconds (at least 1)."""
        return max(1, math.ceil(self.agent.settings.heartbeat_seconds))

    def heartbeat(self) -> None:
        """Heartbeat as the pool's worker, once :meth:`check` passed (before: nothing)."""
        if self.checked:
            self.agent.client.send_worker_heartbeat(
                self.pool_name, self.agent.label, self.heartbeat_interval
            )

    def batches(self) -> list[Batch]:
        """Heartbeats as the pool's worker; one batch: the pool."""
        self.heartbeat()
        return [(f"work pool {self.pool_name!r}", self._runs)]

    def _runs(self, limit: int, scheduled_before: datetime.datetime) -> list[APIObject]:
        items = self.agent.client.get_scheduled_flow_runs_for_work_pool(
            self.pool_name,
            work_queue_names=self.queue_names or None,
            scheduled_before=scheduled_before,
            limit=limit,
        )
        return [item.flow_run for item in items]


class Agent:
    """See the module docstring. ``work_queues``: the queues to serve (of the agents' pool;
    with ``pool``, queues of that pool, none meaning all of them); ``pool``: a work pool to
    serve as its worker; ``client``: an :class:`OrionClient` (default: one from the
    environment); ``limit``: most runs going at once (None: no limit)."""

    def __init__(
        self,
        work_queues: Iterable[str] = (),
        *,
        pool: str | None = None,
        limit: int | None = None,
        name: str | None = None,
        client: OrionClient | None = None,
        settings: AgentSettings | None = None,
    ) -> None:
        self.limit = limit
        self.id = str(uuid.uuid4())
        self.name = name
        self.settings = settings or AgentSettings.from_env()
        self.source: WorkQueueSource | WorkPoolSource = (
            WorkQueueSource(self, list(work_queues))
            if pool is None
            else WorkPoolSource(self, pool, list(work_queues))
        )
        # Few retries per call: the loop backs off by itself and must keep watching processes.
        self._owns_client = client is None
        self.client = client or OrionClient(
            settings=dataclasses.replace(
                get_settings(), api_retries=min(get_settings().api_retries, 2)
            )
        )
        self.children: dict[str, Child] = {}
        self.claimed: list[str] = []
        self.stopping = False
        self._checked = False
        self._failures = 0

        self._last_error: OrionClientError | None = None
        self._next_poll = 0.0
        self._host = socket.gethostname()
        self._heartbeat_stop = threading.Event()

    # -- heartbeats -------------------------------------------------------------------------

    def heartbeat(self) -> bool:
        """Send one heartbeat (as an agent, or as the pool's worker); returns whether the
        server recorded it (failures are logged, never raised: the thread must outlive them,
        and the next beat tries again)."""
        try:
            self.source.heartbeat()
        except Exception as error:
            log.warning("Agent %s: heartbeat failed: %s", self.label, error)
            return False
        return True

    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stop.is_set():
            self.heartbeat()
            self._heartbeat_stop.wait(self.settings.heartbeat_seconds)

    # -- the loop ---------------------------------------------------------------------------

    def start(self, run_once: bool = False) -> list[str]:
        """Poll until SIGTERM/SIGINT (or once, with ``run_once``), then wait for the runs
        started to finish (see the module docstring). Returns the runs still going.

        With ``run_once``, a poll that the API failed raises its OrionClientError (after the
        wait), so a one-shot agent against a server that is down does not pass for done.
        AgentStartError (from the first poll that reaches the API) when what it was asked to
        serve cannot be served."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("Agent %s started on %s", self.label, self.source.describe())
        self._heartbeat_stop.clear()
        heartbeats = threading.Thread(
            target=self._heartbeat_loop, name="orion-agent-heartbeat", daemon=True
        )
        heartbeats.start()
        try:
            while not self.stopping:
                if time.monotonic() >= self._next_poll:
                    self._next_poll = time.monotonic() + self.poll()
                    if run_once:
                        break
                self.watch()
                time.sleep(TICK_SECONDS)
            still_going = self.shutdown()
            if run_once and self._last_error is not None:
                raise self._last_error
            return still_going
        except AgentStartError:
            if self._owns_client:
                self.client.close()
            raise
        finally:
            self._heartbeat_stop.set()
            # A beat in flight may wait for the API; the thread is a daemon either way.
            heartbeats.join(HEARTBEAT_JOIN_SECONDS)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @property
    def label(self) -> str:
        return self.name or f"agent-{self.id}"

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info(
                "Agent %s received %s: no more polls; waiting for %d run(s)",
                self.label,
                signal.Signals(signum).name,
                len(self.children),
            )
        self.stopping = True

    def poll(self) -> float:
        """One poll: cancellations, then claims. Returns the seconds until the next one.
        The first poll that reaches the API checks the source first (AgentStartError)."""
        try:
            if not self._checked:
                self.source.check()
                self._checked = True
            batches = self.source.batches()
            self.cancel_requested()
            for where, fetch in batches:
                self.claim(where, fetch)
        except OrionClientError as error:
            self._last_error = error
            self._failures += 1
            delay = min(MAX_BACKOFF_SECONDS, self.settings.query_interval * 2**self._failures)
            log.warning(
                "Agent %s: the Orion API failed (%s); next poll in %.1f s", self.label, error, delay
            )
            return delay
        self._failures, self._last_error = 0, None
        interval = self.settings.query_interval
        return random.uniform(interval * (1 - JITTER), interval * (1 + JITTER))

    def claim(self, where: str, fetch: Callable[[int, datetime.datetime], list[APIObject]]) -> None:
        """Ask one batch of the source (``where``, ``fetch``) for due runs and claim and start
        each, within the agent's limit."""
        free = RUNS_PER_POLL if self.limit is None else self.limit - len(self.children)
        if free <= 0:
            return
        due = datetime.datetime.now(UTC) + datetime.timedelta(
            seconds=self.settings.prefetch_seconds
        )
        runs = fetch(min(free, RUNS_PER_POLL), due)
        for run in runs:
            if self.limit is not None and len(self.children) >= self.limit:
                return
            # Read before claiming: if the API fails here, the run is left for a later poll.
            infrastructure = self._infrastructure(
                run.get("infrastructure_document_id"), self._overrides(run)
            )
            answer = self.client.set_flow_run_state(run.id, Pending())
            if (
                answer.status is not SetStateStatus.ACCEPT
                or answer.state is None
                or answer.state.type is not StateType.PENDING
            ):
                log.info(
                    "Flow run %s was not claimed: %s",
                    run.id,
                    answer.details.get("reason") or answer.status.value,
                )
                continue
            self.claimed.append(run.id)
            log.info("Claimed flow run %s (%s) from %s", run.id, run.name, where)
            self.submit(run.id, infrastructure)

    def submit(
        self, flow_run_id: str, infrastructure: Infrastructure | BlockLoadError | None = None
    ) -> None:
        """Start the run on ``infrastructure`` (what :meth:`_infrastructure` gave; None: a
        local ``Process``) and record its identifier; Failed if the infrastructure block
        could not be loaded or the run cannot start there."""
        from client.blocks.core import BlockLoadError
        from client.infrastructure.base import InfrastructureError

        output: list[tuple[datetime.datetime, str]] = []
        try:
            if infrastructure is None:
                infrastructure = self._infrastructure(None)
            if isinstance(infrastructure, BlockLoadError):
                raise infrastructure
            handle = infrastructure.start(
                flow_run_id,
                env=self._child_env(),
                output=lambda line: output.append((datetime.datetime.now(UTC), line)),
            )
        except (BlockLoadError, InfrastructureError) as error:
            log.error("Flow run %s could not be started: %s", flow_run_id, error)
            self.client.set_flow_run_state(
                flow_run_id, Failed(message=f"Submission failed: {error}")
            )
            return
        child = Child(flow_run_id, infrastructure, handle, output=output)
        self.children[flow_run_id] = child
        self.client.update_flow_run(flow_run_id, infrastructure_pid=child.identifier)

    def _overrides(self, run: APIObject) -> dict[str, Any]:
        """The ``infra_overrides`` of the run's deployment ({} for a run without one or
        without an infrastructure block)."""
        if not run.get("deployment_id") or not run.get("infrastructure_document_id"):
            return {}
        try:
            deployment = self.client.read_deployment(run.deployment_id)
        except ObjectNotFound:
            return {}
        return dict(deployment.get("infra_overrides") or {})

    def _infrastructure(
        self, document_id: str | None, overrides: Mapping[str, Any] | None = None
    ) -> Infrastructure | BlockLoadError:
        """The infrastructure block saved as ``document_id`` with ``overrides`` applied
        (read for every run, so an edited block applies to the next run), a default
        ``Process`` for runs whose deployment names none, or the BlockLoadError saying why
        there is none to use (the run is claimed and failed with it). API errors are
        raised."""
        from client.blocks.core import Block, BlockLoadError
        from client.infrastructure.base import Infrastructure
        from client.infrastructure.process import Process

        if document_id is None:
            return Process()
        try:
            block = Block.load_by_id(document_id, client=self.client)
        except BlockLoadError as error:
            return error
        if not isinstance(block, Infrastructure):
            return BlockLoadError(
                f"The deployment's infrastructure block is a {block.get_block_type_slug()!r}"
                " block, not an infrastructure block."
            )
        try:
            return block.with_overrides(overrides)
        except ValueError as error:
            return BlockLoadError(str(error))

    def _child_env(self) -> dict[str, str]:
        """What a flow run process needs besides this process's environment."""
        env: dict[str, str] = {}
        if not self.client.in_process:
            env["ORION_API_URL"] = self.client.api_url
        if self.client.settings.api_key:
            env["ORION_API_KEY"] = self.client.settings.api_key
        return env

    # -- cancellation -----------------------------------------------------------------------

    def cancel_requested(self) -> None:
        """Start stopping this agent's runs that are CANCELLING (each in a thread)."""
        if not self.children:
            return
        cancelling = self.client.read_flow_runs(
            flow_run_filter={
                "id": {"any_": list(self.children)},
                "state": {"type": {"any_": [StateType.CANCELLING.value]}},
            }
        )
        for run in cancelling:
            child = self.children.get(run.id)
            if child is None or child.cancelling:
                continue
            child.cancelling = True
            log.info("Flow run %s is cancelling: stopping %s", run.id, child.identifier)
            threading.Thread(
                target=self._kill,
                args=(child, self.settings.cancel_grace_seconds),
                daemon=True,
                name=f"kill-{run.id}",
            ).start()

    @staticmethod
    def _kill(child: Child, grace_seconds: float) -> None:
        from client.infrastructure.base import InfrastructureError

        try:
            child.infrastructure.kill(child.identifier, grace_seconds=grace_seconds)
        except InfrastructureError as error:
            log.warning("Flow run %s could not be stopped: %s", child.flow_run_id, error)

    # -- watching runs ----------------------------------------------------------------------

    def watch(self) -> None:
        """Send captured output as logs; report the runs whose infrastructure ended."""
        for child in list(self.children.values()):
            if child.exit_code is None:
                child.exit_code = child.infrastructure.poll(child.handle)
            self._send_output(child)
            if child.exit_code is None:
                continue
            try:
                self._send_output(child, must=True)
                self.report_exit(child)
            except OrionClientError as error:
                log.warning(
                    "Flow run %s: could not report its exit yet (%s)", child.flow_run_id, error
                )
                continue
            del self.children[child.flow_run_id]

    def _send_output(self, child: Child, must: bool = False) -> None:
        """Send the output lines captured so far as the run's logs. A failure is logged and
        the lines kept for the next try, unless ``must`` (then it is raised)."""
        if not child.output:
            return
        lines = child.output[:]
        try:
            self.client.create_logs(
                {
                    "name": OUTPUT_LOGGER,
                    "level": logging.INFO,
                    "message": line,
                    "timestamp": at,
                    "flow_run_id": child.flow_run_id,
                }
                for at, line in lines
            )
        except OrionClientError as error:
            if must:
                raise
            log.warning("Flow run %s: its output is not sent yet (%s)", child.flow_run_id, error)
            return
        del child.output[: len(lines)]

    def report_exit(self, child: Child) -> None:
        """Record the exit code of the run whose infrastructure ended, and give the run a
        final state if it has none."""
        if child.cancelling:
            self._kill(child, 0)  # what the run's process left behind
        self.client.update_flow_run(child.flow_run_id, infrastructure_exit_code=child.exit_code)
        run = self.client.read_flow_run(child.flow_run_id)
        state = run.state
        if state is not None and state.is_final():
            return
        if child.cancelling or (state is not None and state.is_cancelling()):
            self.client.set_flow_run_state(
                child.flow_run_id,
                Cancelled(message="The agent stopped the flow run's process."),
                force=True,
            )
            log.info("Flow run %s is cancelled", child.flow_run_id)
        elif child.exit_code != 0:
            reason = child.infrastructure.exit_reason(child.handle)
            answer = self.client.set_flow_run_state(
                child.flow_run_id,
                Crashed(
                    message=f"The flow run's {child.infrastructure.get_block_type_slug()} "
                    f"{child.identifier} exited with code {child.exit_code} without "
                    "reporting a final state" + (f": {reason}." if reason else ".")
                ),
            )
            log.warning(
                "Flow run %s crashed (exit code %s): %s",
                child.flow_run_id,
                child.exit_code,
                answer.status.value,
            )

    def shutdown(self) -> list[str]:
        """Wait for the processes to finish, reporting them, at most the shutdown timeout;
        returns the flow run ids still going."""
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while self.children and time.monotonic() < deadline:
            self.watch()
            time.sleep(TICK_SECONDS)
        if self.children:
            log.warning(
                "Agent %s stopped with %d run(s) still going: %s",
                self.label,
                len(self.children),
                ", ".join(f"{c.flow_run_id} ({c.identifier})" for c in self.children.values()),
            )
        else:
            log.info("Agent %s stopped", self.label)
        if self._owns_client:
            self.client.close()
        return list(self.children)
