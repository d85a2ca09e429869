"""How the dashboard shows an artifact (a flow run's page lists its run's artifacts).

- **markdown** (and links, which are markdown): rendered by markdown-it-py with raw HTML off,
  so ``<script>`` in an artifact is text; links only with safe schemes (markdown-it's own
  check); images are not loaded (they would reach other hosts), their text is shown.
- **table**: Prefect 2.20's table data, the JSON text of a list of row objects, a dict of
  columns or a list of row lists, as an HTML table.
- anything else (a result, a type this dashboard does not know): its data as JSON text.
"""

import json

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

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
