"""Bulk actions on flow runs: cancel, retry or delete a selection or every run the runs
list's filter matches, after a confirmation with the exact count."""

import json
from urllib.parse import parse_qsl

from flask import flash, make_response, redirect, request, url_for
from werkzeug.datastructures import MultiDict

from app.blueprints.ui import BadParameter, bp, is_fragment_request, local_path, params, render
from app.blueprints.ui.run_filter import RUNS_PER_PAGE, runs_filter
from app.clock import utcnow
from app.services import bulk, dashboard

# action -> (verb, past tense)
BULK_ACTIONS = {
    "cancel": ("Cancel", "Cancelled"),
    "retry": ("Retry", "Retried"),
    "delete": ("Delete", "Deleted"),
}
BULK_SCOPES = ("selection", "filter")


def _tally(outcomes, tally=None):
    """Outcome labels counted into ``{label: count}`` (added to ``tally`` if given)."""
    tally = dict(tally or {})
    for outcome in outcomes:
        tally[outcome] = tally.get(outcome, 0) + 1
    return tally


def _bulk_message(action, tally):
    """``"Retried 3 of 5 flow runs. Not retried: 2 not failed or crashed."``"""
    past = BULK_ACTIONS[action][1]
    total = sum(tally.values())
    plural = "s" if total != 1 else ""
    message = f"{past} {tally.get(bulk.DONE, 0):,} of {total:,} flow run{plural}."
    others = sorted(
        ((count, label) for label, count in tally.items() if label != bulk.DONE), reverse=True
    )
    if others:
        message += (
            f" Not {past.lower()}: "
            + "; ".join(f"{count:,} {label}" for count, label in others)
            + "."
        )
    return message


def _read_tally(value):
    """The running tally a whole-filter action carries between its batches."""
    try:
        tally = json.loads(value or "{}")
    except ValueError:
        tally = None
    if not isinstance(tally, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in tally.items()
    ):
        raise BadParameter("tally", "expected the counts of a bulk action in progress.")
    return tally


def _filter_scope(query):
    """The runs list filter of ``query`` (a query string) as a filter body without paging,
    and a description of it for the confirmation."""
    chosen, body = runs_filter(MultiDict(parse_qsl(query)))
    body = {key: value for key, value in body.items() if key in ("flows", "flow_runs")}
    parts = []
    if chosen["flow"]:
        names = dashboard.flow_names(chosen["flow"])
        parts.append("flow " + " or ".join(names.get(f, f) for f in chosen["flow"]))
    if chosen["state"]:
        parts.append("state " + " or ".join(s.capitalize() for s in chosen["state"]))
    if chosen["tags"]:
        parts.append("tags " + ", ".join(chosen["tags"]))
    if chosen["name"]:
        parts.append(f"name containing {chosen['name']!r}")
    if chosen["start"]:
        parts.append(f"expected from {chosen['start']:%Y-%m-%d %H:%M:%S} UTC")
    if chosen["end"]:
        parts.append(f"expected until {chosen['end']:%Y-%m-%d %H:%M:%S} UTC")
    return body, "; ".join(parts)


def _finish_bulk(action, tally, back):
    flash(_bulk_message(action, tally))
    if is_fragment_request():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = back
        return response
    return redirect(back, 303)


@bp.post("/flow-runs/bulk")
def bulk_flow_runs():
    """Cancel, retry or delete flow runs: the selected ones (``run``), or every run the
    list's filter matches (``scope=filter`` with the list's ``query``).

    First a confirmation showing the exact count; then (``confirm=yes``) the action, and back
    to the list with a message counting what was done and why the rest was not. A selection
    is handled in one request. A whole filter is walked in batches of ``bulk.BATCH_SIZE``,
    one per request: each answers with a progress panel that posts the next batch (htmx
    does so by itself; without JavaScript it is a button), carrying the cursor and the
    tally, so no request grows with the size of the filter.
    """
    action = params.one_of(request.form, "action", tuple(BULK_ACTIONS), None)
    scope = params.one_of(request.form, "scope", BULK_SCOPES, "selection")
    back = local_path(request.form.get("next"), url_for("ui.flow_runs_page"))
    confirm = request.form.get("confirm") == "yes"
    label = BULK_ACTIONS[action][0]
    if scope == "filter":
        query = request.form.get("query", "")
        body, description = _filter_scope(query)
        if not confirm:
            as_of = utcnow()
            return render(
                "ui/bulk_confirm.html",
                "ui/_bulk_confirm.html",
                action=action,
                label=label,
                scope=scope,
                count=bulk.count_matching(body, as_of),
                query=query,
                as_of=as_of.isoformat(),
                description=description,
                back=back,
            )
        as_of = params.timestamp(request.form, "as_of")
        if as_of is None:
            raise BadParameter("as_of", "the confirmation's time is missing.")
        after = (params.uuids(request.form, "after", most=1) or [None])[0]
        total = params.integer(request.form, "total", 0, 0, 10**12)
        ids = bulk.next_batch(body, as_of, after)
        tally = _tally(bulk.ACTIONS[action](ids).values(), _read_tally(request.form.get("tally")))
        if len(ids) < bulk.BATCH_SIZE:
            return _finish_bulk(action, tally, back)
        return render(
            "ui/page.html",
            "ui/_bulk_progress.html",
            title=f"{label} flow runs",
            action=action,
            label=label,
            query=query,
            as_of=as_of.isoformat(),
            after=ids[-1],
            tally=json.dumps(tally),
            total=total,
            processed=sum(tally.values()),
            back=back,
        )
    ids = params.uuids(request.form, "run", most=RUNS_PER_PAGE * 4)
    if not ids:
        raise BadParameter("run", "select at least one flow run first.")
    if not confirm:
        return render(
            "ui/bulk_confirm.html",
            "ui/_bulk_confirm.html",
            action=action,
            label=label,
            scope=scope,
            count=len(ids),
            ids=ids,
            back=back,
        )
    return _finish_bulk(action, _tally(bulk.ACTIONS[action](ids).values()), back)
