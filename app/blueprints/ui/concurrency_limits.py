"""Concurrency limit pages, on one page: task concurrency limits by tag with the task runs
holding their slots (create or change, free every slot of, delete), and global concurrency
limits (Prefect 2.20's "v2" limits, which flows take with ``concurrency()`` and
``rate_limit()``) with their slots in use after decay (create, edit, free every slot of,
delete). The global limits' forms are checked by the API's schemas, so the rules and
messages are the API's."""

from flask import current_app, flash, redirect, request, url_for

from app.blueprints.ui import BadParameter, bp, params, render
from app.exceptions import ObjectAlreadyExists
from app.schemas.concurrency_limits_v2 import (
    GlobalConcurrencyLimitCreateSchema,
    GlobalConcurrencyLimitUpdateSchema,
)
from app.services import concurrency_limits, dashboard
from app.services import concurrency_limits_v2 as global_limits

LIMITS_PER_PAGE = 200


def _limits_page(status=200, error=None, form=None, global_form=None, global_errors=None):
    limit_list = concurrency_limits.read_limits(LIMITS_PER_PAGE, 0)
    holders = concurrency_limits.active_slots(limit_list)
    return render(
        "ui/concurrency_limits.html",
        None,
        status=status,
        limits=limit_list,
        holders=holders,
        holder_names=dashboard.task_run_names(
            run_id for runs in holders.values() for run_id in runs
        ),
        error=error,
        form=form or {},
        shown=LIMITS_PER_PAGE,
        global_limits=global_limits.read_limits(LIMITS_PER_PAGE, 0),
        global_form=global_form or {"active": True},
        global_errors=global_errors or {},
    )


@bp.get("/concurrency-limits")
def concurrency_limits_page():
    """Task concurrency limits by tag with the task runs holding their slots."""
    return _limits_page()


@bp.post("/concurrency-limits")
def create_concurrency_limit():
    """Create the limit on a tag (or change an existing one's limit)."""
    tag = params.text(request.form, "tag", 255)
    try:
        value = params.integer(request.form, "concurrency_limit", None, 0, 1_000_000)
        if not tag:
            raise BadParameter("tag", "a tag is required.")
        if value is None:
            raise BadParameter("concurrency_limit", "a limit is required.")
    except BadParameter as error:
        return _limits_page(422, str(error), dict(request.form))
    _, created = concurrency_limits.upsert_limit(tag, value)
    flash(f"{'Created' if created else 'Updated'} the limit on tag {tag!r}: {value}.")
    return redirect(url_for("ui.concurrency_limits_page"), 303)


@bp.post("/concurrency-limits/<uuid:limit_id>/reset")
def reset_concurrency_limit(limit_id):
    """Free every slot of a limit."""
    limit = concurrency_limits.read_limit(limit_id)
    concurrency_limits.reset_limit(
        limit.tag, None, current_app.config["TASK_CONCURRENCY_LEASE_SECONDS"]
    )
    flash(f"Freed every slot of the limit on tag {limit.tag!r}.")
    return redirect(url_for("ui.concurrency_limits_page"), 303)


@bp.post("/concurrency-limits/<uuid:limit_id>/delete")
def delete_concurrency_limit(limit_id):
    """Delete a limit."""
    limit = concurrency_limits.read_limit(limit_id)
    concurrency_limits.delete_limit(limit_id)
    flash(f"Deleted the limit on tag {limit.tag!r}.")
    return redirect(url_for("ui.concurrency_limits_page"), 303)


def _global_form(schema):
    """``(values, errors)`` of a global limit's form through an API schema; ``errors`` maps a
    field to its message. An empty slot decay is none (0: a concurrency limit)."""
    form = {
        "name": request.form.get("name", "").strip(),
        "limit": request.form.get("limit", "").strip(),
        "slot_decay_per_second": request.form.get("slot_decay_per_second", "").strip() or "0",
        "active": "active" in request.form,
    }
    return params.load_form(schema, form)


@bp.post("/concurrency-limits/global")
def create_global_limit():
    """Create a global concurrency limit from the form."""
    values, errors = _global_form(GlobalConcurrencyLimitCreateSchema())
    if not errors:
        try:
            global_limits.create_limit(values)
        except ObjectAlreadyExists as error:
            return _limits_page(409, global_form=values, global_errors={"name": str(error)})
        flash(f"Created the global limit {values['name']!r}: {values['limit']} slots.")
        return redirect(url_for("ui.concurrency_limits_page", _anchor="global-h"), 303)
    return _limits_page(422, global_form=values, global_errors=errors)


@bp.route("/concurrency-limits/global/<uuid:limit_id>/edit", methods=["GET", "POST"])
def edit_global_limit(limit_id):
    """Change a global limit's name, slots, slot decay or whether it is active."""
    limit = global_limits.read_limit(limit_id)
    if request.method == "GET":
        form = {
            "name": limit.name,
            "limit": limit.limit,
            "slot_decay_per_second": limit.slot_decay_per_second,
            "active": limit.active,
        }
        return render("ui/global_limit_form.html", None, limit=limit, form=form, errors={})
    values, errors = _global_form(GlobalConcurrencyLimitUpdateSchema())
    if not errors:
        try:
            global_limits.update_limit(limit_id, values)
        except ObjectAlreadyExists as error:
            errors = {"name": str(error)}
    if errors:
        status = 409 if "already exists" in errors.get("name", "") else 422
        return render(
            "ui/global_limit_form.html",
            None,
            status=status,
            limit=limit,
            form=values,
            errors=errors,
        )
    flash(f"Saved the global limit {values['name']!r}.")
    return redirect(url_for("ui.concurrency_limits_page", _anchor="global-h"), 303)


@bp.post("/concurrency-limits/global/<uuid:limit_id>/reset")
def reset_global_limit(limit_id):
    """Free every slot of a global limit."""
    limit = global_limits.read_limit(limit_id)
    global_limits.reset_limit(limit_id)
    flash(f"Freed every slot of the global limit {limit.name!r}.")
    return redirect(url_for("ui.concurrency_limits_page", _anchor="global-h"), 303)


@bp.post("/concurrency-limits/global/<uuid:limit_id>/delete")
def delete_global_limit(limit_id):
    """Delete a global limit."""
    limit = global_limits.read_limit(limit_id)
    global_limits.delete_limit(limit_id)
    flash(f"Deleted the global limit {limit.name!r}.")
    return redirect(url_for("ui.concurrency_limits_page", _anchor="global-h"), 303)
