"""Administration: ``/api/admin/settings`` and ``/api/admin/database/{clear,drop,create}``
(``/api/admin/version`` is in ``root``).

The database operations are refused (403) unless ``ORION_ADMIN_DATABASE_ENABLED`` is true;
like every API call they need the API key when one is set. As in Prefect, a body without
``"confirm": true`` is a 400 and nothing happens.
"""

from flask import current_app
from marshmallow import fields

from app.blueprints.api.common import Blueprint, json_response, no_content
from app.schemas.base import OrionSchema
from app.services import admin

blp = Blueprint(
    "admin",
    __name__,
    url_prefix="/api/admin",
    description="Server settings and database administration.",
)


class ConfirmSchema(OrionSchema):
    confirm = fields.Boolean(
        load_default=False,
        metadata={"description": "Pass true to confirm you want to modify the database."},
    )


@blp.get("/settings")
@blp.response(200, description="Every ORION_* setting of this server, secrets obfuscated.")
def read_settings():
    """The server's settings, secret values shown as ********."""
    names = current_app.config["SETTING_NAMES"]
    return json_response(admin.settings_view(current_app.config, names))


def _database_operation(body, operation):
    if not current_app.config["ADMIN_DATABASE_ENABLED"]:
        return json_response(
            {
                "detail": "Database administration is disabled on this server "
                "(set ORION_ADMIN_DATABASE_ENABLED=true to allow it)."
            },
            403,
        )
    if not body["confirm"]:
        return json_response({"detail": 'Pass {"confirm": true} to modify the database.'}, 400)
    operation()
    return no_content()


@blp.post("/database/clear")
@blp.arguments(ConfirmSchema)
@blp.response(204)
@blp.alt_response(400, description="confirm was not true.")
@blp.alt_response(403, description="ORION_ADMIN_DATABASE_ENABLED is off.")
def clear_database(body):
    """Delete every row of every table, keeping the schema."""
    return _database_operation(body, admin.clear_database)


@blp.post("/database/drop")
@blp.arguments(ConfirmSchema)
@blp.response(204)
@blp.alt_response(400, description="confirm was not true.")
@blp.alt_response(403, description="ORION_ADMIN_DATABASE_ENABLED is off.")
def drop_database(body):
    """Drop every table (revert every migration)."""
    migrations = current_app.extensions["orion.migrations"]
    return _database_operation(body, lambda: admin.drop_database(migrations.downgrade))


@blp.post("/database/create")
@blp.arguments(ConfirmSchema)
@blp.response(204)
@blp.alt_response(400, description="confirm was not true.")
@blp.alt_response(403, description="ORION_ADMIN_DATABASE_ENABLED is off.")
def create_database(body):
    """Create every table (apply every pending migration)."""
    migrations = current_app.extensions["orion.migrations"]
    return _database_operation(body, lambda: admin.create_database(migrations.upgrade))
