"""Logs: ``/api/logs``."""

from app.blueprints.api.common import Blueprint, json_response, replaces_nul_in
from app.schemas.actions import LogCreateSchema
from app.schemas.core import LogSchema, dump_log
from app.schemas.filters import LogFilterBody
from app.services import logs

blp = Blueprint("logs", __name__, url_prefix="/api/logs", description="Run logs.")


@blp.post("/")
@blp.arguments(LogCreateSchema(many=True))
@blp.response(201, description="The records were stored.")
@replaces_nul_in("message")
def create_logs(records):
    """Store a batch of log records (a JSON list), all or none.

    A batch is as large as the request size limit lets it be: Prefect's clients bound theirs
    in bytes (4 MB by default), not in records. A NUL character in a message, which neither
    database's text can hold, is stored as U+FFFD rather than the batch refused."""
    logs.create_logs(records)
    return json_response(None, 201)


@blp.post("/filter")
@blp.arguments(LogFilterBody)
@blp.response(200, LogSchema(many=True))
def filter_logs(body):
    """List logs matching filters, sorted and paged."""
    return json_response([dump_log(log) for log in logs.read_logs(body)])
