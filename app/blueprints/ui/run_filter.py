"""The flow runs list's filter: read from the query string, as a filter body for
``app.services.flow_runs``, and as Orion saved-search conditions and back (the runs list,
saved searches and bulk actions all read it)."""

from urllib.parse import urlencode

from flask import url_for

from app.blueprints.ui import params

RUNS_PER_PAGE = 50
# Deepest page the runs list goes to: an offset walks every skipped run (PostgreSQL also joins
# each to its state; SQLite picks the page's rowids first, see app.services.runs.read_page), so
# page 100 (offset 4,950) is the deepest that stays within 300 ms with a million runs (see
# bench/README.md); narrow the filter instead.
MAX_PAGE = 100

RUN_SORTS = {
    "START_TIME_DESC": "Start time, newest first",
    "START_TIME_ASC": "Start time, oldest first",
    "EXPECTED_START_TIME_DESC": "Expected start, newest first",
    "END_TIME_DESC": "End time, unfinished first",
    "NAME_ASC": "Name, A to Z",
    "NAME_DESC": "Name, Z to A",
}


def runs_filter(args):
    """The flow runs list's filter from the query string (or form): ``(choices, filter
    body)``; times without an offset are in the zone ``tz`` (the browser's; UTC if
    absent), the choices hold them in UTC and that zone as ``tz``. The body asks for one
    page of ``RUNS_PER_PAGE`` runs, plus one to tell whether there is a next page."""
    zone = params.zone(args)
    chosen = {
        "flow": params.uuids(args, "flow"),
        "state": params.state_types(args),
        "tags": params.tags(args),
        "name": params.text(args, "name"),
        "tz": zone,
        "start": params.timestamp(args, "start", zone),
        "end": params.timestamp(args, "end", zone),
        "sort": params.one_of(args, "sort", tuple(RUN_SORTS), "START_TIME_DESC"),
        "page": params.integer(args, "page", 1, 1, MAX_PAGE),
    }
    runs = {}
    if chosen["state"]:
        runs["state"] = {"type": {"any_": chosen["state"]}}
    if chosen["tags"]:
        runs["tags"] = {"all_": chosen["tags"]}
    if chosen["name"]:
        runs["name"] = {"like_": chosen["name"]}
    if chosen["start"] or chosen["end"]:
        runs["expected_start_time"] = {"after_": chosen["start"], "before_": chosen["end"]}
    body = {
        "flow_runs": runs,
        "sort": chosen["sort"],
        "limit": RUNS_PER_PAGE + 1,
        "offset": (chosen["page"] - 1) * RUNS_PER_PAGE,
    }
    if chosen["flow"]:
        body["flows"] = {"id": {"any_": chosen["flow"]}}
    return chosen, body


# The runs list's parameters as Orion saved-search conditions: parameter -> (object,
# property, type, operation).
SAVED_CONDITIONS = {
    "flow": ("flow", "id", "uuid", "any"),
    "state": ("flow_run", "state_type", "state", "any"),
    "tags": ("flow_run", "tags", "tag", "all"),
    "name": ("flow_run", "name", "string", "contains"),
    "start": ("flow_run", "expected_start_time", "datetime", "after"),
    "end": ("flow_run", "expected_start_time", "datetime", "before"),
}


def saved_conditions(chosen):
    """The saved-search conditions of a runs list filter (``chosen`` from
    :func:`runs_filter`)."""
    conditions = []
    for key, (obj, prop, kind, operation) in SAVED_CONDITIONS.items():
        value = chosen[key]
        if value:
            conditions.append(
                {
                    "object": obj,
                    "property": prop,
                    "type": kind,
                    "operation": operation,
                    "value": value.isoformat() if kind == "datetime" else value,
                }
            )
    return conditions


def saved_search_url(filters):
    """The runs list's address for a saved search's conditions; conditions this list does
    not filter by (saved by other clients) are left out."""
    keys = {spec: key for key, spec in SAVED_CONDITIONS.items()}
    query = []
    for condition in filters if isinstance(filters, list) else []:
        if not isinstance(condition, dict):
            continue
        key = keys.get(tuple(condition.get(f) for f in ("object", "property", "type", "operation")))
        value = condition.get("value")
        if key is None or value in (None, "", []):
            continue
        if key == "tags" and isinstance(value, list):
            query.append((key, ", ".join(str(v) for v in value)))
        elif isinstance(value, list):
            query.extend((key, str(v)) for v in value)
        else:
            query.append((key, str(value)))
    return url_for("ui.flow_runs_page") + ("?" + urlencode(query) if query else "")
