"""Server-level endpoints: health, version, hello."""

import logging

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


@blp.get("/admin/version")
@blp.response(200, description="The server version string.")
def version():
    """The Orion server version."""
    return json_response(app.__version__)


@blp.get("/hello")
@blp.response(200, description="A greeting.")
def hello():
    """Say hello (a connectivity check that touches nothing)."""
    return json_response("👋")
