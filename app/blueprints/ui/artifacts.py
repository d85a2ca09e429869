"""Artifact pages, and how the dashboard shows an artifact.

Pages (at Prefect 2.20's UI addresses, so the links its clients print land here):
``/artifacts``, each key's latest artifact, newest first, filterable by a key substring;
``/artifacts/key/<key>``, a key's latest artifact and its earlier versions;
``/artifacts/artifact/<id>``, one artifact with its run and task run. A flow run's page also
lists its run's artifacts, keyed or not.

How an artifact's content is shown:

- **markdown** (and links, which are markdown): rendered by markdown-it-py with raw HTML off,
  so ``<script>`` in an artifact is text; links only with safe schemes (markdown-it's own
  check); images are not loaded (they would reach other hosts), their text is shown.
- **table**: Prefect 2.20's table data, the JSON text of a list of row objects, a dict of
  columns or a list of row lists, as an HTML table.
- anything else (a result, a type this dashboard does not know): its data as JSON text.
"""

import json

from flask import request
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from app.blueprints.ui import bp, page_url, params, render
from app.blueprints.ui.run_filter import MAX_PAGE
from app.exceptions import ObjectNotFound
from app.services import artifacts, dashboard

ARTIFACTS_PER_PAGE = 50

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")


def _table(data):
    """``(header, rows)`` of Prefect's table data, or None if it is not one."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        header = list(data)
        length = max((len(v) for v in data.values()), default=0)
        rows = [
            [column[i] if i < len(column) else "" for column in data.values()]
            for i in range(length)
        ]
        return header, rows
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        header = list(dict.fromkeys(key for row in data for key in row))
        return header, [[row.get(key, "") for key in header] for row in data]
    if isinstance(data, list) and all(isinstance(row, list) for row in data):
        return None, data
    return None


def _cell(value):
    return escape(value if isinstance(value, str) else json.dumps(value, default=str))


def artifact_html(artifact):
    """The artifact's content as safe HTML."""
    data = artifact.data
    if artifact.type == "markdown" and isinstance(data, str):
        return Markup(f'<div class="markdown">{_markdown.render(data)}</div>')
    if artifact.type == "table":
        table = _table(data)
        if table is not None:
            header, rows = table
            head = (
                "<thead><tr>"
                + "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
                + "</tr></thead>"
                if header
                else ""
            )
            body = "".join(
                "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows
            )
            return Markup(f'<table class="artifact-table">{head}<tbody>{body}</tbody></table>')
    text = data if isinstance(data, str) else json.dumps(data, indent=2, default=str)
    return Markup(f"<pre>{escape(text)}</pre>")


@bp.get("/artifacts")
def artifacts_page():
    """Each key's latest artifact, newest first, filterable by a key substring."""
    key = params.text(request.args, "key")
    page = params.integer(request.args, "page", 1, 1, MAX_PAGE)
    body = {
        "artifacts": {"key": {"like_": key}} if key else {},
        "sort": "CREATED_DESC",
        "limit": ARTIFACTS_PER_PAGE + 1,
        "offset": (page - 1) * ARTIFACTS_PER_PAGE,
    }
    latest = artifacts.read_artifacts(body, latest=True)
    has_next = len(latest) > ARTIFACTS_PER_PAGE
    latest = latest[:ARTIFACTS_PER_PAGE]
    return render(
        "ui/artifacts.html",
        "ui/_artifacts_results.html",
        artifacts=latest,
        key=key,
        versions=artifacts.version_counts([a.key for a in latest]),
        run_names=dashboard.flow_run_names(a.flow_run_id for a in latest),
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if has_next and page < MAX_PAGE else None,
    )


@bp.get("/artifacts/key/<key>")
def artifact_key_page(key):
    """A key's latest artifact, shown, and its versions, newest first."""
    page = params.integer(request.args, "page", 1, 1, MAX_PAGE)
    versions = artifacts.versions_of(key, ARTIFACTS_PER_PAGE + 1, (page - 1) * ARTIFACTS_PER_PAGE)
    if page > 1:
        latest = artifacts.read_latest_artifact(key)
    elif versions:
        latest = versions[0]
    else:
        raise ObjectNotFound(f"No artifact has the key {key!r}.")
    has_next = len(versions) > ARTIFACTS_PER_PAGE
    versions = versions[:ARTIFACTS_PER_PAGE]
    return render(
        "ui/artifact_key.html",
        None,
        key=key,
        latest=latest,
        versions=versions,
        run_names=dashboard.flow_run_names(
            [latest.flow_run_id, *(a.flow_run_id for a in versions)]
        ),
        prev_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if has_next and page < MAX_PAGE else None,
    )


@bp.get("/artifacts/artifact/<uuid:artifact_id>")
def artifact_page(artifact_id):
    """One artifact, shown, with its key, flow run and task run."""
    artifact = artifacts.read_artifact(artifact_id)
    return render(
        "ui/artifact.html",
        None,
        artifact=artifact,
        run_names=dashboard.flow_run_names([artifact.flow_run_id]),
        task_names=dashboard.task_run_names([artifact.task_run_id] if artifact.task_run_id else []),
    )
