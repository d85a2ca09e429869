"""The flask-smorest Api, with Orion's error envelope and the mapping of domain errors.

Error bodies follow Orion (ORION-REFERENCE.md §4):

- 422 ``{"exception_message", "exception_detail": [{"loc", "msg", "type"}], "request_body"}``
- 404 / 409 / 403 / 400 / 401 / 405 / 503 ``{"detail": "..."}``
- 500 ``{"exception_message": "Internal Server Error"}``

Database errors say whose fault they are, and never carry the driver's text (which names
hosts, ports, tables and values; the server log has it):

- a unique or foreign key rule broken by the request (``IntegrityError``): 409;
- a value the database cannot take (``DataError``: out of range, too long; PostgreSQL's
  "program limit exceeded", class 54, such as an index row too large; Python's
  ``OverflowError`` from a driver binding a number): 422;
- a lost or refused connection, a deadlock, a timeout (``OperationalError``,
  ``InterfaceError``): 503 "Database unavailable" with ``Retry-After``; the client retries.

A 422 echoes the request body only when it is small (``limits.ECHO_MAX_BYTES``; otherwise a
short excerpt of its text), and cuts every message and location part to an excerpt, at most
``limits.ERROR_DETAILS_MAX`` of them: a 10 MB request never gets a 10 MB reply. A 405 carries
``Allow``.
"""

import logging
import threading

from flask import request
from flask_smorest import Api
from peewee import DataError, IntegrityError, InterfaceError, OperationalError

from app.exceptions import (
    Conflict,
    EncryptionKeyMismatch,
    Forbidden,
    InvalidData,
    ObjectNotFound,
    TooLarge,
)
from app.schemas import limits
from app.schemas.errors import ErrorSchema

log = logging.getLogger(__name__)

# Requests whose bodies may hold secrets (block document data): a 422 never echoes them.
SENSITIVE_BODY_PREFIXES = ("/api/block_documents",)

_LOCATIONS = {"json": "body", "query": "query", "view_args": "path", "headers": "header"}


def _short(part):
    return limits.excerpt(part) if isinstance(part, str) else part


def flatten_validation_errors(messages):
    """Turn webargs' nested ``{location: {field: [msg]}}`` into Orion's flat detail list:
    at most ``ERROR_DETAILS_MAX`` entries (then one saying how many more), every message and
    location part cut to an excerpt."""
    detail = []
    skipped = 0

    def add(loc, message):
        nonlocal skipped
        if len(detail) >= limits.ERROR_DETAILS_MAX:
            skipped += 1
            return
        entry = {"loc": [_short(p) for p in loc], "msg": _short(message), "type": "value_error"}
        detail.append(entry)

    def walk(node, loc):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, loc + [key])
        elif isinstance(node, list) and all(isinstance(m, str) for m in node):
            for message in node:
                add(loc, message)
        elif isinstance(node, list):
            for item in node:
                walk(item, loc)
        else:
            add(loc, str(node))

    for location, errors in (messages or {}).items():
        walk(errors, [_LOCATIONS.get(location, location)])
    if skipped:
        detail.append(
            {"loc": ["body"], "msg": f"... and {skipped} more errors.", "type": "value_error"}
        )
    return detail


def _request_body():
    """The request body to echo in a 422: parsed if small and not sensitive, else an excerpt
    of its text, or None."""
    if not request.is_json or request.path.startswith(SENSITIVE_BODY_PREFIXES):
        return None
    if (
        request.max_content_length is not None
        and (request.content_length or 0) > request.max_content_length
    ):
        return None  # a body past the size limit is never read (reading it would raise 413)
    if (request.content_length or 0) > limits.ECHO_MAX_BYTES:
        head = request.get_data(cache=True)[: limits.EXCERPT_CHARS]
        return limits.excerpt(head.decode("utf-8", "replace")) + " ..."
    return request.get_json(silent=True)


def validation_error(detail):
    """The 422 response body Orion gives for a request it cannot accept."""
    return {
        "exception_message": "Invalid request received.",
        "exception_detail": detail,
        "request_body": _request_body(),
    }


class OrionApi(Api):
    """flask-smorest Api with Orion-shaped error bodies and domain-error handlers, whose API
    document is built on first use.

    flask-smorest documents each blueprint as it registers it: a third of a second of
    deep-copying and resolving schemas in every process that builds the app (each ``orion
    start`` worker, each flow run with no server, each test app), for a document most of them
    never serve. Here ``register_blueprint`` only registers the routes; the first read of
    ``spec`` (``/api/openapi.json``, ``/docs``, ``/redoc``, the ``openapi`` command) documents
    the blueprints, in registration order, so the document is the one flask-smorest builds.
    """

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, *args, **kwargs):
        self._documenting = threading.Lock()
        super().__init__(*args, **kwargs)

    @property
    def spec(self):
        """The app's API document, with every registered blueprint in it."""
        if self._undocumented:
            with self._documenting:
                while self._undocumented:
                    blueprint, name, parameters = self._undocumented[0]
                    blueprint.register_views_in_doc(
                        self, self._app, self._spec, name=name, parameters=parameters
                    )
                    self._spec.tag({"name": name, "description": blueprint.description})
                    del self._undocumented[0]
        return self._spec

    @spec.setter
    def spec(self, spec):
        # flask-smorest sets it in ``__init__`` and, for each app, in ``init_app`` (after
        # ``_app``): a new document starts with no blueprint in it, so every blueprint
        # waiting for it belongs to ``_app``.
        self._spec = spec
        self._undocumented = []

    def register_blueprint(self, blp, *, parameters=None, **options):
        """Register ``blp``'s routes in the app; its documentation waits for ``spec``."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    def handle_http_exception(self, error):
        data = getattr(error, "data", None) or {}
        headers = data.get("headers") or {}
        if error.code in (400, 422) and "messages" in data:
            return validation_error(flatten_validation_errors(data["messages"])), 422, headers
        if error.code == 500:
            return {"exception_message": "Internal Server Error"}, 500
        if error.code == 405 and getattr(error, "valid_methods", None):
            headers = {**headers, "Allow": ", ".join(error.valid_methods)}
        return {"detail": data.get("message") or error.description}, error.code, headers

    def _register_error_handlers(self):
        super()._register_error_handlers()
        app = self._app
        app.register_error_handler(ObjectNotFound, lambda e: ({"detail": str(e)}, 404))
        app.register_error_handler(Conflict, lambda e: ({"detail": str(e)}, 409))
        app.register_error_handler(Forbidden, lambda e: ({"detail": str(e)}, 403))
        app.register_error_handler(TooLarge, lambda e: ({"detail": str(e)}, 400))
        app.register_error_handler(InvalidData, _invalid_data)
        app.register_error_handler(EncryptionKeyMismatch, _key_mismatch)
        app.register_error_handler(IntegrityError, _integrity_error)
        app.register_error_handler(DataError, _data_error)
        app.register_error_handler(OverflowError, _data_error)
        app.register_error_handler(OperationalError, _operational_error)
        app.register_error_handler(InterfaceError, _database_unavailable)


def _invalid_data(error):
    return validation_error([{"loc": error.loc, "msg": str(error), "type": "value_error"}]), 422


def _key_mismatch(error):
    log.error("encryption key mismatch: %s", error)
    return {"detail": str(error)}, 503


DATABASE_UNAVAILABLE = "Database unavailable: the server could not reach its database; try again."
# PostgreSQL error classes an OperationalError may carry that the request caused.
_INPUT_PG_CLASSES = ("54",)  # program limit exceeded


def _integrity_error(error):
    log.info("integrity conflict on %s %s: %s", request.method, request.path, error)
    return {
        "detail": "The request conflicts with existing data (a unique name or key, or a "
        "reference to an object that does not exist)."
    }, 409


def _data_error(error):
    log.info("value refused by the database on %s %s: %s", request.method, request.path, error)
    detail = [
        {
            "loc": ["body"],
            "msg": "A value in the request is out of the range or size the database stores.",
            "type": "value_error",
        }
    ]
    return validation_error(detail), 422


def _operational_error(error):
    original = error.args[0] if error.args else None
    code = getattr(original, "pgcode", None) or ""
    if code.startswith(_INPUT_PG_CLASSES):
        return _data_error(error)
    return _database_unavailable(error)


def _database_unavailable(error):
    log.error("database unavailable: %s", str(error).strip())
    return {"detail": DATABASE_UNAVAILABLE}, 503, {"Retry-After": "1"}


api = OrionApi()

__all__ = ["api", "OrionApi", "flatten_validation_errors", "validation_error"]
