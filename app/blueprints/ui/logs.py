"""Log records on the flow run and task run pages: the newest ones by level (polled while
the run is active) and the full log as a streamed text download."""

import uuid

from flask import Response, request, stream_with_context, url_for
from markupsafe import Markup, escape

from app.blueprints.ui import params, time_tag
from app.services import dashboard

# Log records shown (the newest); the download has all of them.
LOG_TAIL = 500
LOG_LEVELS = {
    "0": "All levels",
    "10": "DEBUG and above",
    "20": "INFO and above",
    "30": "WARNING and above",
    "40": "ERROR and above",
    "50": "CRITICAL only",
}
_NO_ID = uuid.UUID(int=0)
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def level_name(level):
    """A log level number's name (``"INFO"``), or the number itself."""
    return LEVEL_NAMES.get(level, str(level))


def log_level(args):
    """The ``level`` query parameter: the lowest log level shown (0: all)."""
    return int(params.one_of(args, "level", tuple(LOG_LEVELS), "0"))


def logs_context(flow_run_id, active, task_run_id=None):
    """The template context of a logs panel: the newest ``LOG_TAIL`` records of the flow run
    (of one of its task runs if ``task_run_id``) at the query's ``level`` and above, with
    the names of the task runs that sent them."""
    level = log_level(request.args)
    records, truncated = dashboard.tail_logs(flow_run_id, LOG_TAIL, task_run_id, level)
    task_names = dashboard.task_run_names(r.task_run_id for r in records if r.task_run_id)
    return {
        "logs": records,
        "log_limit": LOG_TAIL,
        "truncated": truncated,
        "level": str(level),
        "levels": LOG_LEVELS,
        "active": active,
        "task_names": task_names,
        "task_url": task_url_prefix(),
        "log_rows": log_rows,
    }


def log_rows(records, task_names, task_url):
    """The logs table's ``<tr>`` of each of ``records`` (oldest first), with the names of
    their task runs (``task_names``: id string to name) linked under ``task_url`` (an address
    less the id).

    Built with one f-string per row rather than in a template: a run page draws 500 of them
    whenever its logs are drawn again, and Jinja's escaped ``{{ }}`` per cell cost most of
    that. Times are :func:`time_tag`'s markup, ids canonical UUID strings; the rest (logger
    name, message, task run name, level names) is escaped.
    """
    task_url = escape(task_url)
    levels = {}  # level number: its row class and cell, escaped once per level
    names = {}
    parts = []
    for log in records:
        level = levels.get(log.level)
        if level is None:
            name = escape(level_name(log.level))
            level = levels[log.level] = (name.lower(), name)
        task = ""
        if log.task_run_id:
            task = names.get(log.task_run_id)
            if task is None:
                task_id = str(log.task_run_id)
                task = names[log.task_run_id] = (
                    f'<a href="{task_url}{task_id}">{escape(task_names.get(task_id, task_id))}</a>'
                )
        parts.append(
            f'\n<tr class="level-{level[0]}"><td>{time_tag(log.timestamp)}</td>'
            f"<td>{level[1]}</td><td>{task}</td><td>{escape(log.name)}</td>"
            f"<td><pre>{escape(log.message)}</pre></td></tr>\n"
        )
    return Markup("".join(parts))


def task_url_prefix():
    """The address of a task run's page less its id: pages that link hundreds of task runs
    append the id instead of building each address (``url_for`` costs ~30 µs a call)."""
    return url_for("ui.task_run_page", task_run_id=_NO_ID)[: -len(str(_NO_ID))]


def _log_lines(records):
    for record in records:
        stamp = record.timestamp.isoformat(timespec="milliseconds")
        task = f" task_run={record.task_run_id}" if record.task_run_id else ""
        yield f"{stamp} {level_name(record.level):<8} {record.name}{task} | {record.message}\n"


def log_download(flow_run_id, task_run_id, filename):
    """The log records (of one task run if ``task_run_id``) at the query's ``level`` and
    above as a text attachment named ``filename``, streamed in batches."""
    level = log_level(request.args)
    records = dashboard.iter_logs(flow_run_id, task_run_id=task_run_id, min_level=level)
    return Response(
        stream_with_context(_log_lines(records)),
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
