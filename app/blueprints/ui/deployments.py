"""Deployment pages: the list, a deployment's page, pausing and resuming its schedule,
starting runs from it (quick run with its defaults, or the custom run form) and editing it
(parameters, description, tags, work queue, schedule).

A run started here is Scheduled for now (or for the custom run's start time), as Prefect's
own clients create deployment runs: agents claim Scheduled runs, and the API's default for
a body without a state, Pending, would leave it unclaimed. Both run forms carry a submission
id, generated when the page is rendered; it becomes the run's idempotency key, so submitting
the same form twice (a double click, a resent POST) starts one run and shows it.
"""

import datetime
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, flash, redirect, request, url_for
from marshmallow import ValidationError

from app.blueprints.ui import BadParameter, bp, here, local_path, page_url, params, render
from app.blueprints.ui.parameter_form import form_fields, read_parameters
from app.blueprints.ui.schedule_words import describe
from app.clock import utcnow
from app.schemas.core import estimated_run_time
from app.schemas.deployments import DeploymentFlowRunCreateSchema, DeploymentUpdateSchema
from app.services import dashboard, deployments, flows
from app.services.scheduler import SchedulerSettings

DEPLOYMENTS_PER_PAGE = 50
MAX_PAGE = 200
NEXT_RUNS = 10
RECENT_RUNS = 50
RUN_NAME_LENGTH = 200
# The run forms' hidden field holding their submission id.
SUBMISSION_FIELD = "submission_id"
# The list's "recent run states" cover this window.
ACTIVITY_WINDOW = datetime.timedelta(days=1)


def _settings():
    return SchedulerSettings.from_config(current_app.config)


def _describe(row):
    words, expression = describe(row.schedule)
    return {
        "words": words,
        "expression": expression,
        "timezone": row.schedule.get("timezone") or "UTC",
        "active": row.active,
    }


def schedule_summary(deployment, now, count=1):
    """What the pages show of a deployment's schedules: each one's words, expression, zone
    and active flag (``schedules``), the first one's as ``words``/``expression``/``timezone``,
    and the next ``count`` times of its active schedules merged (none while it is paused)."""
    rows = deployment.schedule_rows
    described = [_describe(row) for row in rows]
    first = described[0] if described else {"words": describe(None)[0], "expression": None}
    upcoming = set()
    if not deployment.paused:
        for row in rows:
            if row.active:
                upcoming.update(dashboard.next_run_times(row.schedule, count, now))
    return {
        "words": first["words"],
        "expression": first["expression"],
        "timezone": first.get("timezone") or "UTC",
        "schedules": described,
        "any_active": any(row.active for row in rows),
        "next": sorted(upcoming)[:count],
    }


@bp.get("/deployments")
def deployments_page():
    """Deployments by name (filterable by a name substring): flow, schedule, whether it is
    active, its next run, its last run's state and its runs of the last day by state."""
    now = utcnow()
    name = params.text(request.args, "name")
    page = params.integer(request.args, "page", 1, 1, MAX_PAGE)
    body = {
        "deployments": {"name": {"like_": name}} if name else {},
        "sort": "NAME_ASC",
        "limit": DEPLOYMENTS_PER_PAGE + 1,
        "offset": (page - 1) * DEPLOYMENTS_PER_PAGE,
    }
    found = deployments.read_deployments(body)
    has_next = len(found) > DEPLOYMENTS_PER_PAGE
    found = found[:DEPLOYMENTS_PER_PAGE]
    return render(
        "ui/deployments.html",
        "ui/_deployments_results.html",
        deployments=found,
        name=name,
        schedules={str(d.id): schedule_summary(d, now) for d in found},
        flow_names=dashboard.flow_names(d.flow_id for d in found),
        activity=dashboard.run_counts_by_deployment(
            [d.id for d in found], now - ACTIVITY_WINDOW, now
        ),
        last_runs=dashboard.last_runs_of_deployments([d.id for d in found], now),
        here=here(),
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if has_next and page < MAX_PAGE else None,
    )


def _wall_time(when, timezone):
    """A UTC time as the wall-clock time in the schedule's zone, with the zone's abbreviation."""
    try:
        return when.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (ValueError, ZoneInfoNotFoundError):
        return ""


def _durations_chart(runs, now):
    """The recent runs that started, oldest first, as uPlot columns: start times (epoch
    seconds) and one run time series (seconds) per state type, None where another state."""
    started = sorted((r for r in runs if r.start_time), key=lambda r: (r.start_time, str(r.id)))
    present = sorted({r.state_type for r in started if r.state_type})
    return {
        "times": [round(r.start_time.timestamp(), 3) for r in started],
        "names": [r.name for r in started],
        "series": [
            {
                "state": state_type,
                "seconds": [
                    round(estimated_run_time(r, now), 3) if r.state_type == state_type else None
                    for r in started
                ],
            }
            for state_type in present
        ],
    }


@bp.get("/deployments/<uuid:deployment_id>")
def deployment_page(deployment_id):
    """A deployment: schedule with its time zone and next runs, parameters, where its code
    is, recent runs with their run times, and the buttons to run it."""
    now = utcnow()
    deployment = deployments.read_deployment(deployment_id)
    summary = schedule_summary(deployment, now, NEXT_RUNS)
    stored = {
        run.next_scheduled_start_time: run
        for run in dashboard.scheduled_runs_of_deployment(deployment_id, now, NEXT_RUNS)
    }
    recent = dashboard.recent_runs_of_deployment(deployment_id, now, RECENT_RUNS)
    return _uncached(
        render(
            "ui/deployment.html",
            None,
            deployment=deployment,
            flow=flows.read_flow(deployment.flow_id),
            schedule=summary,
            next_runs=[
                (when, _wall_time(when, summary["timezone"]), stored.get(when))
                for when in summary["next"]
            ],
            other_scheduled=[run for when, run in stored.items() if when not in summary["next"]],
            recent=recent,
            chart=_durations_chart(recent, now),
            now=now,
            submission_field=SUBMISSION_FIELD,
            submission_id=uuid.uuid4(),
        )
    )


def _set_active(deployment_id, active):
    deployment = deployments.read_deployment(deployment_id)
    deployments.set_paused(deployment_id, not active, _settings())
    if active:
        flash(f"Resumed the schedule of {deployment.name!r}: its next runs are scheduled.")
    else:
        flash(
            f"Paused the schedule of {deployment.name!r}: its future scheduled runs were removed."
        )
    back = url_for("ui.deployment_page", deployment_id=deployment_id)
    return redirect(local_path(request.form.get("next"), back), 303)


@bp.post("/deployments/<uuid:deployment_id>/pause")
def pause_deployment(deployment_id):
    """Pause a deployment's schedule (back to ``next``, a path here, or its page)."""
    return _set_active(deployment_id, False)


@bp.post("/deployments/<uuid:deployment_id>/resume")
def resume_deployment(deployment_id):
    """Resume a deployment's schedule (back to ``next``, a path here, or its page)."""
    return _set_active(deployment_id, True)


def _uncached(response):
    """A page with a run form, never stored: going back to it renders a new submission id,
    so Run after Back starts a new run instead of showing the previous one."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _idempotency_key(deployment_id):
    """The run's idempotency key from the form's submission id (a UUID, else 422).

    The deployment's id is part of it: a key is unique per flow, and one flow has many
    deployments. The ``dashboard`` prefix keeps it apart from the scheduler's keys.
    """
    try:
        submission = uuid.UUID(request.form.get(SUBMISSION_FIELD) or "")
    except ValueError:
        raise BadParameter(
            SUBMISSION_FIELD, "the form lacks its submission id: reload the page and try again."
        ) from None
    return f"dashboard {deployment_id} {submission}"


def _start_run(deployment_id, body, start=None, zone="UTC"):
    """Create the run, Scheduled at ``start`` (default now), and go to its page.

    ``body``: the rest of a DeploymentFlowRunCreate body. A form submitted again finds the
    run its first submission started instead of starting another. The message gives the
    start in UTC, and in ``zone`` (the form's) too if that is another zone.
    """
    when = start or utcnow()
    body = {
        **body,
        "idempotency_key": _idempotency_key(deployment_id),
        "state": {
            "type": "SCHEDULED",
            "name": "Scheduled",
            "state_details": {"scheduled_time": when.isoformat()},
        },
    }
    run, created = deployments.create_flow_run_from_deployment(
        deployment_id, DeploymentFlowRunCreateSchema().load(body)
    )
    if not created:
        flash(f"This form was already submitted: it started the flow run {run.name!r}.")
    else:
        at = "now" if start is None else f"{when:%Y-%m-%d %H:%M:%S} UTC"
        if start is not None and zone != "UTC":
            at = f"{params.wall_time(when, zone).replace('T', ' ')} {zone} ({at})"
        if run.work_queue_name:
            flash(
                f"Scheduled the flow run {run.name!r} for {at}: an agent polling the work "
                f"queue {run.work_queue_name!r} will start it."
            )
        else:
            flash(
                f"Scheduled the flow run {run.name!r} for {at}, but its deployment has "
                "no work queue: no agent will start it."
            )
    return redirect(url_for("ui.flow_run_page", flow_run_id=run.id), 303)


@bp.post("/deployments/<uuid:deployment_id>/run")
def run_deployment(deployment_id):
    """Quick run: a flow run of the deployment with its default parameters, now."""
    deployments.read_deployment(deployment_id)
    return _start_run(deployment_id, {})


def _custom_run_page(deployment, fields, form, errors, status=200):
    """The form; one sent back with errors keeps its submission id (it started nothing)."""
    return _uncached(
        render(
            "ui/deployment_run.html",
            None,
            status=status,
            deployment=deployment,
            flow=flows.read_flow(deployment.flow_id),
            fields=fields,
            form=form,
            errors=errors,
            submission_field=SUBMISSION_FIELD,
            submission_id=form.get(SUBMISSION_FIELD) or uuid.uuid4(),
            tz=params.zone(form),
        )
    )


@bp.get("/deployments/<uuid:deployment_id>/custom-run")
def custom_run_page(deployment_id):
    """The custom run form, generated from the deployment's parameter schema."""
    deployment = deployments.read_deployment(deployment_id)
    fields = form_fields(deployment.parameter_openapi_schema, deployment.parameters)
    return _custom_run_page(deployment, fields, {}, {})


@bp.post("/deployments/<uuid:deployment_id>/custom-run")
def custom_run(deployment_id):
    """Start a custom run: the form's parameters over the deployment's, an optional name
    and start time (Scheduled then), a wall-clock time in the form's zone ``tz`` (the
    browser's; UTC if absent). Errors are shown next to their fields (422)."""
    deployment = deployments.read_deployment(deployment_id)
    fields = form_fields(deployment.parameter_openapi_schema, deployment.parameters)
    parameters, has_errors = read_parameters(fields, request.form)
    errors = {}
    name = (request.form.get("name") or "").strip()
    if len(name) > RUN_NAME_LENGTH:
        errors["name"] = f"At most {RUN_NAME_LENGTH} characters."
    start = None
    zone = params.zone(request.form)
    try:
        start = params.timestamp(request.form, "start", zone)
    except BadParameter:
        errors["start"] = "Enter a date and time, such as 2026-01-31T13:45."
    if start is not None and start <= utcnow():
        errors["start"] = "Must be in the future; leave it empty to run now."
    if has_errors or errors:
        return _custom_run_page(deployment, fields, request.form, errors, 422)
    body = {"parameters": parameters}
    if name:
        body["name"] = name
    return _start_run(deployment_id, body, start, zone)


@bp.app_template_filter("schedule_words")
def schedule_words(schedule):
    """A stored schedule as one line of text: ``At 09:00 (0 9 * * *), Europe/Berlin``."""
    words, expression = describe(schedule)
    if not schedule:
        return words
    text = f"{words} ({expression})" if expression and words != expression else words
    return f"{text}, {schedule.get('timezone') or 'UTC'}"


# ----------------------------------------------------------------------------- editing

DESCRIPTION_LENGTH = 5000
SCHEDULE_KINDS = {
    "": "No schedule",
    "interval": "Every N seconds (interval)",
    "cron": "Cron expression",
    "rrule": "Recurrence rule (RFC 5545 RRULE)",
}
# The edit form's fields that come from the deployment's API fields, for 422 messages.
_EDIT_FIELDS = {
    "description": "description",
    "tags": "tags",
    "work_queue_name": "work_queue_name",
    "schedule": "schedule_value",
    "parameters": "parameters",
}


def _one_schedule(deployment):
    """The schedule the edit form shows and sets: the deployment's one schedule ({} for
    none). A deployment with several has its schedules changed through the API."""
    rows = deployment.schedule_rows
    return rows[0].schedule if len(rows) == 1 else {}


def _edit_values(deployment):
    """The edit form's values (besides the parameters) for a stored deployment."""
    schedule = _one_schedule(deployment)
    kind = next((k for k in ("interval", "cron", "rrule") if k in schedule), "")
    value = schedule.get(kind, "")
    if kind == "interval":
        seconds = float(value)
        value = str(int(seconds) if seconds.is_integer() else seconds)
    return {
        "description": deployment.description or "",
        "tags": ", ".join(deployment.tags or ()),
        "work_queue_name": deployment.work_queue_name or "",
        "schedule_kind": kind,
        "schedule_value": value,
        "schedule_timezone": schedule.get("timezone") or "UTC",
    }


def _edit_page(deployment, fields, form, errors, status=200):
    return _uncached(
        render(
            "ui/deployment_edit.html",
            None,
            status=status,
            deployment=deployment,
            flow=flows.read_flow(deployment.flow_id),
            fields=fields,
            form=form,
            errors=errors,
            schedule_kinds=SCHEDULE_KINDS,
        )
    )


def _edit_fields(deployment):
    return form_fields(deployment.parameter_openapi_schema, deployment.parameters, merged=False)


def _schedule_from_form(deployment, form, errors):
    """The schedule the edit form sets (None for none), or None with ``errors`` filled."""
    kind = form.get("schedule_kind", "")
    if kind not in SCHEDULE_KINDS:
        errors["schedule_kind"] = f"Choose one of: {', '.join(SCHEDULE_KINDS.values())}."
        return None
    if not kind:
        return None
    value = (form.get("schedule_value") or "").strip()
    timezone = (form.get("schedule_timezone") or "").strip() or "UTC"
    try:
        params.zone({"tz": timezone})
    except BadParameter:
        errors["schedule_timezone"] = (
            f"{timezone[:100]!r} is not a time zone: use an IANA name such as Europe/Berlin."
        )
    if not value:
        errors["schedule_value"] = {
            "interval": "Enter the number of seconds between runs, such as 3600.",
            "cron": "Enter a cron expression, such as 0 9 * * 1-5.",
            "rrule": "Enter a recurrence rule, such as FREQ=WEEKLY;BYDAY=MO.",
        }[kind]
        return None
    schedule = {kind: value, "timezone": timezone}
    stored = _one_schedule(deployment)
    if kind == "interval":
        try:
            schedule["interval"] = float(value)
        except ValueError:
            errors["schedule_value"] = "Enter a number of seconds, such as 3600."
            return None
        if "interval" in stored and stored.get("anchor_date"):
            schedule["anchor_date"] = stored["anchor_date"]
    if kind == "cron" and "cron" in stored:
        if "day_or" in stored:
            schedule["day_or"] = stored["day_or"]
        if timezone == "UTC" and stored.get("timezone") is None:
            # A cron schedule keeps its null zone (UTC), as Prefect 2.7 stores it.
            del schedule["timezone"]
    return schedule


@bp.get("/deployments/<uuid:deployment_id>/edit")
def edit_deployment_page(deployment_id):
    """The edit form: parameters (generated from the parameter schema, as for a custom
    run), description, tags, work queue and schedule, prefilled with the stored values."""
    deployment = deployments.read_deployment(deployment_id)
    return _edit_page(deployment, _edit_fields(deployment), _edit_values(deployment), {})


@bp.post("/deployments/<uuid:deployment_id>/edit")
def edit_deployment(deployment_id):
    """Save the edit form as a deployment update (as ``PATCH /api/deployments/{id}``): the
    parameters the form sets replace the deployment's (an empty field removes one, so the
    flow's default applies). A wrong field is a 422 with its message next to it and what
    was typed kept; saving the same form twice changes nothing more."""
    deployment = deployments.read_deployment(deployment_id)
    fields = _edit_fields(deployment)
    parameters, has_errors = read_parameters(fields, request.form)
    errors = {}
    description = request.form.get("description") or ""
    if len(description) > DESCRIPTION_LENGTH:
        errors["description"] = f"At most {DESCRIPTION_LENGTH:,} characters."
    try:
        tags = params.tags(request.form)
    except BadParameter:
        tags = []
        errors["tags"] = "At most 1,000 characters of comma-separated tags."
    body = {
        "description": description.strip() or None,
        "tags": tags,
        "work_queue_name": (request.form.get("work_queue_name") or "").strip() or None,
        "parameters": parameters,
    }
    if len(deployment.schedule_rows) <= 1:
        body["schedule"] = _schedule_from_form(deployment, request.form, errors)
    changes = {}
    if not errors and not has_errors:
        try:
            changes = DeploymentUpdateSchema().load(body)
        except ValidationError as error:
            for key, text in params.schema_errors(error).items():
                errors[_EDIT_FIELDS.get(key, "parameters")] = text
    if errors or has_errors:
        return _edit_page(deployment, fields, request.form, errors, 422)
    deployments.update_deployment(deployment_id, changes, _settings())
    flash(f"Saved the deployment {deployment.name!r}.")
    return redirect(url_for("ui.deployment_page", deployment_id=deployment_id), 303)
