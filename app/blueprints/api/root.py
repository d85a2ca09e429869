"""Server-level endpoints: health, readiness, version, hello, and the CSRF token route of
Prefect 2.20 (this server's API has no CSRF protection to hand tokens for)."""

import logging

from flask import current_app

import app
from app.blueprints.api.common import Blueprint, json_response
from app.extensions import DATABASE_UNAVAILABLE
from app.services import admin

log = logging.getLogger(__name__)

blp = Blueprint("root", __name__, url_prefix="/api", description="Server health and version.")


@blp.get("/health")
@blp.response(200, description="`true` when the server can reach its database.")
@blp.alt_response(503, description="The database cannot be reached (the server log says why).")
def health():
    """Check that the server is up and can query its database."""
    problem = admin.database_problem()
    if problem is not None:
        log.error("health check: database unavailable: %s", problem)
        return json_response({"detail": DATABASE_UNAVAILABLE}, 503)
    return json_response(True)


@blp.get("/ready")
@blp.response(
    200, description="Ready: the database answers, migrations are current, Redis answers."
)
@blp.alt_response(503, description="Not ready; the body says which check failed, the log why.")
def ready():
    """Check that the server can serve fully: its database answers, every migration is
    applied, and Redis (when ``ORION_REDIS_URL`` is set) answers. ``/health`` only says the
    process is up and reaches its database. The body names the failed checks; the log has the
    details (which may name hosts and drivers)."""
    checks, problems = {}, []
    database_trouble = admin.database_problem()
    if database_trouble is None:
        pending = admin.pending_migrations(current_app.extensions["orion.migrations"])
        checks["database"] = "ok"
        checks["migrations"] = f"{len(pending)} pending" if pending else "ok"
        if pending:
            problems.append(f"migrations pending: {', '.join(pending)} (run orion db upgrade)")
    else:
        checks["database"] = checks["migrations"] = "unavailable"
        problems.append(f"database: {database_trouble}")
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        redis_trouble = _redis_problem(redis_url)
        checks["redis"] = "ok" if redis_trouble is None else "unavailable"
        if redis_trouble is not None:
            problems.append(f"redis: {redis_trouble}")
    for problem in problems:
        log.error("readiness check: %s", problem)
    failed = [name for name, result in checks.items() if result != "ok"]
    if failed:
        message = f"Not ready: {', '.join(f'{name} {checks[name]}' for name in failed)}."
        return json_response({"message": message, "checks": checks}, 503)
    return json_response({"message": "OK", "checks": checks})


def _redis_problem(url):
    """None when Redis at ``url`` answers a PING within a second, else what went wrong."""
    # Imported here: redis costs a tenth of a second at import, in every process that builds
    # the app (each flow run with no server among them), and only this check uses it.
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        return f"{type(error).__name__}: {error}"
    return None


@blp.get("/admin/version")
@blp.response(200, description="The server version string.")
def version():
    """The Orion server version."""
    return json_response(app.__version__)


@blp.get("/version")
@blp.response(200, description="The server version string.")
def server_version():
    """The Orion server version (Prefect 2.20's path for it)."""
    return json_response(app.__version__)


@blp.get("/csrf-token")
@blp.response(422, description="Always: this API has no CSRF protection.")
def csrf_token():
    """Prefect 2.20 asks for a CSRF token only when the server protects its API with them;
    this one does not (its dashboard's forms carry their own), so it answers as Prefect's
    server does with the protection off."""
    return json_response({"detail": "CSRF protection is disabled."}, 422)


@blp.get("/hello")
@blp.response(200, description="A greeting.")
def hello():
    """Say hello (a connectivity check that touches nothing)."""
    return json_response("👋")
