"""The dashboard's pages and fragments (see the package docstring for the conventions)."""
import datetime
import json
from urllib.parse import parse_qsl, urlencode

from flask import (
    Response,
    current_app,
    flash,
    make_response,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from werkzeug.datastructures import MultiDict

from app.blueprints.ui import ACTIVE_STATES, BadParameter, bp, is_fragment_request, render
from app.blueprints.ui import params
from app.blueprints.ui.graph import layout
from app.models import utcnow
from app.schemas.core import upstream_task_runs
from app.services import (
    bulk,
    concurrency_limits,
    dashboard,
    deployments,
    flow_runs,
    flows,
    rollups,
    saved_searches,
    states,
    task_runs,
    work_queues,
)

# How many rows each dashboard list shows.
WIDGET_ROWS = 10
RUNS_PER_PAGE = 50
# Deepest page the runs list goes to: an offset walks (and joins) every skipped run, so page
# 100 (offset 4,950) is the deepest that stays within 300 ms with a million runs (see
# bench/README.md); narrow the filter instead.
MAX_PAGE = 100
# Task runs shown on a flow run's page (timeline and graph).
TASK_RUN_LIMIT = 1000
SUBFLOW_LIMIT = 200
# Log records shown (the newest); the download has all of them.
LOG_TAIL = 500
FLOW_CHOICES = 500
FLOWS_PER_PAGE = 50
LIMITS_PER_PAGE = 200
SAVED_SEARCHES_SHOWN = 50
DEPLOYMENTS_SHOWN = 100

WINDOWS = {"hour": datetime.timedelta(hours=1), "day": datetime.timedelta(days=1),
           "week": datetime.timedelta(days=7)}
LONGEST_WINDOW = datetime.timedelta(days=366)
HISTORY_BUCKETS = 48
# Queues the dashboard's health widget considers (by name); it lists the unhealthy first.
QUEUES_CHECKED = 100

RUN_SORTS = {
    "START_TIME_DESC": "Start time, newest first",
    "START_TIME_ASC": "Start time, oldest first",
    "EXPECTED_START_TIME_DESC": "Expected start, newest first",
    "END_TIME_DESC": "End time, unfinished first",
    "NAME_ASC": "Name, A to Z",
    "NAME_DESC": "Name, Z to A",
}
LOG_LEVELS = {"0": "All levels", "10": "DEBUG and above", "20": "INFO and above",
              "30": "WARNING and above", "40": "ERROR and above", "50": "CRITICAL only"}
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def level_name(level):
    """A log level number's name (``"INFO"``), or the number itself."""
    return LEVEL_NAMES.get(level, str(level))


# ----------------------------------------------------------------------------- dashboard


def _window(args, now):
    """The dashboard's time window from the query: ``(key, start, end)``."""
    key = params.one_of(args, "window", ("hour", "day", "week", "custom"), "day")
    if key != "custom":
        return key, now - WINDOWS[key], now
    start, end = params.timestamp(args, "start"), params.timestamp(args, "end")
    if start is None or end is None:
        raise BadParameter("window", "a custom window needs both a start and an end.")
    if end <= start:
        raise BadParameter("end", "must be after the start.")
    if end - start > LONGEST_WINDOW:
        raise BadParameter("end", "a window may span at most 366 days.")
    return key, start, end


def _history_chart(start, end, now):
    """The run history of the window as uPlot's columns: bucket start times (epoch seconds),
    one count series per state type present, and the mean run time (seconds) of each
    bucket's runs (None for an empty bucket); plus ``counts``, the window's runs by state
    type (the buckets cover the window, so the "runs by state" widget needs no query of its
    own), and ``as_of`` / ``live`` when part of the figures came from the hourly
    rollup (see ``app.services.rollups``)."""
    history = rollups.run_history(start, end, HISTORY_BUCKETS, now)
    buckets = history["buckets"]
    present = sorted({state for b in buckets for state in b["counts"]})
    series = {state_type: [b["counts"].get(state_type, 0) for b in buckets]
              for state_type in present}
    durations = []
    for bucket in buckets:
        runs = sum(bucket["counts"].values())
        durations.append(round(bucket["run_time"] / runs, 3) if runs else None)
    return {
        "interval": history["interval"],
        "counts": {state_type: sum(counts) for state_type, counts in series.items()},
        "as_of": history["as_of"],
        "live": history["live"],
        "times": [int(b["start"].timestamp()) for b in buckets],
        "series": [{"state": state_type, "counts": series[state_type]} for state_type in present],
        "durations": durations,
    }


@bp.get("/")
def dashboard_page():
    """Counts by state, the run history chart, late, failed and upcoming runs, busy limits."""
    now = utcnow()
    window, start, end = _window(request.args, now)
    chart = _history_chart(start, end, now)
    counts = chart.pop("counts")
    as_of, live = chart.pop("as_of"), chart.pop("live")
    late = dashboard.late_runs(WIDGET_ROWS, now)
    failed = dashboard.failed_runs(start, end, WIDGET_ROWS)
    upcoming = dashboard.upcoming_runs(WIDGET_ROWS, now)
    names = dashboard.flow_names(r.flow_id for r in late + failed + upcoming)
    queues = work_queues.read_work_queues({"sort": "NAME_ASC", "limit": QUEUES_CHECKED,
                                           "offset": 0})
    health = work_queues.queue_health(queues, now)
    unhealthy = [q for q in queues if not q.is_paused and not health[str(q.id)]["healthy"]]
    return render(
        "ui/dashboard.html", "ui/_dashboard.html",
        window=window, start=start, end=end, now=now, counts=counts,
        total=sum(counts.values()), chart=chart, as_of=as_of, live=live,
        late=late, failed=failed, upcoming=upcoming, flow_names=names,
        deployment_names=dashboard.deployment_names(r.deployment_id for r in upcoming),
        busy_limits=dashboard.busy_concurrency_limits(WIDGET_ROWS, now),
        queues=sorted(queues, key=lambda q: (q.is_paused, health[str(q.id)]["healthy"]))[
            :WIDGET_ROWS],
        queue_health=health, queue_count=len(queues), unhealthy_count=len(unhealthy),
        paused_count=sum(1 for q in queues if q.is_paused), queues_checked=QUEUES_CHECKED,
        custom_start=request.args.get("start", ""), custom_end=request.args.get("end", ""),
    )


# ----------------------------------------------------------------------------- flow runs


def _runs_filter(args):
    """The flow runs list's filter from the query string: ``(choices, filter body)``."""
    chosen = {
        "flow": params.uuids(args, "flow"),
        "state": params.state_types(args),
        "tags": params.tags(args),
        "name": params.text(args, "name"),
        "start": params.timestamp(args, "start"),
        "end": params.timestamp(args, "end"),
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
    body = {"flow_runs": runs, "sort": chosen["sort"],
            "limit": RUNS_PER_PAGE + 1, "offset": (chosen["page"] - 1) * RUNS_PER_PAGE}
    if chosen["flow"]:
        body["flows"] = {"id": {"any_": chosen["flow"]}}
    return chosen, body


def _page_url(page):
    """This list's address with another page number."""
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
    query.append(("page", str(page)))
    return request.path + "?" + urlencode(query)


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


def _conditions(chosen):
    """The saved-search conditions of a runs list filter (see ``_runs_filter``)."""
    conditions = []
    for key, (obj, prop, kind, operation) in SAVED_CONDITIONS.items():
        value = chosen[key]
        if value:
            conditions.append({"object": obj, "property": prop, "type": kind,
                               "operation": operation,
                               "value": value.isoformat() if kind == "datetime" else value})
    return conditions


def _saved_search_url(filters):
    """The runs list's address for a saved search's conditions; conditions this list does
    not filter by (saved by other clients) are left out."""
    keys = {spec: key for key, spec in SAVED_CONDITIONS.items()}
    query = []
    for condition in filters if isinstance(filters, list) else []:
        if not isinstance(condition, dict):
            continue
        key = keys.get(tuple(condition.get(f) for f in ("object", "property", "type",
                                                        "operation")))
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


@bp.get("/flow-runs")
def flow_runs_page():
    """Flow runs filtered by flow, state, tags, name and expected start; sorted and paged.

    The filter lives in the query string: the form's htmx request pushes it into the
    address bar, so the URL is shareable and the back button restores earlier filters.
    """
    chosen, body = _runs_filter(request.args)
    runs = flow_runs.read_flow_runs(body)
    has_next = len(runs) > RUNS_PER_PAGE
    runs = runs[:RUNS_PER_PAGE]
    filtered = any(chosen[k] for k in ("flow", "state", "tags", "name", "start", "end"))
    choices = dashboard.flow_choices(FLOW_CHOICES)
    listed = {flow_id for flow_id, _ in choices}
    # A chosen flow beyond the first FLOW_CHOICES by name still shows as selected.
    choices += sorted(dashboard.flow_names(f for f in chosen["flow"] if f not in listed).items(),
                      key=lambda item: item[1])
    return render(
        "ui/flow_runs.html", "ui/_flow_runs_results.html",
        runs=runs, chosen=chosen, filtered=filtered, sorts=RUN_SORTS,
        flow_names=dashboard.flow_names(r.flow_id for r in runs),
        flow_choices=choices,
        prev_url=_page_url(chosen["page"] - 1) if chosen["page"] > 1 else None,
        next_url=_page_url(chosen["page"] + 1) if has_next and chosen["page"] < MAX_PAGE else None,
        here=request.full_path.rstrip("?"),
        query=urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "page"]),
        saved=[(search, _saved_search_url(search.filters)) for search in
               saved_searches.read_saved_searches(SAVED_SEARCHES_SHOWN)],
    )


@bp.post("/saved-searches")
def save_search():
    """Save the runs list's filter (``query``, its query string) under ``name``; a search of
    that name is replaced."""
    name = params.text(request.form, "name", 100)
    if not name:
        raise BadParameter("name", "give the search a name.")
    chosen, _ = _runs_filter(MultiDict(parse_qsl(request.form.get("query", ""))))
    conditions = _conditions(chosen)
    if not conditions:
        raise BadParameter("query", "the filter is empty: choose what to save first.")
    _, created = saved_searches.upsert_saved_search(name, conditions)
    flash(f"{'Saved' if created else 'Replaced'} the search {name!r}.")
    return redirect(_saved_search_url(conditions), 303)


@bp.post("/saved-searches/<uuid:search_id>/delete")
def delete_saved_search(search_id):
    """Delete a saved search."""
    search = saved_searches.read_saved_search(search_id)
    saved_searches.delete_saved_search(search_id)
    flash(f"Deleted the saved search {search.name!r}.")
    return redirect(url_for("ui.flow_runs_page"), 303)


def _local_path(value, default):
    """``value`` if it is a path on this site, else ``default`` (no open redirects)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


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
    others = sorted(((count, label) for label, count in tally.items() if label != bulk.DONE),
                    reverse=True)
    if others:
        message += f" Not {past.lower()}: " + "; ".join(
            f"{count:,} {label}" for count, label in others) + "."
    return message


def _read_tally(value):
    """The running tally a whole-filter action carries between its batches."""
    try:
        tally = json.loads(value or "{}")
    except ValueError:
        tally = None
    if not isinstance(tally, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in tally.items()):
        raise BadParameter("tally", "expected the counts of a bulk action in progress.")
    return tally


def _filter_scope(query):
    """The runs list filter of ``query`` (a query string) as a filter body without paging,
    and a description of it for the confirmation."""
    chosen, body = _runs_filter(MultiDict(parse_qsl(query)))
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
    back = _local_path(request.form.get("next"), url_for("ui.flow_runs_page"))
    confirm = request.form.get("confirm") == "yes"
    label = BULK_ACTIONS[action][0]
    if scope == "filter":
        query = request.form.get("query", "")
        body, description = _filter_scope(query)
        if not confirm:
            as_of = utcnow()
            return render("ui/bulk_confirm.html", "ui/_bulk_confirm.html", action=action,
                          label=label, scope=scope, count=bulk.count_matching(body, as_of),
                          query=query, as_of=as_of.isoformat(), description=description,
                          back=back)
        as_of = params.timestamp(request.form, "as_of")
        if as_of is None:
            raise BadParameter("as_of", "the confirmation's time is missing.")
        after = (params.uuids(request.form, "after", most=1) or [None])[0]
        total = params.integer(request.form, "total", 0, 0, 10 ** 12)
        ids = bulk.next_batch(body, as_of, after)
        tally = _tally(bulk.ACTIONS[action](ids).values(),
                       _read_tally(request.form.get("tally")))
        if len(ids) < bulk.BATCH_SIZE:
            return _finish_bulk(action, tally, back)
        return render("ui/page.html", "ui/_bulk_progress.html", title=f"{label} flow runs",
                      action=action, label=label, query=query, as_of=as_of.isoformat(),
                      after=ids[-1], tally=json.dumps(tally), total=total,
                      processed=sum(tally.values()), back=back)
    ids = params.uuids(request.form, "run", most=RUNS_PER_PAGE * 4)
    if not ids:
        raise BadParameter("run", "select at least one flow run first.")
    if not confirm:
        return render("ui/bulk_confirm.html", "ui/_bulk_confirm.html", action=action,
                      label=label, scope=scope, count=len(ids), ids=ids, back=back)
    return _finish_bulk(action, _tally(bulk.ACTIONS[action](ids).values()), back)


def _timeline(task_list, now):
    """Bars of the task runs on a common time axis: ``(rows, axis start, axis end)``, each
    row ``(run, left %, width %)``, or None for a run that has not started."""
    starts = [r.start_time for r in task_list if r.start_time]
    if not starts:
        return [(run, None, None) for run in task_list], None, None
    axis_start = min(starts)
    axis_end = max([r.end_time or now for r in task_list if r.start_time] + [axis_start])
    span = max((axis_end - axis_start).total_seconds(), 1e-3)
    rows = []
    for run in task_list:
        if run.start_time is None:
            rows.append((run, None, None))
            continue
        left = (run.start_time - axis_start).total_seconds() / span * 100
        width = ((run.end_time or now) - run.start_time).total_seconds() / span * 100
        rows.append((run, round(left, 3), round(max(width, 0.4), 3)))
    return rows, axis_start, axis_end


def _log_level(args):
    return int(params.one_of(args, "level", tuple(LOG_LEVELS), "0"))


def _logs_context(flow_run_id, active, task_run_id=None):
    level = _log_level(request.args)
    records, truncated = dashboard.tail_logs(flow_run_id, LOG_TAIL, task_run_id, level)
    return {"logs": records, "truncated": truncated, "level": str(level),
            "levels": LOG_LEVELS, "level_name": level_name, "active": active}


@bp.get("/flow-runs/<uuid:flow_run_id>")
def flow_run_page(flow_run_id):
    """A flow run: state, details, task run timeline and graph, subflows, parameters,
    state history and logs."""
    now = utcnow()
    run = flow_runs.read_flow_run(flow_run_id)
    task_list = dashboard.task_runs_of(flow_run_id, TASK_RUN_LIMIT)
    rows, axis_start, axis_end = _timeline(task_list, now)
    active = run.state_type in ACTIVE_STATES
    return render(
        "ui/flow_run.html", None,
        run=run, now=now,
        flow=flows.read_flow(run.flow_id),
        task_runs=task_list, task_limit=TASK_RUN_LIMIT, timeline=rows,
        axis_start=axis_start, axis_end=axis_end,
        graph=layout(task_list, lambda r: [u["id"] for u in upstream_task_runs(r.task_inputs)]),
        subflows=dashboard.subflow_runs_of(flow_run_id, SUBFLOW_LIMIT),
        history=states.read_flow_run_states(flow_run_id),
        **_logs_context(flow_run_id, active),
    )


@bp.get("/flow-runs/<uuid:flow_run_id>/state")
def flow_run_state(flow_run_id):
    """The flow run's state badge; it polls itself while the run is active."""
    run = flow_runs.read_flow_run(flow_run_id)
    return render("ui/page.html", "ui/_run_state.html", title=f"State of {run.name}",
                  run=run, active=run.state_type in ACTIVE_STATES)


@bp.get("/flow-runs/<uuid:flow_run_id>/logs")
def flow_run_logs(flow_run_id):
    """The newest log records of a flow run, by level; polls while the run is active."""
    run = flow_runs.read_flow_run(flow_run_id)
    return render("ui/page.html", "ui/_logs.html", title=f"Logs of {run.name}", run=run,
                  logs_url=url_for("ui.flow_run_logs", flow_run_id=flow_run_id),
                  download_url=url_for("ui.flow_run_log_download", flow_run_id=flow_run_id),
                  **_logs_context(flow_run_id, run.state_type in ACTIVE_STATES))


def _log_lines(records):
    for record in records:
        stamp = record.timestamp.isoformat(timespec="milliseconds")
        task = f" task_run={record.task_run_id}" if record.task_run_id else ""
        yield f"{stamp} {level_name(record.level):<8} {record.name}{task} | {record.message}\n"


def _log_download(flow_run_id, task_run_id, filename):
    level = _log_level(request.args)
    records = dashboard.iter_logs(flow_run_id, task_run_id=task_run_id, min_level=level)
    return Response(stream_with_context(_log_lines(records)), mimetype="text/plain",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/flow-runs/<uuid:flow_run_id>/logs.txt")
def flow_run_log_download(flow_run_id):
    """The flow run's full log as text (timestamps in UTC), streamed in batches."""
    flow_runs.read_flow_run(flow_run_id)
    return _log_download(flow_run_id, None, f"flow-run-{flow_run_id}.log")


# ----------------------------------------------------------------------------- task runs


@bp.get("/task-runs/<uuid:task_run_id>")
def task_run_page(task_run_id):
    """A task run: states, inputs, cache key, result reference and logs."""
    run = task_runs.read_task_run(task_run_id)
    active = run.state_type in ACTIVE_STATES
    return render(
        "ui/task_run.html", None, run=run,
        flow_run=flow_runs.read_flow_run(run.flow_run_id),
        history=states.read_task_run_states(task_run_id),
        logs_url=url_for("ui.task_run_logs", task_run_id=task_run_id),
        download_url=url_for("ui.task_run_log_download", task_run_id=task_run_id),
        **_logs_context(run.flow_run_id, active, str(task_run_id)),
    )


@bp.get("/task-runs/<uuid:task_run_id>/logs")
def task_run_logs(task_run_id):
    """The newest log records of a task run, by level; polls while the run is active."""
    run = task_runs.read_task_run(task_run_id)
    return render("ui/page.html", "ui/_logs.html", title=f"Logs of {run.name}", run=run,
                  logs_url=url_for("ui.task_run_logs", task_run_id=task_run_id),
                  download_url=url_for("ui.task_run_log_download", task_run_id=task_run_id),
                  **_logs_context(run.flow_run_id, run.state_type in ACTIVE_STATES,
                                  str(task_run_id)))


@bp.get("/task-runs/<uuid:task_run_id>/logs.txt")
def task_run_log_download(task_run_id):
    """The task run's full log as text (timestamps in UTC), streamed in batches."""
    run = task_runs.read_task_run(task_run_id)
    return _log_download(run.flow_run_id, str(task_run_id), f"task-run-{task_run_id}.log")


# ----------------------------------------------------------------------------- flows


@bp.get("/flows")
def flows_page():
    """Flows by name (filterable by a name substring) with their runs of the last day."""
    name = params.text(request.args, "name")
    page = params.integer(request.args, "page", 1, 1, MAX_PAGE)
    body = {"flows": {"name": {"like_": name}} if name else {}, "sort": "NAME_ASC",
            "limit": FLOWS_PER_PAGE + 1, "offset": (page - 1) * FLOWS_PER_PAGE}
    flow_list = flows.read_flows(body)
    has_next = len(flow_list) > FLOWS_PER_PAGE
    flow_list = flow_list[:FLOWS_PER_PAGE]
    now = utcnow()
    return render(
        "ui/flows.html", "ui/_flows_results.html", flows=flow_list, name=name,
        activity=dashboard.run_counts_by_flow([f.id for f in flow_list],
                                              now - datetime.timedelta(days=1), now),
        prev_url=_page_url(page - 1) if page > 1 else None,
        next_url=_page_url(page + 1) if has_next and page < MAX_PAGE else None,
    )


@bp.get("/flows/<uuid:flow_id>")
def flow_page(flow_id):
    """A flow and its most recent runs."""
    flow = flows.read_flow(flow_id)
    runs = flow_runs.read_flow_runs({"flows": {"id": {"any_": [str(flow_id)]}},
                                     "sort": "START_TIME_DESC", "limit": RUNS_PER_PAGE})
    now = utcnow()
    flow_deployments = deployments.read_deployments(
        {"flows": {"id": {"any_": [str(flow_id)]}}, "sort": "NAME_ASC",
         "limit": DEPLOYMENTS_SHOWN})
    return render("ui/flow.html", None, flow=flow, runs=runs, deployments=flow_deployments,
                  deployments_shown=DEPLOYMENTS_SHOWN,
                  activity=dashboard.run_counts_by_flow(
                      [flow.id], now - datetime.timedelta(days=1), now)[str(flow.id)],
                  flow_names={str(flow.id): flow.name},
                  all_runs_url=url_for("ui.flow_runs_page", flow=str(flow_id)))


# ----------------------------------------------------------------------------- limits


def _limits_page(status=200, error=None, form=None):
    limit_list = concurrency_limits.read_limits(LIMITS_PER_PAGE, 0)
    holders = concurrency_limits.active_slots(limit_list)
    return render("ui/concurrency_limits.html", None, status=status,
                  limits=limit_list, holders=holders,
                  holder_names=dashboard.task_run_names(
                      run_id for runs in holders.values() for run_id in runs),
                  error=error, form=form or {}, shown=LIMITS_PER_PAGE)


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
    concurrency_limits.reset_limit(limit.tag, None,
                                   current_app.config["TASK_CONCURRENCY_LEASE_SECONDS"])
    flash(f"Freed every slot of the limit on tag {limit.tag!r}.")
    return redirect(url_for("ui.concurrency_limits_page"), 303)


@bp.post("/concurrency-limits/<uuid:limit_id>/delete")
def delete_concurrency_limit(limit_id):
    """Delete a limit."""
    limit = concurrency_limits.read_limit(limit_id)
    concurrency_limits.delete_limit(limit_id)
    flash(f"Deleted the limit on tag {limit.tag!r}.")
    return redirect(url_for("ui.concurrency_limits_page"), 303)
