"""Saved searches: the runs list's filter saved under a name (as Orion's saved-search
conditions), and deleting one. The runs list shows them."""

from urllib.parse import parse_qsl

from flask import flash, redirect, request, url_for
from werkzeug.datastructures import MultiDict

from app.blueprints.ui import BadParameter, bp, params
from app.blueprints.ui.run_filter import runs_filter, saved_conditions, saved_search_url
from app.services import saved_searches


@bp.post("/saved-searches")
def save_search():
    """Save the runs list's filter (``query``, its query string) under ``name``; a search of
    that name is replaced."""
    name = params.text(request.form, "name", 100)
    if not name:
        raise BadParameter("name", "give the search a name.")
    chosen, _ = runs_filter(MultiDict(parse_qsl(request.form.get("query", ""))))
    conditions = saved_conditions(chosen)
    if not conditions:
        raise BadParameter("query", "the filter is empty: choose what to save first.")
    _, created = saved_searches.upsert_saved_search(name, conditions)
    flash(f"{'Saved' if created else 'Replaced'} the search {name!r}.")
    return redirect(saved_search_url(conditions), 303)


@bp.post("/saved-searches/<uuid:search_id>/delete")
def delete_saved_search(search_id):
    """Delete a saved search."""
    search = saved_searches.read_saved_search(search_id)
    saved_searches.delete_saved_search(search_id)
    flash(f"Deleted the saved search {search.name!r}.")
    return redirect(url_for("ui.flow_runs_page"), 303)
