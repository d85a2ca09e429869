"""Reading the state history of flow runs and task runs."""

from typing import Any

from app.models import FlowRunState, TaskRunState
from app.services.common import Id, get_or_raise


def _history(
    state_model: type[FlowRunState] | type[TaskRunState], run_field: Any, run_id: Id
) -> list[Any]:
    return list(state_model.select().where(run_field == run_id).order_by(state_model.timestamp))


def read_flow_run_states(flow_run_id: Id) -> list[FlowRunState]:
    """Every state of a flow run, oldest first (empty for an unknown run)."""
    return _history(FlowRunState, FlowRunState.flow_run, flow_run_id)


def read_task_run_states(task_run_id: Id) -> list[TaskRunState]:
    """Every state of a task run, oldest first (empty for an unknown run)."""
    return _history(TaskRunState, TaskRunState.task_run, task_run_id)


def read_flow_run_state(state_id: Id) -> FlowRunState:
    """One flow run state by id; ObjectNotFound if none."""
    return get_or_raise(
        FlowRunState.select().where(FlowRunState.id == state_id), "Flow run state", state_id
    )


def read_task_run_state(state_id: Id) -> TaskRunState:
    """One task run state by id; ObjectNotFound if none."""
    return get_or_raise(
        TaskRunState.select().where(TaskRunState.id == state_id), "Task run state", state_id
    )
