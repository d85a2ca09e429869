"""Prefect 2's own web UI, served for Orion: ``orion prefect-ui``.

Users moving from Prefect 2.7 know its UI; its wheel ships the built app
(``prefect/orion/ui/``). This serves that folder the way Prefect's server does
(``prefect.orion.api.server.create_ui_app``): its files, any other path answered with
``index.html`` (the app routes in the browser), and ``GET /ui-settings`` telling the app where
the API is (``{"api_url": ..., "flags": []}``; no experimental feature is enabled).

The built app names its assets by absolute paths (``/assets/...``) and routes from ``/``, the
same paths as Orion's own dashboard, so it is served from an origin of its own (another port)
rather than under a prefix of Orion's server. Its browser then calls Orion's API from that
origin: Orion must allow it, ``ORION_CORS_ALLOWED_ORIGINS='["http://host:port"]'``.
"""

import os

from flask import Flask, send_from_directory


def ui_folder_problem(directory):
    """Why ``directory`` is not a built Prefect UI (a message), or None if it is one."""
    if not os.path.isdir(directory):
        return f"{directory} is not a folder"
    if not os.path.isfile(os.path.join(directory, "index.html")):
        return f"{directory} has no index.html (expected a Prefect wheel's prefect/orion/ui/)"
    return None


def create_prefect_ui_app(directory, api_url):
    """A WSGI app serving the built Prefect UI in ``directory`` against the API at ``api_url``
    (e.g. ``http://127.0.0.1:4200/api``). Raises ValueError if ``directory`` is not one."""
    problem = ui_folder_problem(directory)
    if problem:
        raise ValueError(problem)
    directory = os.path.abspath(directory)
    ui = Flask(__name__, static_folder=None)

    @ui.get("/ui-settings")
    def ui_settings():
        return {"api_url": api_url, "flags": []}

    @ui.get("/", defaults={"path": ""})
    @ui.get("/<path:path>")
    def files(path):
        """A file of the app, else index.html (single-page app routes)."""
        if path and os.path.isfile(os.path.join(directory, path)):
            # send_from_directory refuses (404) a path that leaves the folder.
            return send_from_directory(directory, path)
        response = send_from_directory(directory, "index.html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    return ui
