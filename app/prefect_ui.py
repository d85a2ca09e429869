"""Prefect 2's own web UI, served for Orion: ``orion prefect-ui``.

Users moving from Prefect 2 know its UI; its wheel ships the built app (Prefect 2.7:
``prefect/orion/ui/``, Prefect 2.20: ``prefect/server/ui/``). This serves that folder the way
Prefect's server does (``create_ui_app`` of ``prefect.orion.api.server`` and
``prefect.server.api.server``): its files, any other path answered with ``index.html`` (the
app routes in the browser), and ``GET /ui-settings`` telling the app where the API is
(``{"api_url": ..., "csrf_enabled": false, "flags": [...]}``: no CSRF token is needed, and the
flags are those Prefect's own server of that release sends by default; Prefect 2.7's UI reads
only the first and last).

Prefect 2.20's build names its files under a placeholder base path
(``/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER``) that its server replaces with the path the UI
is served at; here it is replaced, in the files that carry it, with ``base_path``. Prefect
2.7's build names its assets by absolute paths (``/assets/...``) and routes from ``/``.

Prefect 2.7's build routes from paths Orion's own dashboard also uses, so it is served from
an origin of its own (another port) by ``orion prefect-ui``. Its browser then calls Orion's API
from that origin: Orion must allow it, ``ORION_CORS_ALLOWED_ORIGINS='["http://host:port"]'``.
A 2.20 build can be served that way too, or by Orion's server itself under a path of its own
(``ORION_PREFECT_UI_DIR``, ``ORION_PREFECT_UI_PATH``, default ``/prefect``:
:func:`mount_prefect_ui`), the way Prefect's server serves it: on the API's origin, with
``/ui-settings`` giving the relative ``api_url`` ``/api``, and Orion's Host check and
security headers on every response (its Content-Security-Policy lets images come from the
web, block types' logos, and scripts use eval, the run graph's pixi.js).
"""

import mimetypes
import os
import re

from flask import Blueprint, Flask, Response, request, send_from_directory
from werkzeug.security import safe_join

from app.exceptions import InvalidSetting
from app.security import PREFECT_UI_POLICY

#: The experiments Prefect 2.20's server reports enabled by default (``enabled_experiments()``
#: with no setting changed), which its UI reads from ``/ui-settings``. The UI makes five of
#: them permissions (``work_pools``, ``workers``, ``artifacts``, ``deployment_status``,
#: ``work_queue_status``) and hides what they gate: without ``work_pools`` its menu offers
#: the legacy Work Queues page instead of Work Pools. Orion serves all of them.
#: ``automations`` (on only when Prefect's events are) is not among them: Orion has no
#: automations. Prefect 2.7's server reports none.
PREFECT_220_FLAGS = (
    "artifacts",
    "artifacts_on_flow_run_graph",
    "deployment_status",
    "enhanced_cancellation",
    "states_on_flow_run_graph",
    "work_pools",
    "work_queue_status",
    "workers",
    "workspace_dashboard",
)

#: What Prefect 2.20's build writes where the base path goes.
BASE_PLACEHOLDER = "/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER"
# Only text files can carry it (in 2.20.x: index.html, the entry script and its stylesheet).
_TEXT_SUFFIXES = (".html", ".js", ".mjs", ".css", ".json", ".webmanifest", ".svg", ".txt")
# One or more path segments of unreserved characters, below the root.
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+/?")


def ui_folder_problem(directory):
    """Why ``directory`` is not a built Prefect UI (a message), or None if it is one."""
    if not os.path.isdir(directory):
        return f"{directory} is not a folder"
    if not os.path.isfile(os.path.join(directory, "index.html")):
        return (
            f"{directory} has no index.html (expected a Prefect wheel's prefect/orion/ui/ "
            "or prefect/server/ui/)"
        )
    return None


def is_base_path_build(directory):
    """Whether the built UI in ``directory`` names its files under the base path placeholder
    (Prefect 2.20's build: it can be served under any path) rather than from ``/`` (2.7's)."""
    with open(os.path.join(directory, "index.html"), "rb") as file:
        return BASE_PLACEHOLDER.encode() in file.read()


def prefect_ui_blueprint(directory, base_path="/", api_url=None):
    """The routes serving the built Prefect UI in ``directory`` at ``base_path``: its files,
    ``index.html`` for the app's own routes, and ``{base_path}/ui-settings``.

    ``api_url`` is what ``/ui-settings`` tells the browser: Orion's API as the browser reaches
    it (e.g. ``http://127.0.0.1:4200/api``), or None for the API on the serving origin:
    ``/api`` under the application root of each request (its ``SCRIPT_NAME``, so behind a
    proxy that serves Orion under a prefix both the UI and its calls keep the prefix). The
    2.20 base path placeholder is replaced the same way, with the root and ``base_path``.
    Raises ValueError if ``directory`` is not a built UI."""
    problem = ui_folder_problem(directory)
    if problem:
        raise ValueError(problem)
    directory = os.path.abspath(directory)
    flags = list(PREFECT_220_FLAGS) if is_base_path_build(directory) else []
    base = "/" + base_path.strip("/")
    prefix = "" if base == "/" else base
    ui = Blueprint("prefect_ui", __name__)
    # Files with the placeholder replaced, by (path, base path the browser sees): the build
    # never changes while served.
    rewritten = {}

    def send(path):
        """The file at ``path`` (inside the folder), its base placeholder replaced."""
        if path.endswith(_TEXT_SUFFIXES):
            key = (path, request.script_root + prefix)
            if key not in rewritten:
                with open(safe_join(directory, path), "rb") as file:
                    content = file.read()
                placeholder = BASE_PLACEHOLDER.encode()
                rewritten[key] = (
                    content.replace(placeholder, key[1].encode())
                    if placeholder in content
                    else None
                )
            if rewritten[key] is not None:
                mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return Response(rewritten[key], mimetype=mimetype)
        # send_from_directory refuses (404) a path that leaves the folder.
        return send_from_directory(directory, path)

    @ui.get(f"{prefix}/ui-settings")
    def ui_settings():
        url = api_url if api_url is not None else request.script_root + "/api"
        return {"api_url": url, "csrf_enabled": False, "flags": flags}

    @ui.get(f"{prefix}/", defaults={"path": ""})
    @ui.get(f"{prefix}/<path:path>")
    def files(path):
        """A file of the app, else index.html (single-page app routes)."""
        found = safe_join(directory, path) if path else None
        if found and os.path.isfile(found):
            return send(path)
        response = send("index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    if prefix:
        # The app sets its favicon by root paths (/ico/<state>.svg), whatever its base path.
        @ui.get("/ico/<path:path>")
        def icons(path):
            return files(f"ico/{path}")

    return ui


def create_prefect_ui_app(directory, api_url, base_path="/"):
    """A WSGI app serving the built Prefect UI in ``directory`` against the API at ``api_url``
    (e.g. ``http://127.0.0.1:4200/api``), at ``base_path`` (a Prefect 2.20 build only; 2.7's
    is served from ``/``). Raises ValueError if ``directory`` is not a built UI."""
    ui = Flask(__name__, static_folder=None)
    ui.register_blueprint(prefect_ui_blueprint(directory, base_path, api_url))
    return ui


def mount_prefect_ui(app):
    """Serve the Prefect 2.20 UI of ``PREFECT_UI_DIR`` at ``PREFECT_UI_PATH`` on ``app``
    itself, calling its API on the same origin (``/ui-settings`` gives a relative
    ``api_url``), as Prefect's server serves its UI beside its API. Nothing when the folder
    is not set. Raises :class:`InvalidSetting` for a folder that is not a Prefect 2.20 build
    or a path that one of Orion's own routes already uses."""
    directory = app.config.get("PREFECT_UI_DIR")
    if not directory:
        return
    problem = ui_folder_problem(directory)
    if problem:
        raise InvalidSetting(f"ORION_PREFECT_UI_DIR: {problem}")
    if not is_base_path_build(directory):
        raise InvalidSetting(
            f"ORION_PREFECT_UI_DIR: {directory} is a Prefect 2.7 build, whose files are named "
            "from / (where Orion's dashboard is): serve it on a port of its own with "
            "`orion prefect-ui`"
        )
    path = app.config["PREFECT_UI_PATH"]
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise InvalidSetting(
            f"ORION_PREFECT_UI_PATH={path!r}: use a path below the root such as /prefect"
        )
    path = path.rstrip("/")
    taken = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule == path or rule.rule.startswith(path + "/")
    )
    if taken:
        raise InvalidSetting(
            f"ORION_PREFECT_UI_PATH={path}: Orion already serves {taken[0]}; choose another path"
        )
    ui = prefect_ui_blueprint(directory, path)

    @ui.after_request
    def content_security_policy(response):
        response.headers["Content-Security-Policy"] = PREFECT_UI_POLICY
        return response

    app.register_blueprint(ui)
