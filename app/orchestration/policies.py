"""Policies: ordered rule lists, compiled for one transition at a time."""

from app.states import StateType

ALL_STATES = (None, *StateType)


class BaseOrchestrationPolicy:
    """A named, ordered list of rules; subclasses implement :meth:`priority`."""

    @staticmethod
    def priority():
        """The rules, in the order they are entered."""
        return []

    @classmethod
    def compile_transition_rules(cls, from_state_type, to_state_type):
        """The rules that apply to a transition, in priority order."""
        return [
            rule
            for rule in cls.priority()
            if from_state_type in rule.FROM_STATES and to_state_type in rule.TO_STATES
        ]
