"""Run bookkeeping applied on every state change, forced or not (Orion's global transforms).

When a run moves from its current state to a new one, these functions update the run's
denormalised columns: the state copy, start/end times, run counts, total run time, expected
and next scheduled start times; and stamp the run id into the new state's details. They read
and write model instances only and never touch the database themselves, so the caller writes
the state row and the run in its own transaction.
"""

import datetime

from app.states import TERMINAL_STATES, StateType


def stamp_state_details(run, details, *, is_task):
    """Return ``details`` with the run's id stamped in (``flow_run_id`` / ``task_run_id``)."""
    details = dict(details)
    if is_task:
        details["task_run_id"] = str(run.id)
        details["flow_run_id"] = str(run.flow_run_id)
    else:
        details["flow_run_id"] = str(run.id)
    return details


def apply_transition(run, initial, new, *, is_task):
    """Update ``run``'s columns for the move from state row ``initial`` (or None) to ``new``.

    ``new`` must already carry its server timestamp and id. Implements, in Orion's order:
    state type/name/timestamp copies, first start time, end time (set when entering a
    terminal state after having started, cleared when leaving one), run time accrued while
    RUNNING, expected start time (first state only), next scheduled start time (while
    SCHEDULED) and the run count (each entry into RUNNING; a flow resuming from a pause does
    not count as a new attempt).
    """
    new_type = StateType(new.type)
    initial_type = StateType(initial.type) if initial is not None else None

    run.state_id = new.id
    run.state_type = new_type.value
    run.state_name = new.name
    run.state_timestamp = new.timestamp

    if new_type is StateType.RUNNING and run.start_time is None:
        run.start_time = new.timestamp
    if new_type in TERMINAL_STATES:
        if run.start_time is not None and run.end_time is None:
            run.end_time = new.timestamp
    elif initial_type in TERMINAL_STATES:
        run.end_time = None
    if initial_type is StateType.RUNNING:
        run.total_run_time += (new.timestamp - initial.timestamp).total_seconds()

    scheduled_time = (new.state_details or {}).get("scheduled_time")
    if isinstance(scheduled_time, str):
        scheduled_time = datetime.datetime.fromisoformat(scheduled_time)
    if initial is None and run.expected_start_time is None:
        is_scheduled = new_type is StateType.SCHEDULED and scheduled_time
        run.expected_start_time = scheduled_time if is_scheduled else new.timestamp
    run.next_scheduled_start_time = scheduled_time if new_type is StateType.SCHEDULED else None

    if new_type is StateType.RUNNING and initial_type is not StateType.RUNNING:
        resuming = not is_task and (run.empirical_policy or {}).get("resuming")
        if not resuming:
            run.run_count += 1
