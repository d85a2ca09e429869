"""List every path of Prefect 2.7's and 2.20's APIs that Orion does not serve, and every field
of the paths it serves that Orion neither takes nor returns, with the reason.

    .venv/bin/python scripts/compatibility.py            # print docs/compatibility.md's text
    .venv/bin/python scripts/compatibility.py --write    # rewrite docs/compatibility.md
    .venv/bin/python scripts/compatibility.py --check    # exit 1 if the file is out of date

Prefect's side is read from the routers its own server mounts (``API_ROUTERS`` of
``prefect.orion.api.server`` in 2.7, ``prefect.server.api.server`` in 2.20, plus ``/health``),
by each release's venv interpreter (``--prefect-python`` / ``--prefect-220-python``, default
``.venv-prefect-2.7/bin/python`` and ``.venv-prefect-2.20/bin/python``, or the venvs
``$ORION_TEST_PREFECT_2_7`` / ``$ORION_TEST_PREFECT_2_20`` name), so the list follows the real
releases, not a copy. Orion's side is ``/api/openapi.json`` of an app
built in-process on a throw-away SQLite database. A path matches when the method is the same
and the path is the same once parameter names are ignored (``/flows/{id}`` and
``/flows/{flow_id}`` are one path); a trailing slash counts, as Prefect's clients send it.

Each missing path's reason comes from its line's reasons (``REASONS``, ``REASONS_220``: the
first matching prefix); a missing path that no reason covers is listed as such and fails
``--check``, so a new gap cannot go unexplained.

Fields: for each path both serve, the top-level fields of Prefect's request body (its body
model's, or the body parameters' names) and of its response model (a list's items) against
the properties of Orion's request and response schemas. A field Orion does not take is the
worst kind of gap, as a body field it does not know is ignored (a deployment's pull steps
were, once); each needs its reason in ``FIELD_REASONS`` too.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "compatibility.md"

# Run by a Prefect interpreter: [method, path, body fields, response fields] of every route
# its server mounts under /api (a websocket route's method is WEBSOCKET; fields are null
# where the route has no body, or no response model, with fields).
DUMP_PREFECT_ROUTES = """
import json, typing
from {module} import API_ROUTERS

def fields_of(model):
    if typing.get_origin(model) in (list, typing.List):
        (model,) = typing.get_args(model)
    found = getattr(model, "__fields__", None)
    return sorted(field.alias for field in found.values()) if found else None

routes = [["GET", "/health", None, None]]
for router in API_ROUTERS:
    for route in router.routes:
        body = getattr(route, "body_field", None)
        body_fields = fields_of(body.type_) if body is not None else None
        response = getattr(route, "response_model", None)
        response_fields = fields_of(response) if response is not None else None
        methods = getattr(route, "methods", None) or ["WEBSOCKET"]
        routes.extend(
            [method, route.path, body_fields, response_fields] for method in sorted(methods)
        )
print(json.dumps(routes))
"""

# (path prefix, title, why Orion does not serve it); the first matching prefix wins.
REASONS = [
    (
        "/flow_run_notification_policies",
        "Flow run notifications",
        "State-change notifications sent through notification blocks are not built yet.",
    ),
    (
        "/admin/database",
        "Database administration over HTTP",
        (
            "Left out on purpose: `orion db upgrade` creates and migrates the schema and `orion "
            "reset-db` empties it, from the command line on the server's machine; over HTTP one "
            "request could drop every run."
        ),
    ),
    (
        "/admin/settings",
        "Server settings over HTTP",
        (
            "Left out on purpose: the settings include secrets (the database URL with its "
            "password, the API key); the operator reads them where they are set, in the "
            "environment."
        ),
    ),
    (
        "/deployments/{id}/work_queue_check",
        "Work queue check of a deployment",
        (
            "Only Prefect's Vue dashboard calls it (no Prefect 2.7 or 2.20 client or CLI command "
            "does); Orion's deployment page shows the deployment's work queue and its health "
            "itself. Not built yet."
        ),
    ),
    (
        "/task_runs/history",
        "Task run history",
        (
            "Only Prefect's Vue dashboard calls it (no Prefect client or CLI command does); "
            "Orion's dashboard draws its history from `/api/flow_runs/history`. Not built yet."
        ),
    ),
    (
        "/ui/",
        "Endpoints of Prefect's Vue dashboard",
        "Orion's dashboard is server-rendered and computes its views without them.",
    ),
]


# (method, path, "body" or "response", field): why Orion neither takes nor returns it. Keys
# hold Prefect's own path spelling.
FIELD_REASONS = {
    ("POST", "/task_runs/", "body", "id"): (
        "The server chooses a task run's id, as Prefect 2.7's does; no Prefect 2.20 client "
        "sends one (its engine creates task runs without it)."
    ),
}


# The 2.20 line's paths Orion does not serve yet (issue 20 builds them), by prefix.
REASONS_220 = [
    (
        "/automations",
        "Automations and events",
        (
            "Prefect 2.20's event-driven automations (and the events they read) are an "
            "experimental system of their own; Orion's notifications cover state changes. "
            "Not built."
        ),
    ),
    ("/events", "Automations and events", ""),
    (
        "/task_runs/subscriptions/scheduled",
        "Task workers",
        (
            "Prefect 2.20's experimental task scheduling (a task submitted outside a flow, run "
            "by a `prefect.task_server` process) hands task runs to their workers over this "
            "websocket. Orion's server is WSGI (flask under gunicorn) and serves no websockets; "
            "tasks run inside their flow runs. Not built."
        ),
    ),
    ("/templates/validate", "Automations and events", ""),
    *REASONS,
]


def normalise(path):
    """``path`` with parameter names dropped: ``/flows/{id}`` -> ``/flows/{}``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def prefect_routes(python, module):
    """{(method, path): (body fields, response fields)} of a Prefect release's API (its server
    module ``module``), read by its own interpreter; either may be None (see
    ``DUMP_PREFECT_ROUTES``)."""
    done = subprocess.run(
        [python, "-c", DUMP_PREFECT_ROUTES.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PREFECT_HOME": tempfile.mkdtemp()},
    )
    return {
        (method, path): (body, response)
        for method, path, body, response in json.loads(done.stdout)
        if method != "HEAD"
    }


def _properties(document, schema):
    """The property names of an OpenAPI ``schema`` (followed through ``$ref``, a list's items
    and a one-part ``allOf``), or None when it has none."""
    while schema is not None:
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif schema.get("type") == "array" and "items" in schema:
            schema = schema["items"]
        elif len(schema.get("allOf", ())) == 1:
            schema = schema["allOf"][0]
        else:
            properties = schema.get("properties")
            return set(properties) if properties else None
    return None


def _json_schema(content):
    return (content or {}).get("application/json", {}).get("schema")


def orion_routes():
    """{(method, normalised path): (body properties, response properties)} of Orion's
    OpenAPI document, under /api; either may be None (no body, or no JSON response with
    properties: the first of 200 and 201 that has one)."""
    sys.path.insert(0, str(REPO))
    from app import create_app
    from app.db import database

    with tempfile.TemporaryDirectory() as home:
        settings = {
            "HOME": home,
            "DATABASE_URL": f"sqlite:///{home}/orion.db",
            "REDIS_URL": None,
            "API_KEY": None,
        }
        app = create_app(settings)
        document = app.test_client().get("/api/openapi.json").get_json()
        database.close_all()
    routes = {}
    for path, operations in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            body = _json_schema(operation.get("requestBody", {}).get("content"))
            responses = operation.get("responses", {})
            response = next(
                (
                    schema
                    for code in ("200", "201")
                    if (schema := _json_schema(responses.get(code, {}).get("content")))
                ),
                None,
            )
            routes[(method.upper(), normalise(path[len("/api") :]))] = (
                _properties(document, body),
                _properties(document, response),
            )
    return routes


def missing_fields(prefect, ours):
    """[(method, path, "body" or "response", field)] of the paths both serve: the fields of
    Prefect's body and response that Orion's schemas lack (a body Orion does not describe
    lacks them all; a response it does not describe is not compared)."""
    missing = []
    for (method, path), (body, response) in sorted(prefect.items()):
        served = ours.get((method, normalise(path)))
        if served is None:
            continue
        our_body, our_response = served
        for field in body or ():
            if field not in (our_body or ()):
                missing.append((method, path, "body", field))
        if our_response is not None:
            for field in response or ():
                if field not in our_response:
                    missing.append((method, path, "response", field))
    return missing


def render_fields(label, missing):
    """The Markdown of one line's missing fields, each with its reason."""
    lines = [
        "### Fields of served paths",
        "",
        (
            f"Of the request and response fields of the paths Orion serves, Prefect {label}'s "
            f"server has {len(missing)} that Orion neither takes nor returns."
        ),
        "",
    ]
    for method, path, where, field in missing:
        why = FIELD_REASONS.get((method, path, where, field), "No reason recorded: add one.")
        lines.append(f"- `{method} /api{path}`, {where} field `{field}`: {why}")
    if missing:
        lines.append("")
    return lines


def reason_for(path, reasons):
    """The entry of ``reasons`` (index) covering ``path``, or None."""
    for index, (prefix, _, _) in enumerate(reasons):
        if normalise(path).startswith(normalise(prefix)):
            return index
    return None


# The two lines: (label, server module, reasons, interpreter option, variable, default venv).
LINES = (
    (
        "2.7.12",
        "prefect.orion.api.server",
        REASONS,
        "prefect_python",
        "ORION_TEST_PREFECT_2_7",
        ".venv-prefect-2.7",
    ),
    (
        "2.20",
        "prefect.server.api.server",
        REASONS_220,
        "prefect_220_python",
        "ORION_TEST_PREFECT_2_20",
        ".venv-prefect-2.20",
    ),
)


def render_line(label, missing, total, reasons):
    """The Markdown section of one Prefect line: its missing paths grouped by reason."""
    lines = [
        f"## Prefect {label}",
        "",
        (
            f"Of the {total} paths Prefect {label}'s server mounts under `/api`, the "
            f"{len(missing)} below are not served by Orion, grouped by the reason."
        ),
        "",
    ]
    titles = {}
    for _, _, reason in missing:
        title = reasons[reason][1] if reason is not None else None
        titles.setdefault(title, [])
    for title in sorted(titles, key=lambda t: (t is None, t or "")):
        if title is None:
            lines += ["### No reason recorded", "", "Add one to the script's reasons.", ""]
        else:
            why = next(w for _, t, w in reasons if t == title and w)
            lines += [f"### {title}", "", why, ""]
        lines += [
            f"- `{method} /api{path}`"
            for method, path, reason in missing
            if (reasons[reason][1] if reason is not None else None) == title
        ]
        lines.append("")
    return lines


def render(sections):
    """The Markdown of docs/compatibility.md from each line's rendered section."""
    lines = [
        "# Compatibility with Prefect 2's API",
        "",
        "Orion's REST API follows Prefect 2's Orion API 0.8.4 (Prefect 2.7.12), so real Prefect",
        "clients (2.7.12 and 2.20.x) run against it unchanged; `tests/compat` proves that with",
        "the real clients against `orion start` on SQLite and PostgreSQL. Below, per release, the",
        "paths its own server mounts that Orion does not serve, and the fields of the paths it",
        "serves that Orion neither takes nor returns. This list is generated by",
        "`scripts/compatibility.py --write` (from Prefect's own routers and Orion's",
        "`/api/openapi.json`); `tests/test_compatibility_doc.py` fails when it is out of date.",
        "",
    ]
    for section in sections:
        lines += section
    return "\n".join(lines)


def generate(pythons):
    """(Markdown text, missing paths and fields without a reason), ``pythons`` giving each
    line's interpreter by its option name."""
    ours = orion_routes()
    sections, unexplained = [], []
    for label, module, reasons, option, _, _ in LINES:
        prefect = prefect_routes(pythons[option], module)
        missing = [
            (method, path, reason_for(path, reasons))
            for method, path in sorted(prefect)
            if (method, normalise(path)) not in ours
        ]
        missing.sort(key=lambda row: (row[1], row[0]))
        fields = missing_fields(prefect, ours)
        sections.append(render_line(label, missing, len(prefect), reasons))
        sections.append(render_fields(label, fields))
        unexplained += [
            f"{method} /api{path}" for method, path, reason in missing if reason is None
        ]
        unexplained += [
            f"{method} /api{path} {where} field {field}"
            for method, path, where, field in fields
            if (method, path, where, field) not in FIELD_REASONS
        ]
    return render(sections), unexplained


def default_python(variable, venv):
    return str(Path(os.environ.get(variable) or str(REPO / venv)) / "bin" / "python")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for label, _, _, option, variable, venv in LINES:
        parser.add_argument(
            "--" + option.replace("_", "-"),
            default=default_python(variable, venv),
            help=f"the interpreter of a venv with Prefect {label}",
        )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite {DOC.relative_to(REPO)}")
    mode.add_argument(
        "--check", action="store_true", help=f"exit 1 if {DOC.relative_to(REPO)} is out of date"
    )
    args = parser.parse_args(argv)
    text, unexplained = generate(vars(args))
    if args.write:
        DOC.write_text(text)
    elif args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print(
                f"{DOC.relative_to(REPO)} is out of date: run scripts/compatibility.py --write",
                file=sys.stderr,
            )
            return 1
    else:
        sys.stdout.write(text)
    for what in unexplained:
        print(f"no reason recorded for {what}: add one to the script's reasons", file=sys.stderr)
    return 1 if unexplained and (args.check or args.write) else 0


if __name__ == "__main__":
    sys.exit(main())
