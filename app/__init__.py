"""Orion: a workflow orchestration server. ``create_app`` builds the Flask application."""

import hmac
import inspect
import json
import logging
import re
import types

from flask import Flask, Request, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.routing import Rule

from app.schemas import json_body

__version__ = "0.1.0"

# The Orion REST API version this server speaks (Prefect 2.7 line).
API_VERSION = "0.8.4"
_OLDEST_CLIENT_API = (0, 8, 0)
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
log = logging.getLogger(__name__)
# Setting notes already logged by this process (each is said once, however many apps).
_NOTES_LOGGED = set()


def create_app(overrides=None):
    """Build the app: settings, database binding, schema check, API and dashboard.

    ``overrides`` is a mapping of settings applied after the environment (used by tests).
    Nothing connects to the database except the schema check, which refuses a database
    migrated by a newer Orion.
    """
    from app import metrics, migrations
    from app.blueprints.api import register_api
    from app.blueprints.metrics import bp as metrics_bp
    from app.blueprints.ui import register_ui
    from app.config import load_config
    from app.db import close_db, database, pool_use
    from app.extensions import api
    from app.logformat import configure_logging
    from app.prefect_ui import mount_prefect_ui
    from app.security import init_security

    app = OrionFlask(__name__)
    app.request_class = StrictJSONRequest
    app.session_interface = DashboardSessionInterface()
    app.config.from_mapping(load_config(overrides))
    configure_logging(app.config["LOG_FORMAT"])
    app.json.sort_keys = False
    # First: the Host check and the throttle run before the API key check.
    init_security(app)
    bind_process_state(app)
    with database.connection_context():
        migrations.check_schema(database)
        _prepare_blocks()

    for note in app.config["SETTING_NOTES"]:
        if note not in _NOTES_LOGGED:
            _NOTES_LOGGED.add(note)
            log.warning("%s", note)
    # The admin API's drop/create run the migrations, which only the assembly imports.
    app.extensions["orion.migrations"] = migrations
    # Before close_db: teardowns run last registered first, the pool is read after the close.
    metrics.init_app(app, pool_use)
    app.teardown_request(close_db)
    app.before_request(_check_api_request)
    app.after_request(_cors_headers)
    api.init_app(app)
    register_api(app, api)
    register_ui(app, api)
    app.register_blueprint(metrics_bp)
    # Last: its path must not be one of Orion's own routes.
    mount_prefect_ui(app)
    return app


class LazyBuilderRule(Rule):
    """werkzeug's Rule, compiling its two URL builders when first used rather than when the
    rule is added.

    werkzeug writes and compiles the Python source of two builder functions per rule as it
    adds the rule: about 0.7 ms a rule, 0.16 s for the app's 235 routes, in every process
    that builds the app, although most routes are never the target of ``url_for``. Each
    builder here compiles werkzeug's own on its first call and puts it in its place, so every
    URL is built by werkzeug's code. Two threads racing on a first call compile the same
    builder twice, which is harmless.
    """

    def _compile_builder(self, append_unknown=True):
        compile_builder = super()._compile_builder
        attribute = "_build_unknown" if append_unknown else "_build"

        def build(rule, **values):
            builder = compile_builder(append_unknown).__get__(rule, None)
            setattr(rule, attribute, builder)
            return builder(**values)

        return build


class OrionFlask(Flask):
    """Flask, asking ``inspect`` whether a view or hook is a coroutine only when it may be,
    with routes whose URL builders compile on first use (:class:`LazyBuilderRule`).

    Flask passes every view and request hook through ``ensure_sync`` on every request, about
    fifteen times per API call, and ``inspect.iscoroutinefunction`` unwraps and inspects each:
    3-4 % of a small call's CPU. A plain function or a method of one answers from its code
    flags here; anything else (partials, callable objects) goes to Flask as before.
    """

    url_rule_class = LazyBuilderRule

    def ensure_sync(self, func):
        plain = func.__func__ if type(func) is types.MethodType else func
        if type(plain) is types.FunctionType and not (
            plain.__code__.co_flags & inspect.CO_COROUTINE
        ):
            return func
        return super().ensure_sync(func)


class _StrictJSON:
    """The JSON module requests parse with: :func:`app.schemas.json_body.loads`."""

    loads = staticmethod(json_body.loads)
    dumps = staticmethod(json.dumps)


class StrictJSONRequest(Request):
    """A request whose ``get_json`` refuses NaN, Infinity and deep nesting, as the API's
    argument parser does (a ``JSONBodyError`` is a ``ValueError``: Flask answers 400)."""

    json_module = _StrictJSON


class DashboardSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session for the dashboard; API requests (under ``/api/``) and
    static files get a null session, which they never use. The API authenticates with a
    bearer key, and opening the cookie session builds a signer per request, a tenth of a small
    API call's time. A static file must not refresh the session cookie either: a stylesheet
    or icon answered after sign-out would otherwise set the ended session's cookie again, and
    no shared cache could keep the file."""

    def get_cookie_secure(self, app):
        """Secure when ``SESSION_COOKIE_SECURE`` says so or the request came over https
        (directly, or through a proxy trusted by ``PROXY_TRUSTED_HOPS``)."""
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    def get_cookie_path(self, app):
        """``SESSION_COOKIE_PATH`` when set, else the site's root as the browser sees it:
        ``/orion/`` behind a proxy's ``X-Forwarded-Prefix: /orion`` (trusted through
        ``PROXY_TRUSTED_HOPS``), so the cookie is not sent to other sites on that host."""
        return app.config["SESSION_COOKIE_PATH"] or f"{request.script_root}/"

    def open_session(self, app, request):
        if request.path.startswith(("/api/", f"{app.static_url_path}/")):
            return self.make_null_session(app)
        return super().open_session(app, request)


def bind_process_state(app):
    """Point process-wide state at ``app``'s settings: the database proxy, schema limits,
    the block encryption key.

    ``create_app`` does this; a process that builds several apps (tests) calls it to switch.
    """
    from app.blueprints.api import apply_schema_limits
    from app.db import init_database
    from app.services import block_crypto

    init_database(app.config)
    apply_schema_limits(app.config)
    block_crypto.configure(block_crypto.load_key(app.config))


def _prepare_blocks():
    """On a database with the block tables: refuse to start with an encryption key other
    than the database's (EncryptionKeyMismatch), and register the system block types."""
    from app.db import database
    from app.services import block_crypto, blocks

    if database.table_exists("encryption_key"):
        block_crypto.check_key()
        blocks.install_system_block_types()


def _check_api_request():
    """Refuse API calls from clients too old for this server, or without the API key if set.

    The client's declared API version is kept as ``g.api_version``, a tuple of ints such as
    ``(0, 8, 3)``, or None when the header is absent (the client speaks the latest).
    """
    from flask import current_app

    req = request._get_current_object()  # the proxy resolves the context on every access
    path = req.path
    if not path.startswith("/api/") or path == "/api/openapi.json":
        return None
    if req.method == "OPTIONS" and _cors_origin() is not None:
        return _cors_preflight()
    if "\x00" in path or b"%00" in req.query_string:
        return {"detail": "Paths and query strings must not contain NUL characters."}, 422
    key = current_app.config.get("API_KEY")
    headers = req.headers
    if key and not hmac.compare_digest(
        headers.get("Authorization", "").encode(), f"Bearer {key}".encode()
    ):
        return {"detail": "Missing or invalid API key (send 'Authorization: Bearer <key>')."}, 401
    version = headers.get("X-PREFECT-API-VERSION")
    # Set on every API request: a test holding an app context shares ``g`` between requests.
    g.api_version = None
    if version is None:
        return None
    match = _VERSION_RE.match(version.strip())
    if match is None:
        return {"detail": f"Invalid X-PREFECT-API-VERSION header {version!r}: expected x.y.z."}, 400
    declared = tuple(int(part) for part in match.groups())
    if declared < _OLDEST_CLIENT_API:
        return {
            "detail": f"Client API version {version} is too old; this server speaks {API_VERSION}."
        }, 400
    g.api_version = declared
    return None


def _cors_origin():
    """The request's Origin if it may call the API (``CORS_ALLOWED_ORIGINS``), else None."""
    from flask import current_app

    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith("/api/"):
        return None
    allowed = current_app.config["CORS_ALLOWED_ORIGINS"] or []
    if isinstance(allowed, str):
        allowed = [allowed]
    return origin if "*" in allowed or origin in allowed else None


def _cors_preflight():
    """The answer to a browser's CORS preflight from an allowed origin (no API key needed:
    browsers send none on a preflight)."""
    from flask import current_app

    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested:
        response.headers["Access-Control-Allow-Headers"] = requested
    response.headers["Access-Control-Max-Age"] = "600"
    return response


def _cors_headers(response):
    """Let allowed origins read API responses (``Access-Control-Allow-Origin``)."""
    origin = _cors_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    return response
