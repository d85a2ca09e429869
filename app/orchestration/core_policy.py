"""The core flow and task policies (Orion 2.7.12 semantics), and the minimal forced ones.

Each rule's docstring states ``FROM -> TO: effect``. Rules read and change the locked run and
may query the database (inside the caller's transaction); they never commit.

Older clients keep older behaviour (``context.parameters["api-version"]``, ORION-REFERENCE
§3): the pause and resume rules and the reset of pause bookkeeping apply only to clients of
API 0.8.4 or later (Prefect 2.7.2+), and a flow retry proposed by a client older than 0.8.3
also puts the flow run's failed task runs back into AwaitingRetry.
"""

import datetime
import math
import operator
import random
import uuid
from functools import reduce

from peewee import fn

from app.models import (
    AGENT_POOL,
    ConcurrencyLimit,
    ConcurrencySlot,
    FlowRun,
    TaskRun,
    TaskRunState,
    TaskRunStateCache,
    WorkPool,
    WorkQueue,
    statements,
)
from app.orchestration.engine import orchestrate
from app.orchestration.global_policy import GlobalTaskPolicy
from app.orchestration.policies import ALL_STATES, BaseOrchestrationPolicy
from app.orchestration.rules import BaseOrchestrationRule, OrchestrationContext, ProposedState
from app.states import TERMINAL_STATES, StateType

S = StateType
TERMINAL = tuple(TERMINAL_STATES)
# Forward order of the non-terminal lifecycle; moving back or standing still is redundant.
_RANKS = {None: 0, S.SCHEDULED: 1, S.PENDING: 2, S.RUNNING: 3, S.CANCELLING: 4}
# API versions of behaviour changes: pausing (Prefect 2.7.2), and flow retries that no longer
# reset failed task runs (2.7.0).
PAUSE_API_VERSION = (0, 8, 4)
TASK_RUN_RETRY_API_VERSION = (0, 8, 3)


def _parse_time(value):
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value)
    return value


def _parent_flow_run(context):
    """The state type and run count of a task run's flow run, read once per transition."""
    if context.parent_flow_run is None:
        context.parent_flow_run = statements.select_fields(
            FlowRun,
            ("state_type", "run_count"),
            context.run.flow_run_id,
        ) or {"state_type": None, "run_count": 0}
    return context.parent_flow_run


def _retries(policy):
    """Retries and base delay of a run policy, honouring the deprecated 2.0 field names."""
    retries = policy.get("retries")
    if retries is None and policy.get("max_retries"):
        retries = policy["max_retries"]
    delay = policy.get("retry_delay")
    if delay is None and policy.get("retry_delay_seconds"):
        delay = policy["retry_delay_seconds"]
    return retries, delay


def _reset_pause_bookkeeping(context):
    """Forget the run's fired pause keys and resuming mark (for clients that pause), returning
    the policy as it was so a fizzled rule can put it back."""
    original = dict(context.run.empirical_policy)
    if not context.client_older_than(PAUSE_API_VERSION):
        context.run.empirical_policy = dict(original, pause_keys=[], resuming=False)
    return original


def _awaiting_retry(failed, now, delay_seconds):
    """The AwaitingRetry state a failed attempt becomes: due after the delay, keeping the
    failure's message and data."""
    when = now + datetime.timedelta(seconds=delay_seconds)
    return ProposedState(
        type=S.SCHEDULED.value,
        name="AwaitingRetry",
        message=failed.message,
        data=failed.data,
        state_details={"scheduled_time": when.isoformat()},
    )


class HandleFlowTerminalStateTransitions(BaseOrchestrationRule):
    """terminal -> any: ABORT, except a manual retry (-> SCHEDULED named AwaitingRetry) of a
    run with a deployment, which is allowed and clears the run's pause bookkeeping."""

    FROM_STATES = TERMINAL
    TO_STATES = ALL_STATES

    def before_transition(self, initial_state, proposed_state, context):
        self.original_policy = dict(context.run.empirical_policy)
        is_retry = (
            proposed_state.type == S.SCHEDULED.value and proposed_state.name == "AwaitingRetry"
        )
        if not is_retry or context.run.deployment_id is None:
            self.abort_transition(
                f"This run has already terminated ({initial_state.type}); only a manual retry "
                "(AwaitingRetry) of a deployment's run can move it."
            )
            return
        _reset_pause_bookkeeping(context)

    def cleanup(self, initial_state, validated_state, context):
        context.run.empirical_policy = self.original_policy


class HandleCancellingStateTransitions(BaseOrchestrationRule):
    """CANCELLING/CANCELLED -> anything but CANCELLED: REJECT, the run keeps its state."""

    FROM_STATES = (S.CANCELLING, S.CANCELLED)
    TO_STATES = tuple(s for s in ALL_STATES if s is not S.CANCELLED)

    def before_transition(self, initial_state, proposed_state, context):
        self.reject_transition(
            None, f"This run is {initial_state.type.lower()}; it can only become CANCELLED."
        )


class PreventRedundantTransitions(BaseOrchestrationRule):
    """Among SCHEDULED < PENDING < RUNNING < CANCELLING: ABORT unless moving strictly forward
    (so two agents cannot both move one run to PENDING)."""

    FROM_STATES = tuple(_RANKS)
    TO_STATES = tuple(_RANKS)

    def before_transition(self, initial_state, proposed_state, context):
        initial_type = context.initial_state_type
        if _RANKS[context.proposed_state_type] <= _RANKS[initial_type]:
            self.abort_transition(
                f"This run cannot transition to the {proposed_state.type} state from the "
                f"{initial_type.value if initial_type else 'no'} state."
            )


class CancelRunsWithoutInfrastructure(BaseOrchestrationRule):
    """SCHEDULED, or PENDING with no infrastructure_pid -> CANCELLING: REJECT into Cancelled
    (keeping the proposal's message); no process runs it, so none has to be stopped first.

    (An Orion extension.) A PENDING run whose agent is starting its process but has not yet
    recorded the pid is cancelled too: the process then finds its run terminal and stops.
    """

    FROM_STATES = (S.SCHEDULED, S.PENDING)
    TO_STATES = (S.CANCELLING,)

    def before_transition(self, initial_state, proposed_state, context):
        if initial_state.type == S.PENDING.value and context.run.infrastructure_pid:
            return
        self.reject_transition(
            ProposedState(type=S.CANCELLED.value, name="Cancelled", message=proposed_state.message),
            f"The run was {initial_state.type.lower()} with no infrastructure to stop; it is "
            "cancelled at once.",
        )


class HandlePausingFlows(BaseOrchestrationRule):
    """any -> PAUSED: only a RUNNING run pauses, once per pause key; a pause that reschedules
    needs a deployment and is refused to subflows. Records the pause key. (API 0.8.4+)"""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.PAUSED,)
    MIN_API_VERSION = PAUSE_API_VERSION

    def before_transition(self, initial_state, proposed_state, context):
        self.key = None
        if initial_state is None:
            self.abort_transition("Cannot pause flows with no state.")
            return
        if initial_state.type != S.RUNNING.value:
            self.reject_transition(None, "Cannot pause flows that are not currently running.")
            return
        details = proposed_state.state_details
        self.key = details.get("pause_key") or str(uuid.uuid4())
        if self.key in (context.run.empirical_policy.get("pause_keys") or []):
            self.reject_transition(None, "This pause has already fired.")
            return
        if details.get("pause_reschedule"):
            if context.run.parent_task_run_id is not None:
                self.abort_transition("Cannot pause subflows with the reschedule option.")
            elif context.run.deployment_id is None:
                self.abort_transition(
                    "Cannot pause flows without a deployment with the reschedule option."
                )

    def after_transition(self, initial_state, validated_state, context):
        # A rule that rejected or aborted the pause itself still exits here: record only a
        # pause that happened.
        if validated_state is None or validated_state.type != S.PAUSED.value:
            return
        policy = dict(context.run.empirical_policy)
        policy["pause_keys"] = sorted(set(policy.get("pause_keys") or []) | {self.key})
        context.run.empirical_policy = policy


class HandleResumingPausedFlows(BaseOrchestrationRule):
    """PAUSED -> any: only RUNNING, SCHEDULED or a terminal state; rescheduling needs a
    deployment; past its pause_timeout the run is REJECTed into Failed, whatever was proposed
    (a terminal state too, as in Orion 2.7). Marks it resuming.

    Orion 2.7 marks it after the transition, so a resume straight to RUNNING counted as a new
    attempt (and spent a retry); here it is marked before, so a resume never counts.
    (API 0.8.4+)
    """

    FROM_STATES = (S.PAUSED,)
    TO_STATES = ALL_STATES
    MIN_API_VERSION = PAUSE_API_VERSION

    def before_transition(self, initial_state, proposed_state, context):
        self.original_policy = dict(context.run.empirical_policy)
        proposed_type = context.proposed_state_type
        if proposed_type not in (S.RUNNING, S.SCHEDULED, *TERMINAL):
            self.reject_transition(
                None,
                f"This run cannot transition to the {proposed_type.value} state from "
                "the PAUSED state.",
            )
            return
        details = initial_state.state_details or {}
        if details.get("pause_reschedule") and context.run.deployment_id is None:
            self.reject_transition(
                None, "Cannot reschedule a paused flow run without a deployment."
            )
            return
        timeout = _parse_time(details.get("pause_timeout"))
        if timeout is not None and timeout < context.now:
            failed = ProposedState(
                type=S.FAILED.value, name="Failed", message="The flow was paused and never resumed."
            )
            self.reject_transition(
                failed, "The flow run pause has timed out and can no longer resume."
            )
            return
        context.run.empirical_policy = dict(self.original_policy, resuming=True)

    def cleanup(self, initial_state, validated_state, context):
        context.run.empirical_policy = self.original_policy


class CopyScheduledTime(BaseOrchestrationRule):
    """SCHEDULED -> PENDING: the pending state keeps the scheduled time unless it has one."""

    FROM_STATES = (S.SCHEDULED,)
    TO_STATES = (S.PENDING,)

    def before_transition(self, initial_state, proposed_state, context):
        if not proposed_state.state_details.get("scheduled_time"):
            proposed_state.state_details["scheduled_time"] = (
                initial_state.state_details or {}
            ).get("scheduled_time")


class WaitForScheduledTime(BaseOrchestrationRule):
    """SCHEDULED/PENDING -> RUNNING: WAIT until the scheduled time (whole seconds, rounded up
    so a run never starts early)."""

    FROM_STATES = (S.SCHEDULED, S.PENDING)
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        scheduled = _parse_time((initial_state.state_details or {}).get("scheduled_time"))
        if scheduled is None:
            return
        delay = (scheduled - context.now).total_seconds()
        if delay > 0:
            self.delay_transition(math.ceil(delay), "Scheduled time is in the future.")


class RetryFailedFlows(BaseOrchestrationRule):
    """RUNNING -> FAILED: with retries left, REJECT into AwaitingRetry at now + retry_delay,
    keeping the failure's message and data; pause bookkeeping is reset.

    For a client older than API 0.8.3, which re-runs only the tasks that failed, the flow run's
    FAILED task runs are forced into AwaitingRetry at the same time, with their run counts
    reset so that their own retries start afresh.
    """

    FROM_STATES = (S.RUNNING,)
    TO_STATES = (S.FAILED,)

    def before_transition(self, initial_state, proposed_state, context):
        self.retrying = False
        retries, delay = _retries(context.run.empirical_policy)
        if retries is None or context.run.run_count > retries:
            return
        self.retrying = True
        self.original_policy = _reset_pause_bookkeeping(context)
        self.reject_transition(_awaiting_retry(proposed_state, context.now, delay or 0), "Retrying")

    def after_transition(self, initial_state, validated_state, context):
        # Here rather than before the transition: an error here rolls the whole retry back.
        if self.retrying and context.client_older_than(TASK_RUN_RETRY_API_VERSION):
            _retry_failed_task_runs(
                context.run, validated_state.state_details["scheduled_time"], context.now
            )

    def cleanup(self, initial_state, validated_state, context):
        context.run.empirical_policy = self.original_policy


def _retry_failed_task_runs(flow_run, scheduled_time, now):
    """Force every FAILED task run of ``flow_run`` into AwaitingRetry at ``scheduled_time``
    (ISO text) and reset its run count. The task runs are locked after their flow run, the
    order every transition takes."""
    failed = TaskRun.locked(
        (TaskRun.flow_run == flow_run.id) & (TaskRun.state_type == S.FAILED.value)
    )
    for task_run in failed:
        context = OrchestrationContext(
            run=task_run,
            is_task=True,
            now=now,
            initial_state=TaskRunState.get_or_none(TaskRunState.id == task_run.state_id),
            proposed_state=ProposedState(
                type=S.SCHEDULED.value,
                name="AwaitingRetry",
                state_details={"scheduled_time": scheduled_time},
            ),
        )
        orchestrate(context, MinimalTaskPolicy, GlobalTaskPolicy, TaskRunState, "task_run")
        task_run.run_count = 0
        task_run.save()


class CacheRetrieval(BaseOrchestrationRule):
    """any -> RUNNING: a proposal with a cache key (and no refresh_cache) whose newest cached
    COMPLETED state has not expired is REJECTed into a copy of it named Cached."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        details = proposed_state.state_details
        key = details.get("cache_key")
        if not key or details.get("refresh_cache"):
            return
        cached = (
            TaskRunState.select()
            .join(TaskRunStateCache, on=(TaskRunStateCache.task_run_state == TaskRunState.id))
            .where(
                (TaskRunStateCache.cache_key == key)
                & (
                    TaskRunStateCache.cache_expiration.is_null()
                    | (TaskRunStateCache.cache_expiration > context.now)
                )
            )
            .order_by(TaskRunStateCache.created.desc())
            .first()
        )
        if cached is not None:
            state = ProposedState(
                type=cached.type,
                name="Cached",
                message=cached.message,
                data=cached.data,
                state_details=dict(cached.state_details),
            )
            self.reject_transition(state, "Retrieved state from cache")


class HandleTaskTerminalStateTransitions(BaseOrchestrationRule):
    """terminal -> any: ABORT, except FAILED/CRASHED/CANCELLED -> RUNNING while the parent flow
    run is on a later attempt than the task (a flow retry): run_count resets, named Retrying."""

    FROM_STATES = TERMINAL
    TO_STATES = ALL_STATES

    def before_transition(self, initial_state, proposed_state, context):
        self.original_run_count = context.run.run_count
        retryable = initial_state.type in (S.FAILED.value, S.CRASHED.value, S.CANCELLED.value)
        flow_retrying = context.run.flow_run_run_count < _parent_flow_run(context)["run_count"]
        if not (retryable and proposed_state.type == S.RUNNING.value and flow_retrying):
            self.abort_transition(f"This run has already terminated ({initial_state.type}).")
            return
        context.run.run_count = 0
        self.rename_state("Retrying")

    def cleanup(self, initial_state, validated_state, context):
        context.run.run_count = self.original_run_count


class PreventRunningTasksFromStoppedFlows(BaseOrchestrationRule):
    """any -> RUNNING: the task's flow run must be RUNNING (ABORT otherwise); if it is PAUSED
    the task is REJECTed into Paused named NotReady."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        flow_state = _parent_flow_run(context)["state_type"]
        if flow_state == S.PAUSED.value:
            self.reject_transition(
                ProposedState(type=S.PAUSED.value, name="NotReady"),
                "The flow is paused; new tasks can run after the flow run "
                f"{context.run.flow_run_id} resumes.",
            )
        elif flow_state != S.RUNNING.value:
            self.abort_transition("The enclosing flow must be running to begin task execution.")


class SecureTaskConcurrencySlots(BaseOrchestrationRule):
    """any -> RUNNING: the run must lease a slot of every concurrency limit on its tags.

    The run's limits are locked (in tag order) for the rest of the transaction, so concurrent
    proposals for runs sharing a tag are decided one after another. A limit of 0 ABORTs (the
    run could never start); a limit whose unexpired leases held by other runs fill it WAITs
    ``context.parameters["slot_wait_seconds"]`` (default :attr:`WAIT_SECONDS`). Only when
    every limit has room does the run lease (or renew) one slot of each, expiring
    ``context.parameters["slot_lease_seconds"]`` (default :attr:`LEASE_SECONDS`) from now. If
    the rule fizzles, the leases are put back as they were.
    """

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    # Used when the caller passes no settings; the API passes the server's TASK_CONCURRENCY_*.
    WAIT_SECONDS = 30
    LEASE_SECONDS = 300

    def before_transition(self, initial_state, proposed_state, context):
        self.previous_leases = None
        limits = ConcurrencyLimit.locked_for_tags(context.run.tags or ())
        if not limits:
            return
        for limit in limits:
            if limit.concurrency_limit == 0:
                self.abort_transition(
                    f"The concurrency limit on tag {limit.tag!r} is 0 and will deadlock if the "
                    "task tries to run again."
                )
                return
        slots = ConcurrencySlot
        held = dict(
            slots.select(slots.limit, fn.COUNT(slots.id))
            .where(
                slots.limit.in_([limit.id for limit in limits])
                & (slots.task_run != context.run.id)
                & (slots.expires > context.now)
            )
            .group_by(slots.limit)
            .tuples()
        )
        for limit in limits:
            if held.get(limit.id, 0) >= limit.concurrency_limit:
                self.delay_transition(
                    context.parameters.get("slot_wait_seconds", self.WAIT_SECONDS),
                    f"Concurrency limit for the {limit.tag!r} tag has been reached.",
                )
                return
        self.previous_leases = dict(
            slots.select(slots.limit, slots.expires)
            .where(
                (slots.task_run == context.run.id) & slots.limit.in_([limit.id for limit in limits])
            )
            .tuples()
        )
        lease = datetime.timedelta(
            seconds=context.parameters.get("slot_lease_seconds", self.LEASE_SECONDS)
        )
        self.leased_limit_ids = [limit.id for limit in limits]
        slots.lease(self.leased_limit_ids, [context.run.id], context.now + lease, context.now)

    def cleanup(self, initial_state, validated_state, context):
        if self.previous_leases is None:
            return
        slots = ConcurrencySlot
        created = [i for i in self.leased_limit_ids if i not in self.previous_leases]
        if created:
            slots.delete().where(
                (slots.task_run == context.run.id) & slots.limit.in_(created)
            ).execute()
        for limit_id, expires in self.previous_leases.items():
            slots.update(expires=expires).where(
                (slots.task_run == context.run.id) & (slots.limit == limit_id)
            ).execute()


class RetryFailedTasks(BaseOrchestrationRule):
    """RUNNING -> FAILED: with retries left, REJECT into AwaitingRetry at now + the delay for
    this attempt (a list gives one delay per attempt), plus optional jitter."""

    FROM_STATES = (S.RUNNING,)
    TO_STATES = (S.FAILED,)

    def before_transition(self, initial_state, proposed_state, context):
        policy = context.run.empirical_policy
        retries, delay = _retries(policy)
        run_count = context.run.run_count
        if retries is None or run_count > retries:
            return
        if isinstance(delay, list):
            delay = delay[min(run_count - 1, len(delay) - 1)] if delay else 0
        delay = float(delay or 0)
        jitter = policy.get("retry_jitter_factor")
        if jitter:
            delay = random.uniform(max(delay - delay * jitter, 0), delay + delay * jitter)
        self.reject_transition(_awaiting_retry(proposed_state, context.now, delay), "Retrying")


class RenameReruns(BaseOrchestrationRule):
    """any -> RUNNING: a run that has run before is renamed Retrying (after AwaitingRetry) or
    Rerunning."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def before_transition(self, initial_state, proposed_state, context):
        if context.run.run_count > 0:
            retrying = initial_state is not None and initial_state.name == "AwaitingRetry"
            self.rename_state("Retrying" if retrying else "Rerunning")


class UpdateFlowRunTrackerOnTasks(BaseOrchestrationRule):
    """any -> RUNNING: the task remembers which attempt of its flow run it belongs to."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.RUNNING,)

    def after_transition(self, initial_state, validated_state, context):
        context.run.flow_run_run_count = _parent_flow_run(context)["run_count"]


class CacheInsertion(BaseOrchestrationRule):
    """any -> COMPLETED: a state with a cache key is recorded in the cache (with its expiry)."""

    FROM_STATES = ALL_STATES
    TO_STATES = (S.COMPLETED,)

    def after_transition(self, initial_state, validated_state, context):
        details = validated_state.state_details or {}
        key = details.get("cache_key")
        if key:
            TaskRunStateCache.create(
                cache_key=key,
                cache_expiration=details.get("cache_expiration"),
                task_run_state=validated_state.id,
            )


class EnforceWorkQueueConcurrency(BaseOrchestrationRule):
    """not PENDING/RUNNING -> PENDING (an agent's or worker's claim): the run's work queue and
    its pool must have room.

    The run's queue (the one its ``work_queue_id`` names, else the agents' pool's queue named
    by its ``work_queue_name``) is locked for the rest of the transaction, then its pool if
    that has a limit, so claims on one queue or pool are decided one after another. If the
    queue's, or the pool's, other runs active at the claim's timestamp already fill its
    ``concurrency_limit``, the claim ABORTs and the run stays SCHEDULED for a later poll. (An
    Orion extension: Orion's limit was advisory, applied only to what ``get_runs`` returned,
    so agents polling together could exceed it. Queues of Orion 2.0 that match runs by filter
    rather than by name are not enforced.)
    """

    FROM_STATES = tuple(s for s in ALL_STATES if s not in (S.PENDING, S.RUNNING))
    TO_STATES = (S.PENDING,)

    def before_transition(self, initial_state, proposed_state, context):
        run = context.run
        if run.work_queue_id is not None:
            where = WorkQueue.id == run.work_queue_id
        elif run.work_queue_name:
            agents = WorkPool.select(WorkPool.id).where(WorkPool.name == AGENT_POOL)
            where = (WorkQueue.name == run.work_queue_name) & (WorkQueue.work_pool == agents)
        else:
            return
        queue = WorkQueue.locked(where)
        if queue is None or queue.filter is not None:
            return
        if queue.concurrency_limit is not None:
            active = self._active(FlowRun.of_queue(queue), context)
            if active >= queue.concurrency_limit:
                self.abort_transition(
                    f"Work queue {queue.name!r} is at its concurrency limit "
                    f"({queue.concurrency_limit} flow runs PENDING or RUNNING); the run stays "
                    "scheduled for a later poll."
                )
                return
        pool = queue.work_pool
        if pool.concurrency_limit is None:
            return
        pool = WorkPool.locked(WorkPool.id == pool.id)
        queues = list(WorkQueue.select().where(WorkQueue.work_pool == pool.id))
        for each in queues:
            each.work_pool = pool
        active = self._active(reduce(operator.or_, map(FlowRun.of_queue, queues)), context)
        if active >= pool.concurrency_limit:
            self.abort_transition(
                f"Work pool {pool.name!r} is at its concurrency limit ({pool.concurrency_limit} "
                "flow runs PENDING or RUNNING); the run stays scheduled for a later poll."
            )

    @staticmethod
    def _active(condition, context):
        """Runs matching ``condition`` active at this claim's timestamp: PENDING or RUNNING
        now, or moved on since ``context.now`` (taken before the lock was granted). So the
        limit also holds for the runs' histories rebuilt from state timestamps, not only in
        commit order."""
        return (
            FlowRun.select()
            .where(
                condition
                & (
                    FlowRun.state_type.in_((S.PENDING.value, S.RUNNING.value))
                    | (FlowRun.state_timestamp > context.now)
                )
                & (FlowRun.id != context.run.id)
            )
            .count()
        )


class CoreFlowPolicy(BaseOrchestrationPolicy):
    """Orion 2.7.12's flow run policy, in priority order."""

    @staticmethod
    def priority():
        return [
            HandleFlowTerminalStateTransitions,
            HandleCancellingStateTransitions,
            PreventRedundantTransitions,
            CancelRunsWithoutInfrastructure,
            EnforceWorkQueueConcurrency,
            HandlePausingFlows,
            HandleResumingPausedFlows,
            CopyScheduledTime,
            WaitForScheduledTime,
            RetryFailedFlows,
        ]


class CoreTaskPolicy(BaseOrchestrationPolicy):
    """Orion 2.7.12's task run policy, in priority order (slots are released by the global
    ReleaseTaskConcurrencySlots transform, which also runs for forced transitions)."""

    @staticmethod
    def priority():
        return [
            CacheRetrieval,
            HandleTaskTerminalStateTransitions,
            PreventRunningTasksFromStoppedFlows,
            PreventRedundantTransitions,
            SecureTaskConcurrencySlots,
            CopyScheduledTime,
            WaitForScheduledTime,
            RetryFailedTasks,
            RenameReruns,
            UpdateFlowRunTrackerOnTasks,
            CacheInsertion,
        ]


class MinimalFlowPolicy(BaseOrchestrationPolicy):
    """Forced flow transitions: no rules (the bookkeeping still runs)."""


class MinimalTaskPolicy(BaseOrchestrationPolicy):
    """Forced task transitions: no rules (slot release is a global transform, so it still runs)."""
