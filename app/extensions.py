"""The flask-smorest Api, with Orion's error envelope and the mapping of domain errors.

Error bodies follow Orion (ORION-REFERENCE.md §4):

- 422 ``{"exception_message", "exception_detail": [{"loc", "msg", "type"}], "request_body"}``
- 404 / 409 / 403 / 400 / 401 / 503 ``{"detail": "..."}``
- 500 ``{"exception_message": "Internal Server Error"}``
"""

import logging

from flask import request
from flask_smorest import Api
from peewee import IntegrityError, InterfaceError, OperationalError

from app.exceptions import (
    Conflict,
    EncryptionKeyMismatch,
    Forbidden,
    InvalidData,
    ObjectNotFound,
)
from app.schemas.errors import ErrorSchema

log = logging.getLogger(__name__)

# Requests whose bodies may hold secrets (block document data): a 422 never echoes them.
SENSITIVE_BODY_PREFIXES = ("/api/block_documents",)

_LOCATIONS = {"json": "body", "query": "query", "view_args": "path", "headers": "header"}


def flatten_validation_errors(messages):
    """Turn webargs' nested ``{location: {field: [msg]}}`` into Orion's flat detail list."""
    detail = []

    def walk(node, loc):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, loc + [key])
        elif isinstance(node, list) and all(isinstance(m, str) for m in node):
            for message in node:
                detail.append({"loc": loc, "msg": message, "type": "value_error"})
        elif isinstance(node, list):
            for item in node:
                walk(item, loc)
        else:
            detail.append({"loc": loc, "msg": str(node), "type": "value_error"})

    for location, errors in (messages or {}).items():
        walk(errors, [_LOCATIONS.get(location, location)])
    return detail


def _request_body():
    if not request.is_json or request.path.startswith(SENSITIVE_BODY_PREFIXES):
        return None
    return request.get_json(silent=True)


def validation_error(detail):
    """The 422 response body Orion gives for a request it cannot accept."""
    return {
        "exception_message": "Invalid request received.",
        "exception_detail": detail,
        "request_body": _request_body(),
    }


class OrionApi(Api):
    """flask-smorest Api with Orion-shaped error bodies and domain-error handlers."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        data = getattr(error, "data", None) or {}
        headers = data.get("headers") or {}
        if error.code in (400, 422) and "messages" in data:
            return validation_error(flatten_validation_errors(data["messages"])), 422, headers
        if error.code == 500:
            return {"exception_message": "Internal Server Error"}, 500
        return {"detail": data.get("message") or error.description}, error.code, headers

    def _register_error_handlers(self):
        super()._register_error_handlers()
        app = self._app
        app.register_error_handler(ObjectNotFound, lambda e: ({"detail": str(e)}, 404))
        app.register_error_handler(Conflict, lambda e: ({"detail": str(e)}, 409))
        app.register_error_handler(Forbidden, lambda e: ({"detail": str(e)}, 403))
        app.register_error_handler(InvalidData, _invalid_data)
        app.register_error_handler(EncryptionKeyMismatch, _key_mismatch)
        app.register_error_handler(IntegrityError, _integrity_error)
        app.register_error_handler(OperationalError, _database_unavailable)
        app.register_error_handler(InterfaceError, _database_unavailable)


def _invalid_data(error):
    return validation_error([{"loc": error.loc, "msg": str(error), "type": "value_error"}]), 422


def _key_mismatch(error):
    log.error("encryption key mismatch: %s", error)
    return {"detail": str(error)}, 503


def _integrity_error(error):
    log.info("integrity conflict: %s", error)
    return {"detail": "The request conflicts with existing data: " + str(error).strip()}, 409


def _database_unavailable(error):
    log.error("database unavailable: %s", error)
    return {"detail": f"Database unavailable: {str(error).strip()}"}, 503


api = OrionApi()

__all__ = ["api", "OrionApi", "flatten_validation_errors", "validation_error"]
