"""Prefect 2's own web UI, served for Orion: ``orion prefect-ui``.

Users moving from Prefect 2 know its UI; its wheel ships the built app (Prefect 2.7:
``prefect/orion/ui/``, Prefect 2.20: ``prefect/server/ui/``). This serves that folder the way
Prefect's server does (``create_ui_app`` of ``prefect.orion.api.server`` and
``prefect.server.api.server``): its files, any other path answered with ``index.html`` (the
app routes in the browser), and ``GET /ui-settings`` telling the app where the API is
(``{"api_url": ..., "csrf_enabled": false, "flags": []}``: no CSRF token is needed and no
experimental feature is enabled; Prefect 2.7's UI reads only the first and last).

Prefect 2.20's build names its files under a placeholder base path
(``/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER``) that its server replaces with the path the UI
is served at; here it is replaced, in the files that carry it, with ``base_path``. Prefect
2.7's build names its assets by absolute paths (``/assets/...``) and routes from ``/``.

Both builds route from paths Orion's own dashboard also uses, so the UI is served from an
origin of its own (another port) rather than under a prefix of Orion's server. Its browser
then calls Orion's API from that origin: Orion must allow it,
``ORION_CORS_ALLOWED_ORIGINS='["http://host:port"]'``. ``api_url`` may be relative (Prefect
2.20's default is ``/api``) where a proxy serves the UI and the API on one origin.
"""

import mimetypes
import os

from flask import Flask, Response, send_from_directory
from werkzeug.security import safe_join

#: What Prefect 2.20's build writes where the base path goes.
BASE_PLACEHOLDER = "/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER"
# Only text files can carry it (in 2.20.x: index.html, the entry script and its stylesheet).
_TEXT_SUFFIXES = (".html", ".js", ".mjs", ".css", ".json", ".webmanifest", ".svg", ".txt")


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


def create_prefect_ui_app(directory, api_url, base_path="/"):
    """A WSGI app serving the built Prefect UI in ``directory`` against the API at ``api_url``
    (e.g. ``http://127.0.0.1:4200/api``), at ``base_path`` (a Prefect 2.20 build only; 2.7's
    is served from ``/``). Raises ValueError if ``directory`` is not a built UI."""
    problem = ui_folder_problem(directory)
    if problem:
        raise ValueError(problem)
    directory = os.path.abspath(directory)
    base = "/" + base_path.strip("/")
    prefix = "" if base == "/" else base
    ui = Flask(__name__, static_folder=None)
    # Files with the placeholder replaced, by path: the build never changes while served.
    rewritten = {}

    def send(path):
        """The file at ``path`` (inside the folder), its base placeholder replaced."""
        if path.endswith(_TEXT_SUFFIXES):
            if path not in rewritten:
                with open(safe_join(directory, path), "rb") as file:
                    content = file.read()
                placeholder = BASE_PLACEHOLDER.encode()
                rewritten[path] = (
                    content.replace(placeholder, prefix.encode())
                    if placeholder in content
                    else None
                )
            if rewritten[path] is not None:
                mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return Response(rewritten[path], mimetype=mimetype)
        # send_from_directory refuses (404) a path that leaves the folder.
        return send_from_directory(directory, path)

    @ui.get(f"{prefix}/ui-settings")
    def ui_settings():
        return {"api_url": api_url, "csrf_enabled": False, "flags": []}

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

    return ui
