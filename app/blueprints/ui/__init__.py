"""The dashboard: server-rendered pages at ``/`` (Jinja templates in ``app/templates/``, htmx).

Conventions every view follows:

- **One URL, two renderings.** :func:`render` returns the full page, or only the page's
  fragment when htmx asks (``HX-Request``), except for htmx's history restores, which need the
  whole page. Responses vary on ``HX-Request`` so a cache never serves one for the other.
- **CSRF.** Every POST must carry the session's token, as the ``csrf_token`` form field or the
  ``X-CSRF-Token`` header (the base template sets both); anything else is refused with 400.
- **Errors in place.** Bad query parameters are a 422 page naming the parameter; missing
  objects a 404 page; htmx requests get the message as a fragment (the base template tells
  htmx 2 to swap error responses too). Never a JSON body outside ``/api``.
- **Sign-in.** With ``ORION_API_KEY`` set, every page needs a signed-in session (see
  ``auth``), checked before anything else.
- **Redirects stay on this site.** A ``next`` address from a form is followed only if it is
  a path here (:func:`local_path`).
- **Data only through** ``app.services``, with bounded queries.

One module per area registers its routes on :data:`bp` (``dashboard``, ``flow_runs``,
``task_runs``, ``flows``, ``deployments``, ``work_pools``, ``work_queues``,
``concurrency_limits``, ``blocks``, ``notifications``, ``variables``, ``saved_searches``,
``bulk``, ``auth``, ``artifacts``, and ``prefect_links``: Prefect's UI addresses redirected
to these pages);
endpoint names are the view functions' names (``url_for("ui.flow_runs_page")``). Helpers
shared by several areas: this module, ``params`` (query and form parameters), ``run_filter``
(the runs list's filter), ``logs`` and ``parameter_form`` (forms generated from a JSON schema).
"""

import datetime
import hmac
import json
import logging
import secrets
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    session,
)
from markupsafe import Markup
from peewee import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from app.clock import utcnow
from app.exceptions import ObjectNotFound
from app.schemas.core import estimated_run_time
from app.states import STATE_TYPE_VALUES

log = logging.getLogger(__name__)

bp = Blueprint("ui", __name__)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

# Paths served by the API and its docs keep the API's JSON error bodies.
_API_PREFIXES = ("/api/", "/docs", "/redoc")

# One glyph per state type, so a state never depends on colour alone.
STATE_GLYPHS = {
    "SCHEDULED": "◷",
    "PENDING": "…",
    "RUNNING": "▶",
    "COMPLETED": "✓",
    "FAILED": "✗",
    "CANCELLED": "⊘",
    "CRASHED": "⚠",
    "PAUSED": "⏸",
    "CANCELLING": "⊘",
}
ACTIVE_STATES = frozenset({"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"})


class BadParameter(Exception):
    """A query or form parameter the dashboard cannot use (rendered as a 422 page)."""

    def __init__(self, name, message):
        super().__init__(f"Invalid value for {name!r}: {message}")
        self.name = name


def is_fragment_request():
    """True for an htmx request that wants only the fragment (not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(template, fragment=None, status=200, **context):
    """Render ``template`` (a full page), or ``fragment`` for htmx requests (see module doc).

    A view without a page of its own passes ``template="ui/page.html"`` with ``fragment``:
    the page then wraps the fragment in the layout, so its URL also works when opened
    directly.
    """
    name = fragment if fragment and is_fragment_request() else template
    response = make_response(render_template(name, fragment=fragment, **context), status)
    response.vary.add("HX-Request")
    return response


def page_url(page):
    """This list's address with another page number (the other query parameters kept)."""
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
    query.append(("page", str(page)))
    return request.script_root + request.path + "?" + urlencode(query)


def here():
    """The address of the page being served, as the browser sees it: the path under a
    proxy's prefix (``X-Forwarded-Prefix``, see ``app.security``) and the query."""
    return request.script_root + request.full_path.rstrip("?")


def local_path(value, default):
    """``value`` if it is a path on this site, else ``default`` (no open redirects). A path
    on this site includes the proxy's prefix, as ``url_for`` and :func:`here` give it."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def agent_timeout():
    """``ORION_AGENT_HEARTBEAT_TIMEOUT`` as a timedelta: how long a silent agent stays online."""
    return datetime.timedelta(seconds=current_app.config["AGENT_HEARTBEAT_TIMEOUT"])


def csrf_token():
    """The session's CSRF token (created on first use)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


@bp.before_request
def _check_request():
    """Send requests that must sign in first to the sign-in page (``auth``), then refuse NUL
    characters (PostgreSQL cannot store them) and POSTs without the CSRF token."""
    from app.blueprints.ui.auth import require_sign_in

    sign_in = require_sign_in()
    if sign_in is not None:
        return sign_in
    values = list(request.args.values())
    if request.method == "POST":
        values += list(request.form.values())
    if any("\x00" in value for value in values) or "\x00" in request.path:
        raise BadParameter("request", "parameters must not contain NUL characters.")
    if request.method == "POST":
        sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
        expected = session.get(CSRF_FIELD) or ""
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            abort(
                400,
                description="This form has expired or did not come from this dashboard: "
                "reload the page and try again.",
            )
    return None


def error_page(status, title, message):
    """The error as a page, or as a fragment for htmx requests, with ``status``."""
    return render("ui/error.html", "ui/_error.html", status=status, title=title, message=message)


@bp.errorhandler(BadParameter)
def _bad_parameter(error):
    return error_page(422, "Invalid request", str(error))


@bp.errorhandler(ObjectNotFound)
def _not_found(error):
    return error_page(404, "Not found", str(error))


@bp.errorhandler(OperationalError)
@bp.errorhandler(InterfaceError)
def _database_unavailable(error):
    log.error("database unavailable: %s", str(error).strip())
    return error_page(
        503, "Database unavailable", "The database did not answer; the server log says why."
    )


def _http_error_handler(api):
    """An app-wide HTTPException handler: the API's JSON body under the API's paths, the
    dashboard's error page everywhere else (unknown URLs, malformed ids, CSRF refusals)."""

    def handle(error):
        if request.path.startswith(_API_PREFIXES):
            return api.handle_http_exception(error)
        message = error.description
        if error.code == 404:
            message = "There is no page at this address."
        elif error.code == 422:
            message = "The address holds a malformed id."
        response = error_page(error.code, error.name, message)
        if error.code == 405:
            response.headers["Allow"] = ", ".join(error.valid_methods or ())
        return response

    return handle


def time_tag(value):
    """A UTC datetime as ``<time>``: UTC in the text and on hover; the page's script shows
    it in the browser's time zone (with the zone's name) and keeps UTC in the title."""
    if value is None:
        return Markup('<span class="muted">—</span>')
    utc = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    # Both strings are made of digits and punctuation only: nothing to escape (pages list
    # hundreds of times, and Markup.format costs ten times as much).
    return Markup(f'<time datetime="{value.isoformat()}" title="{utc}">{utc}</time>')


def _ago(value):
    """A past UTC datetime as how long ago it was ("just now", "42 s ago", "5 min ago",
    "3 h ago", "2 d ago"), in a ``<time>`` whose hover shows the time in UTC (the page's
    script leaves its text alone); a dash for None."""
    if value is None:
        return Markup('<span class="muted">—</span>')
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 1:
        words = "just now"
    elif seconds < 60:
        words = f"{seconds} s ago"
    elif seconds < 3600:
        words = f"{seconds // 60} min ago"
    elif seconds < 86400:
        words = f"{seconds // 3600} h ago"
    else:
        words = f"{seconds // 86400} d ago"
    utc = value.strftime("%Y-%m-%d %H:%M:%S UTC")
    # Digits, letters and punctuation only: nothing to escape.
    return Markup(f'<time datetime="{value.isoformat()}" title="{utc}" data-local>{words}</time>')


def duration(seconds):
    """Seconds as ``1h 2m``, ``3m 4s`` or ``5.6s``."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def _run_time(run):
    """Seconds a run has spent running, including the current spell if it is running."""
    return estimated_run_time(run, utcnow())


def _pretty(value):
    """JSON data as indented text (escaped by the template like any other text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def register_ui(app, api):
    """Register the dashboard blueprint, its template helpers and the app-wide error page."""
    # The modules' routes register on import.
    from app.blueprints.ui import (  # noqa: F401
        artifacts,
        auth,
        blocks,
        bulk,
        concurrency_limits,
        dashboard,
        deployments,
        flow_runs,
        flows,
        notifications,
        prefect_links,
        saved_searches,
        task_runs,
        variables,
        work_pools,
        work_queues,
    )

    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error_handler(api))
    app.jinja_env.globals.update(
        csrf_token=csrf_token,
        CSRF_FIELD=CSRF_FIELD,
        CSRF_HEADER=CSRF_HEADER,
        STATE_GLYPHS=STATE_GLYPHS,
        STATE_TYPES=STATE_TYPE_VALUES,
        ACTIVE_STATES=ACTIVE_STATES,
        run_time=_run_time,
        signed_in=auth.signed_in,
        sign_in_required=lambda: bool(app.config.get("API_KEY")),
    )
    from app.blueprints.ui.params import wall_time

    app.jinja_env.filters.update(
        ts=time_tag,
        ago=_ago,
        duration=duration,
        pretty=_pretty,
        wall=wall_time,
        artifact_html=artifacts.artifact_html,
    )
