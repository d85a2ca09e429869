"""Helpers for the API blueprints: the Blueprint class, fast JSON responses, strict UUIDs."""

import json
import uuid

import flask_smorest
from flask import current_app
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import UnprocessableEntity
from werkzeug.routing import BaseConverter

from app.schemas import json_body

NUL_MESSAGE = "Strings must not contain NUL (\\u0000) characters."


def _contains_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def replaces_nul_in(*keys):
    """Mark a view whose body's records (the body, or each item of a list body) may carry NUL
    characters in the string values of ``keys``: each becomes U+FFFD instead of the body
    being refused. For text that is kept for people to read, where refusing loses more than
    the character (a log batch: a Prefect client drops a refused batch whole).

    Put it below flask-smorest's decorators, on the function itself: their wrappers copy its
    attributes (``functools.wraps``), so the registered view carries the mark."""

    def mark(view):
        view.replaces_nul_in = keys
        return view

    return mark


def _replace_nul(data, keys):
    records = data if isinstance(data, list) else [data]
    for record in records:
        if isinstance(record, dict):
            for key in keys:
                if isinstance(record.get(key), str):
                    record[key] = record[key].replace("\x00", "\ufffd")


class OrionArgumentsParser(FlaskParser):
    """webargs parser that reads bodies with the strict parser of
    :mod:`app.schemas.json_body` (NaN, Infinity and deep nesting are a 422 saying so), and
    refuses JSON bodies holding NUL characters (422), but where the view says
    (:func:`replaces_nul_in`).

    PostgreSQL cannot store NUL in text or JSON, so such a body would fail at the database.
    The escape can only be in the raw text if a NUL is in the data, so the full walk runs
    only for the rare body that may hold one.
    """

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        if not raw:
            return core.missing
        try:
            data = json_body.loads(raw)
        except json_body.JSONBodyError as error:
            abort(422, messages={"json": [str(error)]})
        if b"\\u0000" in raw and _contains_nul(data):
            view = current_app.view_functions.get(req.endpoint)
            _replace_nul(data, getattr(view, "replaces_nul_in", ()))
            if _contains_nul(data):
                abort(422, messages={"json": [NUL_MESSAGE]})
        return data


class Blueprint(flask_smorest.Blueprint):
    """The flask-smorest Blueprint every API resource uses: Orion's argument parser, and
    each view's documentation stored when the API document is built, not at import.

    flask-smorest deep-copies a view's documentation (schema instances included) as its
    route is declared; with ``app.extensions.OrionApi`` building the document on first use,
    a process that never serves it need not pay that either.
    """

    ARGUMENTS_PARSER = OrionArgumentsParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._views_to_document = []

    def _store_endpoint_docs(self, endpoint, obj, parameters, tags, **options):
        self._views_to_document.append((endpoint, obj, parameters, tags, options))

    def register_views_in_doc(self, api, app, spec, *, name, parameters):
        """Store the documentation of the views declared since the last call, then
        document them all in ``spec`` (flask-smorest's)."""
        pending, self._views_to_document = self._views_to_document, []
        for endpoint, obj, route_parameters, tags, options in pending:
            super()._store_endpoint_docs(endpoint, obj, route_parameters, tags, **options)
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)

    def arguments(self, schema, *args, **kwargs):
        """As flask-smorest's, but a schema class is instantiated once, here: webargs would
        build a new instance (deep-copying every field) on each request."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)


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
