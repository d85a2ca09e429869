"""Logs: ``/api/logs``."""

from flask import current_app
from flask_smorest import abort

from app.blueprints.api.common import Blueprint, json_response
from app.schemas.actions import LogCreateSchema
from app.schemas.core import LogSchema, dump_log
from app.schemas.filters import LogFilterBody
from app.services import logs

blp = Blueprint("logs", __name__, url_prefix="/api/logs", description="Run logs.")


@blp.post("/")
@blp.arguments(LogCreateSchema(many=True))
@blp.response(201, description="The records were stored.")
def create_logs(records):
    """Store a batch of log records (a JSON list)."""
    limit = current_app.config["API_LOGS_MAX_BATCH"]
    if len(records) > limit:
        message = f"At most {limit} log records per call; got {len(records)}."
        abort(422, messages={"json": [message]})
    logs.create_logs(records)
    return json_response(None, 201)


@blp.post("/filter")
@blp.arguments(LogFilterBody)
@blp.response(200, LogSchema(many=True))
def filter_logs(body):
    """List logs matching filters, sorted and paged."""
    return json_response([dump_log(log) for log in logs.read_logs(body)])
