"""Task run pages: a task run's states, inputs, cache key, result reference and logs."""

from flask import url_for

from app.blueprints.ui import ACTIVE_STATES, bp, render
from app.blueprints.ui.logs import log_download, logs_context
from app.services import flow_runs, states, task_runs


@bp.get("/task-runs/<uuid:task_run_id>")
def task_run_page(task_run_id):
    """A task run: states, inputs, cache key, result reference and logs."""
    run = task_runs.read_task_run(task_run_id)
    active = run.state_type in ACTIVE_STATES
    history = states.read_task_run_states(task_run_id)
    return render(
        "ui/task_run.html",
        None,
        run=run,
        flow_run=flow_runs.read_flow_run(run.flow_run_id),
        history=history,
        ran_on=_ran_on(history),
        logs_url=url_for("ui.task_run_logs", task_run_id=task_run_id),
        download_url=url_for("ui.task_run_log_download", task_run_id=task_run_id),
        **logs_context(run.flow_run_id, active, str(task_run_id)),
    )


def _ran_on(history):
    """Where the task run last ran: the task runner and worker its latest Running state
    recorded (``state_details``), or None for runs from clients that record neither."""
    for state in reversed(history):
        details = state.state_details or {}
        if details.get("task_runner"):
            return {"task_runner": details["task_runner"], "worker": details.get("worker")}
    return None


@bp.get("/task-runs/<uuid:task_run_id>/logs")
def task_run_logs(task_run_id):
    """The newest log records of a task run, by level; polls while the run is active."""
    run = task_runs.read_task_run(task_run_id)
    return render(
        "ui/page.html",
        "ui/_logs.html",
        title=f"Logs of {run.name}",
        run=run,
        logs_url=url_for("ui.task_run_logs", task_run_id=task_run_id),
        download_url=url_for("ui.task_run_log_download", task_run_id=task_run_id),
        **logs_context(run.flow_run_id, run.state_type in ACTIVE_STATES, str(task_run_id)),
    )


@bp.get("/task-runs/<uuid:task_run_id>/logs.txt")
def task_run_log_download(task_run_id):
    """The task run's full log as text (timestamps in UTC), streamed in batches."""
    run = task_runs.read_task_run(task_run_id)
    return log_download(run.flow_run_id, str(task_run_id), f"task-run-{task_run_id}.log")
