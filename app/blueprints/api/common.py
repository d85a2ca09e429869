"""Helpers for the API blueprints: fast JSON responses and strict UUID path segments."""
import json
import uuid

from flask import current_app
from werkzeug.exceptions import UnprocessableEntity
from werkzeug.routing import BaseConverter


def json_response(data, status=200):
    """A JSON response built with the stdlib encoder (compact, no key sorting)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return current_app.response_class(body, status=status, mimetype="application/json")


def no_content():
    """An empty 204 response (PATCH and DELETE)."""
    return current_app.response_class(status=204)


class StrictUUIDConverter(BaseConverter):
    """``<uuid:...>`` path segments: a malformed id is a 422 naming the value, not a 404.

    Werkzeug's own converter declines to match a malformed id, which reads as "no such
    route". Raising an HTTP error here turns it into a validation error with Orion's body.
    """

    regex = r"[^/]+"

    def to_python(self, value):
        try:
            return uuid.UUID(value)
        except ValueError:
            error = UnprocessableEntity()
            error.data = {"messages": {"view_args": {"id": [f"{value!r} is not a valid UUID."]}}}
            raise error from None

    def to_url(self, value):
        return str(value)
