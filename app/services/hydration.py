"""Prefect 2.20's placeholders in JSON values, replaced by what they stand for ("hydration").

Prefect's UI and clients may send, anywhere inside a value, an object carrying
``"__prefect_kind"``:

- ``{"__prefect_kind": "none", "value": v}``: ``v`` (itself hydrated);
- ``{"__prefect_kind": "json", "value": text}``: ``text`` parsed as JSON;
- ``{"__prefect_kind": "jinja", "template": text}``: the template rendered (sandboxed, with no
  variables);
- ``{"__prefect_kind": "workspace_variable", "variable_name": name}``: that variable's value.

A ``json`` or ``workspace_variable`` object with nothing to hydrate is dropped from its parent
(the UI's empty inputs), an object of any other kind stands for its ``value``; as Prefect's
server does (``prefect.utilities.schema_tools.hydration``). A placeholder that cannot be
hydrated raises :class:`HydrationError` saying why.
"""

import json
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app.models import Variable

KIND = "__prefect_kind"
_DROP = object()  # what an empty placeholder hydrates to: removed from its parent


class HydrationError(ValueError):
    """A placeholder that cannot be hydrated; the message says which and why."""


def hydrate(value: Any) -> Any:
    """``value`` with every placeholder replaced; ``{}`` if ``value`` itself is an empty one.
    Reads variables only if a ``workspace_variable`` placeholder names one."""
    hydrated = _hydrate(value)
    return {} if hydrated is _DROP else hydrated


def _hydrate(value: Any) -> Any:
    if isinstance(value, dict) and KIND in value:
        return _placeholder(value.get(KIND), value)
    if isinstance(value, dict):
        items = ((key, _hydrate(item)) for key, item in value.items())
        return {key: item for key, item in items if item is not _DROP}
    if isinstance(value, list):
        return [item for item in map(_hydrate, value) if item is not _DROP]
    return value


def _placeholder(kind: Any, value: dict[str, Any]) -> Any:
    if kind == "none":
        if "value" not in value:
            raise HydrationError("Missing 'value' key in __prefect object")
        return _hydrate(value["value"])
    if kind == "json":
        if "value" not in value:
            return _DROP
        text = value["value"]
        text = _hydrate(text) if isinstance(text, dict) else text
        try:
            return json.loads(text)
        except (ValueError, TypeError) as error:
            raise HydrationError(f"Invalid JSON: {error}") from None
    if kind == "jinja":
        if "template" not in value:
            raise HydrationError("Missing 'template' key in __prefect object")
        template = value["template"]
        template = _hydrate(template) if isinstance(template, dict) else template
        try:
            return ImmutableSandboxedEnvironment().from_string(str(template)).render()
        except TemplateError as error:
            raise HydrationError(f"Invalid jinja: {error}") from None
    if kind == "workspace_variable":
        if "variable_name" not in value:
            return _DROP
        name = value["variable_name"]
        name = _hydrate(name) if isinstance(name, dict) else name
        variable = Variable.select(Variable.value).where(Variable.name == name).first()
        if variable is None:
            raise HydrationError(f"Variable {name!r} not found in workspace.")
        return variable.value
    return value.get("value")
