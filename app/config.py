"""Every Orion server setting, in one place.

Settings come from ``DefaultConfig``, then ``ORION_<KEY>`` environment variables (values are
parsed as JSON when they parse, so ``ORION_API_DEFAULT_LIMIT=50`` is an int), then the
``overrides`` mapping given to :func:`load_config` (tests). A few Prefect setting names are
understood too (:data:`PREFECT_ALIASES`), with our name winning when both are set. The
environment is read only when :func:`load_config` is called, never at import time.

The periodic services' own two settings each, ``<SETTING>_ENABLED`` and
``<SETTING>_LOOP_SECONDS``, have their defaults in the services' table
(``app.services.periodic.SERVICES``); they are read from the environment like any other.
"""

import os
import secrets
from typing import ClassVar

from flask import Config

from app.exceptions import BadSetting


class DefaultConfig:
    """Defaults; each key can be set with an ``ORION_``-prefixed environment variable."""

    # Folder for the SQLite database, results storage and other local state.
    HOME = "~/.orion"
    # Database URL: sqlite:///<path> or postgresql://user:pass@host:port/db (None = SQLite in HOME).
    DATABASE_URL = None
    # Most connections one process keeps open to the database (per pool).
    DATABASE_POOL_SIZE = 20
    # Seconds a pooled connection may sit idle before it is recycled.
    DATABASE_POOL_STALE_SECONDS = 300
    # Seconds a write waits for SQLite's lock before giving up (busy_timeout).
    DATABASE_BUSY_TIMEOUT_SECONDS = 60
    # SQLite's synchronous level: "normal" or "full" (see the README's "Durability"). Both
    # keep every acknowledged write through a crash or kill -9 of Orion; only "full" keeps the
    # last ones through a power loss or an OS crash, at a cost measured in bench/README.md.
    SQLITE_SYNCHRONOUS = "normal"
    # Log lines: "text" (Python's and gunicorn's defaults) or "json" (one object a line with
    # time, level, logger, message, and request_id/endpoint inside a request; app.logformat).
    LOG_FORMAT = "text"
    # Apply pending migrations when the server starts (orion start).
    DATABASE_MIGRATE_ON_START = True
    # Redis URL for the RQ workers; unset means services run in-process.
    REDIS_URL = None
    # If set, every /api request must send "Authorization: Bearer <key>".
    API_KEY = None
    # Default and largest `limit` of filter endpoints.
    API_DEFAULT_LIMIT = 200
    # Longest task run cache_key accepted.
    API_TASK_CACHE_KEY_MAX_LENGTH = 2000
    # Seconds a task run is told to WAIT before proposing RUNNING again when a tag is full.
    TASK_CONCURRENCY_SLOT_WAIT_SECONDS = 30
    # Seconds a task run's concurrency slot lease lasts; an expired lease frees the slot.
    TASK_CONCURRENCY_LEASE_SECONDS = 300
    # Key signing the dashboard's session cookie (which carries its CSRF token). Unset means a
    # random key per server start: open dashboard forms then need a reload after a restart.
    # Set it when several servers share one address.
    SECRET_KEY = None
    # Fernet key encrypting block document data at rest (`orion block generate-key` makes
    # one). Unset means the key file block-encryption.key in HOME, generated on first start.
    # Every server of one database needs the same key; the database keeps its fingerprint.
    ENCRYPTION_KEY = None
    # The dashboard's session cookie: SameSite and HttpOnly as set here; Secure always when
    # SESSION_COOKIE_SECURE is true, otherwise whenever the request came over https (directly,
    # or through a proxy trusted by PROXY_TRUSTED_HOPS).
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SECURE = False
    # With API_KEY set the dashboard asks for it; a signed-in session (a row of the
    # dashboard_session table) ends after this many seconds without a request, or on sign-out.
    PERMANENT_SESSION_LIFETIME = 12 * 3600
    # Proxies in front of the server whose X-Forwarded-For/-Proto/-Host/-Port/-Prefix headers
    # are believed (werkzeug's ProxyFix, this many hops). 0: none, a client's own X-Forwarded-*
    # headers change nothing. Set it to 1 behind one nginx that sets those headers.
    PROXY_TRUSTED_HOPS = 0
    # Host names the server answers to (["orion.example", ".example.com" for its subdomains,
    # "*" for any]; ports are ignored); another Host gets a 400, which stops DNS rebinding.
    # None: when SERVER_HOST is a loopback address, only localhost, 127.0.0.1 and [::1];
    # otherwise any. Orion checks the Host itself (werkzeug's check cannot match [::1]), so
    # Flask's own TRUSTED_HOSTS check stays off.
    TRUSTED_HOSTS = None
    # Failed API keys (a 401 from /api) and failed dashboard sign-ins allowed per client
    # address (the proxy's X-Forwarded-For when trusted) before every request from that
    # address gets 429 with Retry-After until the window ends ("N/second|minute|hour").
    THROTTLE_FAILED_API_KEYS = "20/minute"
    THROTTLE_FAILED_SIGN_INS = "10/minute"
    # Where those counts are kept: a limits storage URL ("redis://host:6379/0",
    # "memory://"). None: REDIS_URL when set (one count shared by every process), else the
    # process's memory.
    THROTTLE_STORAGE_URL = None
    # Scheduler service (SCHEDULER_ENABLED, SCHEDULER_LOOP_SECONDS: see the module docstring):
    # keep each active deployment at least SCHEDULER_MIN_RUNS future runs and
    # SCHEDULER_MIN_SCHEDULED_TIME_SECONDS ahead, generating at most SCHEDULER_MAX_RUNS runs up
    # to SCHEDULER_MAX_SCHEDULED_TIME_SECONDS ahead.
    SCHEDULER_DEPLOYMENT_BATCH_SIZE = 100
    SCHEDULER_MIN_RUNS = 3
    SCHEDULER_MAX_RUNS = 100
    SCHEDULER_MIN_SCHEDULED_TIME_SECONDS = 3600
    SCHEDULER_MAX_SCHEDULED_TIME_SECONDS = 100 * 24 * 3600
    # Runs inserted per statement.
    SCHEDULER_INSERT_BATCH_SIZE = 500
    # Most runs one POST /api/deployments/{id}/schedule (a backfill) may ask for.
    SCHEDULER_MAX_BACKFILL_RUNS = 10000
    # Late-runs service (LATE_RUNS_ENABLED, LATE_RUNS_LOOP_SECONDS): Scheduled runs more than
    # LATE_RUNS_AFTER_SECONDS past their time become Late, LATE_RUNS_BATCH_SIZE per
    # transaction. LATE_RUNS_AFTER_SECONDS must exceed the agents' longest wait between polls
    # (ORION_AGENT_QUERY_INTERVAL, 10 s, + 30 % jitter) by the time a claim takes (5 s), or a
    # healthy agent's runs go Late: 20 s against 13 s (Prefect 2.7's 5 s did not).
    LATE_RUNS_AFTER_SECONDS = 20
    LATE_RUNS_BATCH_SIZE = 400
    # RQ queue the service jobs go to (with ORION_REDIS_URL).
    REDIS_QUEUE = "orion"
    # Liveness service (app/services/liveness.py; LIVENESS_ENABLED, LIVENESS_LOOP_SECONDS, 5 s):
    # a RUNNING flow run silent (no heartbeat) for RUN_HEARTBEAT_TIMEOUT seconds becomes
    # Crashed, a PENDING one not started within PENDING_TIMEOUT seconds becomes Crashed, and a
    # CANCELLING one silent for RUN_HEARTBEAT_TIMEOUT becomes Cancelled; LIVENESS_BATCH_SIZE
    # runs per transaction. Flows heartbeat every ORION_HEARTBEAT_SECONDS (5, a client
    # setting): 20 s is four missed beats, and a dead run is Crashed within 20 + 5 = 25 s.
    LIVENESS_BATCH_SIZE = 200
    RUN_HEARTBEAT_TIMEOUT = 20
    PENDING_TIMEOUT = 600
    # An agent that neither heartbeated (`orion agent start` does every
    # ORION_AGENT_HEARTBEAT_SECONDS, 5, a client setting) nor polled for this many seconds is
    # shown offline in the dashboard's queue health.
    AGENT_HEARTBEAT_TIMEOUT = 20
    # The rollup service (app/services/rollups.py; ROLLUP_ENABLED, ROLLUP_LOOP_SECONDS) has no
    # other settings.
    # Retention service (app/services/retention.py; RETENTION_ENABLED, RETENTION_LOOP_SECONDS,
    # 60 s): finished flow runs (terminal state) that entered their terminal state more than
    # RETENTION_DAYS days ago are deleted with their task runs, states, logs, artifacts and inputs,
    # in batches each holding its locks about 50 ms. None (the default): every run is kept.
    # A pass deletes for at most RETENTION_PASS_SECONDS (it shares embedded mode's thread
    # with the other services); the next pass goes on. Both must be positive (RETENTION_DAYS
    # a whole number) or the settings are refused. `orion db prune` prunes on demand.
    RETENTION_DAYS = None
    RETENTION_PASS_SECONDS = 5
    # Notification service (app/services/notifications.py; NOTIFICATIONS_ENABLED,
    # NOTIFICATIONS_LOOP_SECONDS): sends queued flow run notifications, NOTIFICATIONS_CONCURRENCY
    # at a time, each request bounded by NOTIFICATIONS_TIMEOUT_SECONDS; a failure that may pass
    # is retried NOTIFICATIONS_RETRY_SECONDS * 2**(n-1) seconds after the n-th attempt, up to
    # NOTIFICATIONS_MAX_ATTEMPTS attempts.
    NOTIFICATIONS_TIMEOUT_SECONDS = 10
    NOTIFICATIONS_MAX_ATTEMPTS = 5
    NOTIFICATIONS_RETRY_SECONDS = 10
    NOTIFICATIONS_CONCURRENCY = 16
    # The dashboard's address as users reach it, for links in notifications
    # (None: http://SERVER_HOST:SERVER_PORT).
    UI_URL = None
    # Allow POST /api/admin/database/{clear,drop,create} (with the API key when one is set).
    ADMIN_DATABASE_ENABLED = False
    # Origins (e.g. ["https://ui.example"]; "*" for any) whose browsers may call the API from
    # another origin (CORS). Empty: none, the browser's same-origin rule applies.
    CORS_ALLOWED_ORIGINS: ClassVar[list[str]] = []
    # A built Prefect 2.20 web UI (the folder prefect/server/ui of a Prefect 2.20 wheel) that
    # the server also serves, at PREFECT_UI_PATH, against its own API (app/prefect_ui.py).
    PREFECT_UI_DIR = None
    PREFECT_UI_PATH = "/prefect"
    # Address and port `orion start` binds to.
    SERVER_HOST = "127.0.0.1"
    SERVER_PORT = 4200
    # Gunicorn worker processes and threads per process for `orion start`.
    SERVER_WORKERS = 1
    SERVER_THREADS = 8
    # Largest request body accepted, in bytes (larger ones get 413).
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    # flask-smorest / OpenAPI: spec at /api/openapi.json, docs served from vendored assets.
    API_TITLE = "Orion"
    API_VERSION = "0.8.4"
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "api/openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    OPENAPI_SWAGGER_UI_URL = "/static/vendor/swagger-ui/"
    OPENAPI_REDOC_PATH = "/redoc"
    OPENAPI_REDOC_URL = "/static/vendor/redoc/redoc.standalone.js"


# Prefect's names for settings a user may carry over: {Prefect variable: our setting}.
# ORION_<setting> wins when both are set.
PREFECT_ALIASES = {
    "PREFECT_ORION_DATABASE_CONNECTION_URL": "DATABASE_URL",
}
# SQLAlchemy async driver URLs Prefect uses, and the URL scheme they mean here.
_DRIVER_SCHEMES = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": "postgresql",
}


def database_url_from_prefect(url):
    """A Prefect database URL in our form: ``sqlite+aiosqlite:///path`` becomes
    ``sqlite:///path`` and ``postgresql+asyncpg://...`` becomes ``postgresql://...``; other
    URLs are returned as they are (ours are SQLAlchemy's sync forms already)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in _DRIVER_SCHEMES:
        return f"{_DRIVER_SCHEMES[scheme.lower()]}://{rest}"
    return url


def _apply_aliases(config, environ):
    """Take PREFECT_* aliases from ``environ`` for settings not set with their ORION_ name;
    returns one message per alias used or overridden, for the server to log at start."""
    notes = []
    for prefect_name, setting in PREFECT_ALIASES.items():
        value = environ.get(prefect_name)
        if value is None:
            continue
        if f"ORION_{setting}" in environ:
            notes.append(f"{prefect_name} is ignored: ORION_{setting} is set and wins.")
            continue
        if setting == "DATABASE_URL":
            value = database_url_from_prefect(value)
        config[setting] = value
        notes.append(f"ORION_{setting} taken from {prefect_name} (Prefect's name).")
    return notes


def load_config(overrides=None):
    """Build the settings: defaults, then ORION_* environment variables (and the Prefect
    aliases of :data:`PREFECT_ALIASES` for settings they leave unset), then ``overrides``.

    ``SETTING_NAMES`` lists the settings (for ``/api/admin/settings``); ``SETTING_NOTES`` says
    which Prefect aliases were used or overridden (logged once when the server starts).
    """
    config = Config(os.getcwd())
    config.from_object(DefaultConfig)
    config.from_prefixed_env("ORION")
    config["SETTING_NOTES"] = _apply_aliases(config, os.environ)
    if overrides:
        config.update(overrides)
    config["SETTING_NAMES"] = sorted(
        {name for name in vars(DefaultConfig) if name.isupper()}
        | {name[len("ORION_") :] for name in os.environ if name.startswith("ORION_")}
    )
    config["HOME"] = os.path.abspath(os.path.expanduser(config["HOME"]))
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = "sqlite:///" + os.path.join(config["HOME"], "orion.db")
    config["DATABASE_URL"] = database_url_from_prefect(config["DATABASE_URL"])
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = secrets.token_hex(32)
    config["SECRET_KEY"] = str(config["SECRET_KEY"])
    check_settings(config)
    return config


def check_settings(config):
    """Refuse the settings whose values Orion cannot use: :class:`BadSetting` naming the
    first such ``ORION_`` variable. Called by :func:`load_config`, so every process
    (server, RQ worker, cron, commands) refuses them at start."""
    days = config.get("RETENTION_DAYS")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise BadSetting(
            f"ORION_RETENTION_DAYS={days!r}: use a whole number of days, at least 1 "
            "(or leave it unset to keep every run)"
        )
    seconds = config.get("RETENTION_PASS_SECONDS")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise BadSetting(
            f"ORION_RETENTION_PASS_SECONDS={seconds!r}: use a positive number of seconds"
        )
