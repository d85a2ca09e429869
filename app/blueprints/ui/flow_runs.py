"""Flow run pages: the filtered, sorted and paged list, and a flow run's page with its state
badge, task run timeline and graph, subflows, state history and logs."""

import datetime
import hashlib
import re
from urllib.parse import urlencode

from flask import flash, redirect, request, url_for
from markupsafe import Markup, escape

from app.blueprints.ui import (
    ACTIVE_STATES,
    STATE_GLYPHS,
    BadParameter,
    bp,
    duration,
    here,
    is_fragment_request,
    page_url,
    render,
)
from app.blueprints.ui.graph import radar, radar_members
from app.blueprints.ui.logs import (
    log_download,
    log_level,
    log_rows,
    logs_context,
    task_url_prefix,
)
from app.blueprints.ui.run_filter import (
    MAX_PAGE,
    RUN_SORTS,
    RUNS_PER_PAGE,
    runs_filter,
    saved_search_url,
)
from app.clock import utcnow
from app.schemas.core import estimated_run_time, upstream_task_runs
from app.services import (
    artifacts,
    blocks,
    dashboard,
    flow_runs,
    flows,
    saved_searches,
    states,
)

# Task runs shown on a flow run's page (timeline and graph).
TASK_RUN_LIMIT = 1000
SUBFLOW_LIMIT = 200
ARTIFACT_LIMIT = 100
# Flows offered by the list's flow filter (by name).
FLOW_CHOICES = 500
SAVED_SEARCHES_SHOWN = 50


@bp.get("/flow-runs")
def flow_runs_page():
    """Flow runs filtered by flow, state, tags, name and expected start; sorted and paged.

    The filter lives in the query string: the form's htmx request pushes it into the
    address bar, so the URL is shareable and the back button restores earlier filters.
    """
    chosen, body = runs_filter(request.args)
    runs = flow_runs.read_flow_runs(body)
    has_next = len(runs) > RUNS_PER_PAGE
    runs = runs[:RUNS_PER_PAGE]
    filtered = any(chosen[k] for k in ("flow", "state", "tags", "name", "start", "end"))
    choices = dashboard.flow_choices(FLOW_CHOICES)
    listed = {flow_id for flow_id, _ in choices}
    # A chosen flow beyond the first FLOW_CHOICES by name still shows as selected.
    choices += sorted(
        dashboard.flow_names(f for f in chosen["flow"] if f not in listed).items(),
        key=lambda item: item[1],
    )
    return render(
        "ui/flow_runs.html",
        "ui/_flow_runs_results.html",
        runs=runs,
        chosen=chosen,
        filtered=filtered,
        sorts=RUN_SORTS,
        flow_names=dashboard.flow_names(r.flow_id for r in runs),
        flow_choices=choices,
        prev_url=page_url(chosen["page"] - 1) if chosen["page"] > 1 else None,
        next_url=page_url(chosen["page"] + 1) if has_next and chosen["page"] < MAX_PAGE else None,
        here=here(),
        query=urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "page"]),
        saved=[
            (search, saved_search_url(search.filters))
            for search in saved_searches.read_saved_searches(SAVED_SEARCHES_SHOWN)
        ],
    )


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


def timeline_rows(rows, oob, task_url, now):
    """The timeline's ``<li>`` of each of ``rows`` (``(task run, left %, width %)``, as
    :func:`_timeline` gives them), with ``oob`` (markup) among each row's attributes.

    Built here with one f-string per row rather than in the template: a run of 1,000 task
    runs redraws them at every poll that finds task runs added, and Jinja took two thirds of
    that answer (a dozen escaped ``{{ }}`` per row). The markup is the template's, byte for
    byte: ids ``tl-<id>``, ``data-start``/``data-end`` in ms since the epoch when the run
    started and ended, the bar placed by ``left``/``width`` when given (orion.js places it
    from the data attributes otherwise), titles with the state name and run time (as of
    ``now``). Ids are canonical UUID strings and the times numbers, so only text is escaped:
    the task run's name per row, state types and state names once each.
    """
    task_url = escape(task_url)
    types = {}
    state_names = {}
    parts = []
    for task, left, width in rows:
        state_type = task.state_type or "PENDING"
        names = types.get(state_type)
        if names is None:
            names = types[state_type] = (
                escape(state_type.lower()),
                escape(state_type),
                STATE_GLYPHS.get(state_type, "•"),
                escape(state_type.capitalize()),
            )
        lower, type_, glyph, capitalized = names
        state_name = state_names.get(task.state_name)
        if state_name is None:
            state_name = state_names[task.state_name] = escape(task.state_name)
        if task.start_time is None:
            times = ""
            track = '<span class="muted">not started</span>'
        else:
            times = f' data-start="{int(task.start_time.timestamp() * 1000)}"'
            if task.end_time is not None:
                times += f' data-end="{int(task.end_time.timestamp() * 1000)}"'
            place = "" if left is None else f' style="left: {left}%; width: {width}%"'
            run_time = duration(estimated_run_time(task, now))
            track = (
                f'<span class="tl-bar state-{lower}"{place} title="{state_name}: {run_time}">'
                "</span>"
            )
        parts.append(
            f'\n<li id="tl-{task.id}"{oob}{times}>\n'
            f'  <a class="tl-name" href="{task_url}{task.id}">{escape(task.name)}</a>\n'
            f'  <span class="tl-track">{track}</span>\n'
            f'  <span class="tl-state"><span class="badge state-{lower}" title="State type: '
            f'{type_}"><span aria-hidden="true">{glyph}</span> '
            f"{state_name if task.state_name else capitalized}</span></span>\n"
            "</li>\n"
        )
    return Markup("".join(parts))


# The live sections of a flow run's page, each refreshed by the poll only when its mark
# changed: the run's head (state, actions, details) with its state history, the task runs
# (counts, timeline, graph, artifacts, subflows), and the logs.
LIVE_SECTIONS = ("run", "tasks", "logs")
# When no task run was added and at most this many changed, a poll sends only their rows
# (and the counts, the radar's states, artifacts and subflows) instead of the whole section.
TASK_CHANGES_SENT_ALONE = 100
# Rows updated this long before the newest update the page saw are sent again: a transaction
# that stamped its row before another's but committed after it is not missed.
TASK_CHANGE_MARGIN = datetime.timedelta(seconds=5)
# When at most this many log records arrived, all newer than those shown, a poll appends them.
LOG_RECORDS_SENT_ALONE = 200
_HEX_MARK = re.compile(r"[0-9a-f]{12}")
# The task runs' mark: their count and newest update (µs since the epoch), in hex.
_TASKS_MARK = re.compile(r"([0-9a-f]{1,8})\.([0-9a-f]{1,15})")
# The logs' mark: the level shown, the count of records at that level and the newest one's
# time (µs since the epoch), in hex.
_LOGS_MARK = re.compile(r"([0-9a-f]{1,2})\.([0-9a-f]{1,8})\.([0-9a-f]{1,15})")


def _mark(*parts):
    return hashlib.blake2b(repr(parts).encode(), digest_size=6).hexdigest()


def _micros(when):
    return 0 if when is None else int(when.timestamp() * 1_000_000)


def _from_micros(micros):
    return datetime.datetime.fromtimestamp(micros / 1_000_000, datetime.UTC)


def _live_marks(run, level):
    """A short token per live section that changes when what the section shows changes."""
    count, newest = dashboard.task_runs_mark(run.id)
    log_count, newest_log = dashboard.logs_mark(run.id, level)
    return {
        "run": _mark(run.state_id, run.updated),
        "tasks": f"{count:x}.{_micros(newest):x}",
        "logs": f"{level:x}.{log_count:x}.{_micros(newest_log):x}",
    }


def _since(args):
    """The marks the page's last poll was rendered with (``since``: the sections' marks
    joined by "-"), or {} when absent."""
    value = args.get("since")
    if not value:
        return {}
    parts = value.split("-")
    patterns = {"run": _HEX_MARK, "tasks": _TASKS_MARK, "logs": _LOGS_MARK}
    if len(parts) != len(LIVE_SECTIONS) or not all(
        patterns[name].fullmatch(part) for name, part in zip(LIVE_SECTIONS, parts)
    ):
        raise BadParameter("since", "not marks this page gave out; reload the page.")
    return dict(zip(LIVE_SECTIONS, parts))


def _task_changes(flow_run_id, seen, now_mark):
    """The task runs that changed since the page's tasks mark ``seen``, if the page can take
    them alone (no task run added, a page that shows them all, not too many), else None."""
    seen_count, seen_micros = (int(x, 16) for x in _TASKS_MARK.fullmatch(seen).groups())
    count = int(now_mark.split(".")[0], 16)
    if count != seen_count or count > TASK_RUN_LIMIT or not seen_micros:
        return None
    changed = dashboard.task_runs_of(
        flow_run_id,
        TASK_CHANGES_SENT_ALONE + 1,
        updated_since=_from_micros(seen_micros) - TASK_CHANGE_MARGIN,
    )
    return changed if len(changed) <= TASK_CHANGES_SENT_ALONE else None


def _log_changes(flow_run_id, seen, now_mark):
    """The log records that arrived since the page's logs mark ``seen``, if they can be
    appended to what it shows (same level, a few, every one newer than the newest shown),
    else None."""
    seen_level, seen_count, seen_micros = (int(x, 16) for x in _LOGS_MARK.fullmatch(seen).groups())
    level, count, _ = (int(x, 16) for x in _LOGS_MARK.fullmatch(now_mark).groups())
    added = count - seen_count
    if level != seen_level or not seen_count or not 0 < added <= LOG_RECORDS_SENT_ALONE:
        return None
    records, more = dashboard.tail_logs(
        flow_run_id, added, min_level=level, after=_from_micros(seen_micros)
    )
    # Fewer than arrived: some are stamped before the newest shown (late), so the table is
    # drawn again in time order.
    return records if len(records) == added and not more else None


def _live_context(flow_run_id, since=None):
    """The live part of a flow run's page: the sections whose marks differ from ``since``
    (all of them without it, or when the run itself changed), with what they show. In a
    poll (``since`` given), when no task run was added and only some changed,
    ``task_changes`` holds them instead of the whole list, even when the run changed: the
    end of a run with 1,000 task runs does not redraw its timeline and radar (nor lose the
    radar's zoom and opened groups)."""
    now = utcnow()
    run = flow_runs.read_flow_run(flow_run_id)
    active = run.state_type in ACTIVE_STATES
    level = log_level(request.args)
    marks = _live_marks(run, level)
    since = since or {}
    if since.get("run") == marks["run"]:
        sections = {name for name in LIVE_SECTIONS if since.get(name) != marks[name]}
    else:
        sections = set(LIVE_SECTIONS)
    context = dict(
        run=run,
        now=now,
        active=active,
        sections=sections,
        since="-".join(marks[name] for name in LIVE_SECTIONS),
        live_url=url_for("ui.flow_run_live", flow_run_id=flow_run_id),
        task_url=task_url_prefix(),
        timeline_rows=timeline_rows,
    )
    if "run" in sections:
        context.update(
            flow=flows.read_flow(run.flow_id),
            history=states.read_flow_run_states(flow_run_id),
            infrastructure=blocks.describe_document(run.infrastructure_document_id),
        )
    if "tasks" in sections:
        changes = None
        if since:
            changes = _task_changes(flow_run_id, since["tasks"], marks["tasks"])
        subflows = dashboard.subflow_runs_of(flow_run_id, SUBFLOW_LIMIT)
        context.update(
            task_counts=sorted(dashboard.task_run_state_counts(flow_run_id).items()),
            artifacts=artifacts.artifacts_of_flow_run(flow_run_id, ARTIFACT_LIMIT),
            artifact_limit=ARTIFACT_LIMIT,
            subflows=subflows,
            subflow_flows=dashboard.flow_names(r.flow_id for r in subflows),
        )
        if changes is not None:
            context.update(
                task_changes=[(task, None, None) for task in changes],
                radar_patch=radar_members(changes, subflows),
            )
        else:
            task_list = dashboard.task_runs_of(flow_run_id, TASK_RUN_LIMIT)
            rows, axis_start, axis_end = _timeline(task_list, now)
            context.update(
                task_runs=task_list,
                task_limit=TASK_RUN_LIMIT,
                timeline=rows,
                axis_start=axis_start,
                axis_end=axis_end,
                radar=_radar(task_list, subflows),
            )
    if "logs" in sections:
        records = None
        if "run" not in sections:
            records = _log_changes(flow_run_id, since["logs"], marks["logs"])
        if records is None:
            context.update(logs_context(flow_run_id, active))
        else:
            context.update(
                log_changes=records,
                log_rows=log_rows,
                task_names=dashboard.task_run_names(
                    r.task_run_id for r in records if r.task_run_id
                ),
            )
    return context


def _radar(task_list, subflows):
    return radar(
        task_list, lambda r: [u["id"] for u in upstream_task_runs(r.task_inputs)], subflows
    )


@bp.get("/flow-runs/<uuid:flow_run_id>/radar")
def flow_run_radar(flow_run_id):
    """A flow run's radar alone (its data for the browser to draw): what a subflow node
    opened on its parent's radar loads."""
    run = flow_runs.read_flow_run(flow_run_id)
    return render(
        "ui/page.html",
        "ui/_graph.html",
        title=f"Radar of {run.name}",
        run=run,
        radar=_radar(
            dashboard.task_runs_of(flow_run_id, TASK_RUN_LIMIT),
            dashboard.subflow_runs_of(flow_run_id, SUBFLOW_LIMIT),
        ),
        task_url=task_url_prefix(),
    )


@bp.get("/flow-runs/<uuid:flow_run_id>")
def flow_run_page(flow_run_id):
    """A flow run: state and actions, details, task run timeline and graph, subflows,
    parameters, state history and logs; live while the run is active."""
    return render("ui/flow_run.html", None, **_live_context(flow_run_id))


@bp.get("/flow-runs/<uuid:flow_run_id>/live")
def flow_run_live(flow_run_id):
    """The live part of a flow run's page for its one poll (every 2 s while the run is
    active). ``since`` carries the marks of what the page shows: only the sections that
    changed are rendered, swapped in out of band, so a poll of a run whose 1,000 task runs
    did not move does not redraw them. The fragment of a finished run stops the polling."""
    context = _live_context(flow_run_id, _since(request.args))
    return render(
        "ui/page.html",
        "ui/_flow_run_live.html",
        title=f"Flow run {context['run'].name}",
        out_of_band=is_fragment_request(),
        **context,
    )


@bp.post("/flow-runs/<uuid:flow_run_id>/resume")
def resume_flow_run(flow_run_id):
    """Resume a paused flow run (the resume API's rule: Running, or Scheduled when the pause
    asked to reschedule): first a confirmation, then (``confirm=yes``) the resume, and back
    to the run's page with what orchestration answered."""
    run = flow_runs.read_flow_run(flow_run_id)
    back = url_for("ui.flow_run_page", flow_run_id=flow_run_id)
    if request.form.get("confirm") != "yes":
        return render(
            "ui/page.html",
            "ui/_resume_confirm.html",
            title=f"Resume {run.name}",
            run=run,
            back=back,
        )
    result = flow_runs.resume_flow_run(flow_run_id)
    if result.status.value == "ACCEPT":
        now_in = flow_runs.read_flow_run(flow_run_id).state_name
        flash(f"Resumed flow run {run.name}: it is {now_in} now.")
    else:
        reason = (result.details or {}).get("reason") or result.status.value.lower()
        flash(f"Flow run {run.name} was not resumed: {reason}")
    return redirect(back, 303)


@bp.get("/flow-runs/<uuid:flow_run_id>/state")
def flow_run_state(flow_run_id):
    """The flow run's state badge; it polls itself while the run is active."""
    run = flow_runs.read_flow_run(flow_run_id)
    return render(
        "ui/page.html",
        "ui/_run_state.html",
        title=f"State of {run.name}",
        run=run,
        active=run.state_type in ACTIVE_STATES,
    )


@bp.get("/flow-runs/<uuid:flow_run_id>/logs")
def flow_run_logs(flow_run_id):
    """The newest log records of a flow run, by level; polls while the run is active."""
    run = flow_runs.read_flow_run(flow_run_id)
    return render(
        "ui/page.html",
        "ui/_logs.html",
        title=f"Logs of {run.name}",
        run=run,
        logs_url=url_for("ui.flow_run_logs", flow_run_id=flow_run_id),
        download_url=url_for("ui.flow_run_log_download", flow_run_id=flow_run_id),
        **logs_context(flow_run_id, run.state_type in ACTIVE_STATES),
    )


@bp.get("/flow-runs/<uuid:flow_run_id>/logs.txt")
def flow_run_log_download(flow_run_id):
    """The flow run's full log as text (timestamps in UTC), streamed in batches."""
    flow_runs.read_flow_run(flow_run_id)
    return log_download(flow_run_id, None, f"flow-run-{flow_run_id}.log")
