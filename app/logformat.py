"""Structured logs: ``ORION_LOG_FORMAT=json`` writes one JSON object per line.

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; inside a
request also ``request_id`` (the client's ``X-Request-ID`` when it is a short token, else one
made up for the request) and ``endpoint`` (the Flask endpoint name); ``exception`` holds a
traceback when there is one. ``text`` (the default) leaves logging as Python and gunicorn
set it up.
"""

import datetime
import json
import logging
import re
import sys
import uuid

LOG_FORMATS = ("text", "json")
_REQUEST_ID = "orion.request_id"
_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def check_log_format(value):
    """``value`` lowercased if it is one of :data:`LOG_FORMATS`; ValueError naming the
    setting otherwise."""
    fmt = str(value).strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"ORION_LOG_FORMAT={value!r}: use one of {', '.join(LOG_FORMATS)}")
    return fmt


def request_id(environ, header):
    """The request's id, made once per request: ``header`` (``X-Request-ID``) when it is a
    token of at most 64 safe characters, else a random hex id."""
    found = environ.get(_REQUEST_ID)
    if found is None:
        found = header if header and _TOKEN.match(header) else uuid.uuid4().hex
        environ[_REQUEST_ID] = found
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module docstring)."""

    def format(self, record):
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_request_fields())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def _request_fields():
    from flask import has_request_context, request

    if not has_request_context():
        return {}
    return {
        "request_id": request_id(request.environ, request.headers.get("X-Request-ID")),
        "endpoint": request.endpoint,
    }


def configure_logging(log_format):
    """With ``json``, send the root logger's records to stderr as JSON lines at INFO (once
    per process; a handler already there gets the JSON formatter instead)."""
    if check_log_format(log_format) != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


def gunicorn_logconfig(log_format):
    """gunicorn's ``logconfig_dict`` for ``log_format``: with ``json``, its own logs and the
    root logger's go to stderr as JSON lines; None leaves gunicorn's default."""
    if check_log_format(log_format) != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.logformat.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }
