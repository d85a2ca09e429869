"""Running a policy over one proposed transition (Prefect Orion's ExitStack loop, sync)."""

from contextlib import ExitStack

from app.models.statements import insert_row


def orchestrate(context, policy, global_policy, state_model, run_field):
    """Apply ``policy``'s rules and the global transforms to ``context``'s proposal.

    Rules are entered in priority order, then the transforms; the state that is still
    proposed is then written as a ``state_model`` row (its run link is ``run_field``) and
    becomes the run's current state; hooks then exit in reverse order. The caller holds the
    run's lock in an open transaction and saves the run afterwards.
    """
    from_type, to_type = context.initial_state_type, context.proposed_state_type
    with ExitStack() as stack:
        for rule in policy.compile_transition_rules(from_type, to_type):
            stack.enter_context(rule(context, from_type, to_type))
        for transform in global_policy.priority():
            stack.enter_context(transform(context, from_type, to_type))
        proposed = context.proposed_state
        if proposed is not None:
            values = {
                "id": proposed.id,
                "type": proposed.type,
                "name": proposed.name,
                "timestamp": proposed.timestamp,
                "message": proposed.message,
                "data": proposed.data,
                "state_details": proposed.state_details,
                "created": context.now,
                "updated": context.now,
                run_field: context.run.id,
            }
            insert_row(state_model, values, deferred=True)
            # Every column is given: peewee's defaults (a uuid4, two clock reads) would be
            # computed only to be overwritten.
            context.validated_state = state_model(__no_default__=True, **values)
    return context
