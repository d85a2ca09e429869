"""The custom run form: fields generated from a deployment's ``parameter_openapi_schema``.

The schema is the JSON schema Prefect writes for a flow's signature: an object whose
``properties`` each have a ``type`` (string, integer, number, boolean, array, object), maybe an
``enum``, ``default``, ``title`` and ``description``, or a ``$ref``/``allOf`` to a definition
(how Prefect describes enums; pydantic 2's ``$defs`` and pydantic 1's ``definitions`` both
resolve), or an ``anyOf`` of one schema and ``null`` (an optional value, as pydantic 2 writes
it; the field follows that schema). Each property becomes one field; arrays, objects and anything
without a simple type are JSON text areas. A deployment without a schema gets one JSON text
area for the whole parameters object.

The same fields serve block documents (a block schema is such a schema too): a property that is
another block (its definition has a ``block_type_slug``) is a ``block`` field whose ``choices``
the caller fills with ``(document id, label)`` pairs, read back as a block reference; a secret
(``format: password`` or ``writeOnly``, as pydantic writes ``SecretStr``) is marked ``secret``.

Fields are prefilled with the deployment's parameter, else the schema's default. A field left
empty is not sent, so the deployment's (or the flow's) default applies; a required one without
a deployment default must be filled.
"""

import json
import math
from dataclasses import dataclass, field

FIELD_PREFIX = "param."
ALL_PARAMETERS = "parameters"
_SIMPLE = ("string", "integer", "number", "boolean")


@dataclass
class Field:
    """One form field: ``kind`` is string, integer, number, boolean, enum, json or block."""

    name: str
    label: str
    kind: str
    required: bool
    description: str = ""
    choices: list = field(default_factory=list)
    json_type: str = ""
    value: str = ""
    error: str = ""
    whole: bool = False  # the one field holding every parameter (no schema)
    secret: bool = False
    block_type: str = ""  # a block field's block type slug

    @property
    def input_name(self):
        return FIELD_PREFIX + self.name

    @property
    def options(self):
        """An enum's choices as ``(option value: the JSON text, label)``."""
        return [(json.dumps(choice), str(choice)) for choice in self.choices]


def _resolve(prop, schema):
    """``prop`` with a ``$ref`` (or a one-item ``allOf`` of one) to the schema's definitions
    merged in; the property's own keys (title, default) win."""
    ref = prop.get("$ref")
    if ref is None and isinstance(prop.get("allOf"), list) and len(prop["allOf"]) == 1:
        ref = (prop["allOf"][0] or {}).get("$ref")
    if not isinstance(ref, str):
        return prop
    target = schema
    for part in ref.lstrip("#/").split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    if not isinstance(target, dict):
        return prop
    return {**target, **{k: v for k, v in prop.items() if k not in ("$ref", "allOf")}}


def _field_schema(prop, schema):
    """The schema a field follows: ``prop`` with its reference resolved, and an optional
    value (``anyOf`` one schema or ``null``, as pydantic 2 writes ``Optional[X]``) as that one
    schema, itself resolved through the schema's ``$defs``/``definitions``."""
    prop = _resolve(prop, schema)
    options = prop.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if len(kept) == 1 and len(kept) < len(options):
            inner = _resolve(kept[0], schema)
            return {**inner, **{k: v for k, v in prop.items() if k != "anyOf"}}
    return prop


def _json_type(prop):
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else ""


def _as_text(kind, value):
    if value is None:
        return ""
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("integer", "number") and not isinstance(value, bool):
        return str(value)
    if kind == "enum":
        return json.dumps(value)
    if kind == "block":
        return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False)


def form_fields(schema, defaults, merged=True):
    """The form's fields for a parameter schema, prefilled from ``defaults`` (the
    deployment's parameters) or the schema's defaults; in ``position`` order if given.

    ``merged``: the values sent are merged over ``defaults`` (a custom run), so a required
    parameter ``defaults`` sets may be left empty; False when they replace ``defaults`` (the
    edit form), where only the schema's own default makes a parameter optional."""
    properties = (schema or {}).get("properties")
    if not isinstance(properties, dict) or not properties:
        return [
            Field(
                ALL_PARAMETERS,
                "Parameters (a JSON object)",
                "json",
                False,
                "This deployment has no parameter schema: give the parameters as one "
                "JSON object; "
                + ("they are merged over the deployment's." if merged else "they replace them."),
                json_type="object",
                value=_as_text("json", defaults or {}),
                whole=True,
            )
        ]
    required = set((schema or {}).get("required") or ())
    ordered = sorted(
        properties.items(),
        key=lambda item: (
            item[1].get("position", math.inf) if isinstance(item[1], dict) else math.inf
        ),
    )
    fields = []
    for name, raw in ordered:
        prop = _field_schema(raw if isinstance(raw, dict) else {}, schema)
        json_type = _json_type(prop)
        if isinstance(prop.get("block_type_slug"), str):
            kind = "block"
        elif isinstance(prop.get("enum"), list) and prop["enum"]:
            kind = "enum"
        elif json_type in _SIMPLE:
            kind = json_type
        else:
            kind = "json"
        if name in defaults:
            value = defaults[name]
        else:
            value = prop.get("default")
        fields.append(
            Field(
                name,
                prop.get("title") or name,
                kind,
                name in required and not (merged and name in defaults) and "default" not in prop,
                prop.get("description") or "",
                list(prop.get("enum") or ()),
                json_type,
                _as_text(kind, value),
                secret=prop.get("format") == "password" or bool(prop.get("writeOnly")),
                block_type=prop["block_type_slug"] if kind == "block" else "",
            )
        )
    return fields


def _parse(field_, raw):
    """The value of one filled field; ValueError with the message to show next to it."""
    kind = field_.kind
    if kind == "string":
        return raw
    text = raw.strip()
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("Enter a whole number, such as 42.") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("Enter a number, such as 2.5.") from None
        if not math.isfinite(number):
            raise ValueError("Enter a finite number.")
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValueError("Choose true or false.")
        return text == "true"
    if kind == "block":
        if text not in {choice for choice, _ in field_.choices}:
            raise ValueError("Choose one of the listed blocks.")
        return {"$ref": {"block_document_id": text}}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"Not valid JSON: {error}.") from None
    if kind == "enum":
        if value not in field_.choices:
            raise ValueError("Choose one of the listed values.")
        return value
    expected = {"array": list, "object": dict}.get(field_.json_type)
    if expected is not None and not isinstance(value, expected):
        raise ValueError(f"Enter a JSON {'list' if expected is list else 'object'}.")
    return value


def read_parameters(fields, form):
    """The parameters the form sets: ``(parameters, has_errors)``. Each field keeps the text
    sent (to show it again) and gets its ``error``, if any."""
    parameters, has_errors = {}, False
    for field_ in fields:
        raw = form.get(field_.input_name, "")
        field_.value, field_.error = raw, ""
        if raw.strip() == "":
            if field_.required:
                field_.error = "Required: this parameter has no default."
                has_errors = True
            continue
        try:
            value = _parse(field_, raw)
        except ValueError as error:
            field_.error = str(error)
            has_errors = True
            continue
        if field_.whole:
            parameters.update(value)
        else:
            parameters[field_.name] = value
    return parameters, has_errors
