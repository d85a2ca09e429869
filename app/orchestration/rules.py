"""Orchestration mechanics: the context of one proposed transition, rules and transforms.

A rule is a context manager compiled for one (from type, to type) transition. On entry it runs
``before_transition`` (which may reject, delay, abort or rename); on exit it runs
``after_transition`` if the transition it was compiled for still happened, or ``cleanup`` if a
later rule changed it (the rule "fizzled" and must undo its side effects). A rule whose
transition had already been changed when it was entered, or that is newer than the client's
declared API version, does nothing at all.

Universal transforms run on every transition that still writes a state (forced or not).
Any exception in a hook aborts the transition with the error as the reason. These semantics
follow Prefect Orion 2.7's ``orchestration/rules.py``, written as synchronous code.
"""

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from app.states import StateType

log = logging.getLogger(__name__)


class SetStateStatus(str, enum.Enum):
    """What became of a proposal."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    WAIT = "WAIT"
    ABORT = "ABORT"


@dataclass
class ProposedState:
    """A state not yet written: what a client proposed, or what a rule put in its place."""

    type: str
    name: str
    message: str | None = None
    data: Any = None
    state_details: dict = field(default_factory=dict)
    # Given by the server just before the state is written (see global_policy).
    id: Any = None
    timestamp: Any = None


def state_type_of(state):
    """The StateType of a state row or proposal, or None for no state."""
    return StateType(state.type) if state is not None else None


class OrchestrationContext:
    """Everything about one proposed transition of one run, shared by the rules.

    ``run`` is the locked run row; ``initial_state`` its current state row (or None);
    ``proposed_state`` the :class:`ProposedState` (None once a rule nullifies the transition);
    ``validated_state`` the state row written, if any. ``now`` is the transaction's clock.
    ``parameters`` carry caller settings; ``parameters["api-version"]`` is the proposing
    client's declared API version as a tuple of ints (absent or None: the latest).
    ``parent_flow_run`` caches what task rules read of the task's flow run.
    """

    def __init__(self, *, run, initial_state, proposed_state, is_task, now, parameters=None):
        self.run = run
        self.initial_state = initial_state
        self.proposed_state = proposed_state
        self.validated_state = None
        self.is_task = is_task
        self.now = now
        self.parameters = dict(parameters or {})
        self.response_status = SetStateStatus.ACCEPT
        self.response_details = {"type": "accept_details"}
        self.parent_flow_run = None

    def client_older_than(self, version):
        """Whether the proposing client declared an API version older than ``version``."""
        declared = self.parameters.get("api-version")
        return declared is not None and declared < version

    @property
    def initial_state_type(self):
        return state_type_of(self.initial_state)

    @property
    def proposed_state_type(self):
        return state_type_of(self.proposed_state)


class BaseOrchestrationRule:
    """A rule of a policy; subclasses set FROM_STATES / TO_STATES and override the hooks.

    ``FROM_STATES`` and ``TO_STATES`` hold StateType members, and None for "no state".
    A rule that came with an API version sets ``MIN_API_VERSION`` (a tuple of ints); for a
    client that declared an older version it is inapplicable, as for any other transition.
    """

    FROM_STATES: tuple = ()
    TO_STATES: tuple = ()
    MIN_API_VERSION: tuple | None = None

    def __init__(self, context, from_state_type, to_state_type):
        self.context = context
        self.from_state_type = from_state_type
        self.to_state_type = to_state_type
        self._invalid_on_entry = None

    def __enter__(self):
        if not self.invalid():
            try:
                self.before_transition(
                    self.context.initial_state, self.context.proposed_state, self.context
                )
            except Exception as error:  # a broken rule must not write a state
                log.exception("orchestration rule %s failed", type(self).__name__)
                self.abort_transition(
                    f"Aborting orchestration: error in {type(self).__name__}: {error!r}"
                )
        return self.context

    def __exit__(self, exc_type, exc, tb):
        if self.invalid():
            return False
        if self.fizzled():
            self.cleanup(self.context.initial_state, self.context.validated_state, self.context)
        else:
            self.after_transition(
                self.context.initial_state, self.context.validated_state, self.context
            )
        return False

    def invalid_transition(self):
        """True when the context's transition is no longer the one this rule was built for."""
        return (
            self.from_state_type != self.context.initial_state_type
            or self.to_state_type != self.context.proposed_state_type
        )

    def invalid(self):
        """Whether the rule was already inapplicable when entered (decided once)."""
        if self._invalid_on_entry is None:
            self._invalid_on_entry = self.invalid_transition() or (
                self.MIN_API_VERSION is not None
                and self.context.client_older_than(self.MIN_API_VERSION)
            )
        return self._invalid_on_entry

    def fizzled(self):
        """Whether a later rule changed the transition after this one was entered."""
        return False if self._invalid_on_entry else self.invalid_transition()

    def before_transition(self, initial_state, proposed_state, context):
        """Inspect or change the proposal before it is written."""

    def after_transition(self, initial_state, validated_state, context):
        """Act once the transition this rule was built for has been written."""

    def cleanup(self, initial_state, validated_state, context):
        """Undo ``before_transition``'s side effects when the rule fizzled."""

    def reject_transition(self, state, reason):
        """Replace the proposal with ``state``, or with nothing (the run keeps its state).

        ``state`` takes over the proposal's ``transition_id``, so a client retrying the same
        proposal after a lost answer is recognised and gets this state back (AwaitingRetry,
        Cached ...) instead of a second, different transition.
        """
        proposed = self.context.proposed_state
        transition_id = proposed.state_details.get("transition_id") if proposed else None
        if state is not None and transition_id:
            state.state_details = {**state.state_details, "transition_id": transition_id}
        self.to_state_type = state_type_of(state)
        self.context.proposed_state = state
        self.context.response_status = SetStateStatus.REJECT
        self.context.response_details = {"type": "reject_details", "reason": reason}

    def delay_transition(self, delay_seconds, reason):
        """Ask the client to propose again in ``delay_seconds``; nothing is written."""
        self.to_state_type = None
        self.context.proposed_state = None
        self.context.response_status = SetStateStatus.WAIT
        self.context.response_details = {
            "type": "wait_details",
            "delay_seconds": int(delay_seconds),
            "reason": reason,
        }

    def abort_transition(self, reason):
        """Refuse the proposal outright: nothing is written and the client must stop."""
        self.to_state_type = None
        self.context.proposed_state = None
        self.context.response_status = SetStateStatus.ABORT
        self.context.response_details = {"type": "abort_details", "reason": reason}

    def rename_state(self, name):
        """Give the proposed state another name (Retrying, Rerunning, ...)."""
        self.context.proposed_state.name = name


class BaseUniversalTransform:
    """Bookkeeping run on every transition that still writes a state."""

    def __init__(self, context, from_state_type, to_state_type):
        self.context = context

    def __enter__(self):
        if self.context.proposed_state is not None:
            self.before_transition(self.context)
        return self.context

    def __exit__(self, exc_type, exc, tb):
        if self.context.proposed_state is not None and exc_type is None:
            self.after_transition(self.context)
        return False

    def before_transition(self, context):
        """Runs before the state is written."""

    def after_transition(self, context):
        """Runs after the state is written."""
