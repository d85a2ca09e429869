"""Work queue pages: the list (queues of every pool, each linking to its pool) with each
queue's health, create and edit forms (a new queue goes to the agents' pool), pause and
resume, delete, and a queue's page with its pool, its agent or worker command, upcoming and
recent runs.

Forms are checked by the API's own schemas (``WorkQueueCreateSchema`` /
``WorkQueueUpdateSchema``), so a name the API refuses is refused here with the same message,
shown next to its field.
"""

import datetime
import shlex

from flask import flash, redirect, request, url_for
from marshmallow import ValidationError

from app.blueprints.ui import agent_timeout, bp, error_page, local_path, params, render
from app.clock import utcnow
from app.exceptions import Conflict, ObjectAlreadyExists
from app.schemas.actions import WorkQueueCreateSchema, WorkQueueUpdateSchema
from app.services import dashboard, work_pools, work_queues

QUEUES_SHOWN = 200
RUNS_SHOWN = 10
# How far ahead the queue page previews the runs an agent would be handed.
UPCOMING_HORIZON = datetime.timedelta(days=100)
FORM_FIELDS = ("name", "description", "concurrency_limit", "is_paused")


def _queue_list():
    return work_queues.read_work_queues({"sort": "NAME_ASC", "limit": QUEUES_SHOWN, "offset": 0})


@bp.get("/work-queues")
def work_queues_page():
    """Work queues by name with their health: polled recently, late runs, active runs."""
    queues = _queue_list()
    return render(
        "ui/work_queues.html",
        "ui/_work_queues.html",
        queues=queues,
        health=work_queues.queue_health(queues, agent_timeout=agent_timeout()),
        shown=QUEUES_SHOWN,
    )


def _form_values(form):
    """The submitted form as shown back to the user (strings, and the checkbox)."""
    return {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "concurrency_limit": form.get("concurrency_limit", ""),
        "is_paused": form.get("is_paused") == "on",
    }


def _parse_form(form, schema):
    """``(data, errors)``: the form loaded by ``schema``, or ``{field: message}``."""
    values = _form_values(form)
    errors = {}
    body = {
        "name": values["name"].strip(),
        "description": values["description"].strip(),
        "is_paused": values["is_paused"],
        "concurrency_limit": None,
    }
    limit = values["concurrency_limit"].strip()
    if limit:
        try:
            body["concurrency_limit"] = int(limit)
        except ValueError:
            errors["concurrency_limit"] = "Enter a whole number, or leave it empty for no limit."
    try:
        data = schema.load(body)
    except ValidationError as error:
        data = None
        for field, text in params.schema_errors(error).items():
            errors.setdefault(field, text)
    return (None if errors else data), errors


def _form_page(queue, values, errors, status=200):
    return render(
        "ui/work_queue_form.html",
        "ui/_work_queue_form.html",
        status=status,
        queue=queue,
        values=values,
        errors=errors,
        title=f"Edit work queue {queue.name}" if queue else "New work queue",
    )


@bp.get("/work-queues/new")
def new_work_queue():
    """The form for a new work queue."""
    return _form_page(
        None, {"name": "", "description": "", "concurrency_limit": "", "is_paused": False}, {}
    )


@bp.post("/work-queues/new")
def create_work_queue():
    """Create a work queue; the form comes back with the errors next to their fields."""
    data, errors = _parse_form(request.form, WorkQueueCreateSchema())
    if not errors:
        try:
            queue = work_queues.create_work_queue(data)
        except ObjectAlreadyExists as error:
            errors = {"name": str(error)}
    if errors:
        return _form_page(None, _form_values(request.form), errors, 422)
    flash(f"Created the work queue {queue.name!r}.")
    return redirect(url_for("ui.work_queue_page", queue_id=queue.id), 303)


@bp.get("/work-queues/<uuid:queue_id>/edit")
def edit_work_queue(queue_id):
    """The form to change a work queue."""
    queue = work_queues.read_work_queue(queue_id)
    return _form_page(
        queue,
        {
            "name": queue.name,
            "description": queue.description or "",
            "concurrency_limit": (
                "" if queue.concurrency_limit is None else str(queue.concurrency_limit)
            ),
            "is_paused": queue.is_paused,
        },
        {},
    )


@bp.post("/work-queues/<uuid:queue_id>/edit")
def update_work_queue(queue_id):
    """Change a work queue's name, description, limit and pause."""
    queue = work_queues.read_work_queue(queue_id)
    data, errors = _parse_form(request.form, WorkQueueUpdateSchema())
    if not errors:
        try:
            work_queues.update_work_queue(queue_id, data)
        except ObjectAlreadyExists as error:
            errors = {"name": str(error)}
    if errors:
        return _form_page(queue, _form_values(request.form), errors, 422)
    flash(f"Saved the work queue {data['name']!r}.")
    return redirect(url_for("ui.work_queue_page", queue_id=queue_id), 303)


@bp.post("/work-queues/<uuid:queue_id>/pause")
@bp.post("/work-queues/<uuid:queue_id>/resume", endpoint="resume_work_queue")
def pause_work_queue(queue_id):
    """Pause a work queue (agents get no runs from it) or resume it."""
    queue = work_queues.read_work_queue(queue_id)
    paused = request.endpoint == "ui.pause_work_queue"
    work_queues.update_work_queue(queue_id, {"is_paused": paused})
    flash(f"{'Paused' if paused else 'Resumed'} the work queue {queue.name!r}.")
    return redirect(
        local_path(request.form.get("next"), url_for("ui.work_queue_page", queue_id=queue_id)), 303
    )


@bp.post("/work-queues/<uuid:queue_id>/delete")
def delete_work_queue(queue_id):
    """Delete a work queue (its flow runs stay, with their queue name); a pool's default
    queue cannot go (a 409 page, as the API refuses it)."""
    try:
        queue = work_queues.delete_work_queue(queue_id)
    except Conflict as refused:
        return error_page(409, "Conflict", str(refused))
    flash(f"Deleted the work queue {queue.name!r}. Its flow runs were kept.")
    return redirect(url_for("ui.work_queues_page"), 303)


@bp.get("/work-queues/<uuid:queue_id>")
def work_queue_page(queue_id):
    """A work queue: its pool, health, the command starting an agent (a queue of the agents'
    pool) or a Prefect worker (another pool's queue) for it, upcoming runs (what a poller
    would be handed now, looking ahead, without recording a poll) and recent runs."""
    now = utcnow()
    queue = work_queues.read_work_queue(queue_id)
    upcoming = work_queues.get_runs(
        queue_id,
        scheduled_before=now + UPCOMING_HORIZON,
        limit=RUNS_SHOWN,
        record_poll=False,
        now=now,
        claim=False,
    )
    recent = work_queues.recent_runs(queue, RUNS_SHOWN)
    agent_queue = work_pools.is_agent_pool(queue.work_pool)
    if agent_queue:
        command = f"orion agent start -q {shlex.quote(queue.name)}"
    else:
        pool, name = shlex.quote(queue.work_pool.name), shlex.quote(queue.name)
        command = f"prefect worker start --pool {pool} --work-queue {name}"
    return render(
        "ui/work_queue.html",
        None,
        queue=queue,
        health=work_queues.queue_health([queue], now, agent_timeout())[str(queue.id)],
        agent_queue=agent_queue,
        command=command,
        upcoming=upcoming,
        recent=recent,
        flow_names=dashboard.flow_names(r.flow_id for r in upcoming + recent),
        now=now,
    )
