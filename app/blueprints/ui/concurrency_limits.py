"""Task concurrency limit pages: limits by tag with the task runs holding their slots;
create or change, free every slot of, and delete a limit."""

from flask import current_app, flash, redirect, request, url_for

from app.blueprints.ui import BadParameter, bp, params, render
from app.services import concurrency_limits, dashboard

LIMITS_PER_PAGE = 200


def _limits_page(status=200, error=None, form=None):
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
