"""Bookkeeping applied to every transition that writes a state, forced or not."""

import datetime
import uuid

from app.models import ConcurrencySlot, statements
from app.models.notifications import queue_notifications
from app.orchestration.bookkeeping import apply_transition, stamp_state_details
from app.orchestration.rules import BaseUniversalTransform
from app.states import TERMINAL_STATES, StateType

_TICK = datetime.timedelta(microseconds=1)


class StampProposedState(BaseUniversalTransform):
    """Give the state to be written its id, its server timestamp (strictly after the current
    state's, so a run's states are totally ordered) and the run ids in its details."""

    def before_transition(self, context):
        state = context.proposed_state
        state.id = uuid.uuid4()
        timestamp = context.now
        if context.initial_state is not None and timestamp <= context.initial_state.timestamp:
            timestamp = context.initial_state.timestamp + _TICK
        state.timestamp = timestamp
        state.state_details = stamp_state_details(
            context.run, state.state_details, is_task=context.is_task
        )
        if state.type == StateType.SCHEDULED.value and not state.state_details.get(
            "scheduled_time"
        ):
            state.state_details["scheduled_time"] = timestamp.isoformat()


class UpdateSubflowStateDetails(BaseUniversalTransform):
    """A subflow's states name the parent task run that stands for it."""

    def before_transition(self, context):
        if context.run.parent_task_run_id is not None:
            context.proposed_state.state_details["task_run_id"] = str(
                context.run.parent_task_run_id
            )


class UpdateRunColumns(BaseUniversalTransform):
    """The run's denormalised state, times and counts (see ``bookkeeping.apply_transition``)."""

    def before_transition(self, context):
        apply_transition(
            context.run, context.initial_state, context.proposed_state, is_task=context.is_task
        )


class RemoveResumingIndicator(BaseUniversalTransform):
    """A flow resumed from a pause stops being 'resuming' once it runs again or ends."""

    def before_transition(self, context):
        proposed = StateType(context.proposed_state.type)
        policy = context.run.empirical_policy or {}
        if policy.get("resuming") and (
            proposed is StateType.RUNNING or proposed in TERMINAL_STATES
        ):
            context.run.empirical_policy = dict(policy, resuming=False)


class ReleaseTaskConcurrencySlots(BaseUniversalTransform):
    """A task run whose new state is neither RUNNING nor CANCELLING gives up every concurrency
    slot lease it holds (forced transitions included). Leases are taken for a run's tags, which
    never change after it is created: a run without tags holds none."""

    def after_transition(self, context):
        if context.run.tags and context.validated_state.type not in (
            StateType.RUNNING.value,
            StateType.CANCELLING.value,
        ):
            statements.delete_by(ConcurrencySlot, "task_run", context.run.id, deferred=True)


class QueueFlowRunNotifications(BaseUniversalTransform):
    """A flow run state that was written queues one notification per active notification
    policy matching its name and the run's tags, in the transition's transaction (Prefect's
    ``queue_flow_run_notifications`` after ``set_flow_run_state``). Sending is the
    notification service's job: nothing here waits on the network."""

    def after_transition(self, context):
        state = context.validated_state
        queue_notifications(state.id, state.name, context.run.tags, context.now)


class GlobalFlowPolicy:
    """Transforms of every flow run transition, in order."""

    @staticmethod
    def priority():
        return [
            StampProposedState,
            UpdateSubflowStateDetails,
            UpdateRunColumns,
            RemoveResumingIndicator,
            QueueFlowRunNotifications,
        ]


class GlobalTaskPolicy:
    """Transforms of every task run transition, in order."""

    @staticmethod
    def priority():
        return [StampProposedState, UpdateRunColumns, ReleaseTaskConcurrencySlots]
