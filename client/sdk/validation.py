"""Flow parameters bound to the function's signature, validated and described by pydantic.

Binding follows Python's own rules (missing, unexpected and duplicated arguments are errors).
The values are then validated by one pydantic model of the signature
(:func:`parameters_model`: a field per parameter, its type hint and default), in pydantic's
lax mode: what pydantic coerces is coerced (``"3"`` → 3, an int where a float is expected,
``"true"`` → True, a list where a tuple or set is expected, ISO strings to dates and times, a
dict to a pydantic model or dataclass), ``Annotated`` constraints (``Field(gt=0)``) apply, and
anything else is refused. Values left at their defaults are not validated; unresolvable or
missing hints accept anything. A failure raises :class:`ParameterTypeError` naming the flow,
the parameter, what was expected and the value.

The same model writes the deployment's ``parameter_openapi_schema``
(:func:`client.sdk.deployments.parameter_schema`), so what a deployment describes is what a run
accepts. pydantic is imported on first use.
"""

from __future__ import annotations

import functools
import inspect
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from client.sdk.callables import split_parameters

# pydantic is imported on first use (DESIGN.md §2), so its types are not named in the
# annotations below: a "model" is a pydantic model class, an "error" one of its error dicts.

__all__ = ["ParameterTypeError", "validate_parameters", "parameters_model"]


class ParameterTypeError(TypeError):
    """A flow was called with parameters that do not fit its signature or type hints."""


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return repr(hint).replace("typing.", "")


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: the parameters are not checked
        return {}


@functools.lru_cache(maxsize=512)
def parameters_model(fn: Callable[..., Any]) -> tuple[Any, dict[str, str]]:
    """``(model, fields)``: a pydantic model of ``fn``'s named parameters (``*args`` and
    ``**kwargs`` left out) and the ``{parameter name: field name}`` it uses. Fields are
    aliased by the parameter's name, titled with it and carry its ``position``."""
    from pydantic import ConfigDict, Field, create_model

    hints = _hints(fn)
    fields: dict[str, Any] = {}
    names: dict[str, str] = {}
    for position, (name, param) in enumerate(inspect.signature(fn).parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        field = f"p{position}"  # any parameter name works, even one pydantic reserves
        names[name] = field
        fields[field] = (
            hints.get(name, typing.Any),
            Field(default, alias=name, title=name, json_schema_extra={"position": position}),
        )
    config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)
    return create_model("Parameters", __config__=config, **fields), names


# Endings of the pydantic error types that mean "not of the expected type".
_TYPE_ERRORS = (
    "_type",
    "_parsing",
    "_instance_of",
    "_from_float",
    "_from_datetime_inexact",
    "_class_of",
    "union_tag_invalid",
)


def _describe(error: Mapping[str, Any], hint: Any) -> tuple[str, str | None]:
    """``(what went wrong, pydantic's detail or None)`` for a pydantic error, in our words
    when it is about the parameter itself."""
    if error["loc"][1:]:
        where = "".join(
            f"[{part!r}]" if isinstance(part, str) else f"[{part}]" for part in error["loc"][1:]
        )
        return f"at {where}: {error['msg']}", None
    if error["type"] == "literal_error":
        return f"expected one of {list(typing.get_args(hint))!r}", None
    if not error["type"].endswith(_TYPE_ERRORS):  # a constraint: the type was right
        return error["msg"], None
    got = type(error["input"]).__name__
    return f"expected {_type_name(hint)}, got {got}", error["msg"]


def validate_parameters(
    fn: Callable[..., Any], parameters: Mapping[str, Any], flow_name: str
) -> dict[str, Any]:
    """Bind ``parameters`` (a name → value mapping) to ``fn``'s signature and validate each
    value against its type hint; return the bound parameters, coerced, defaults included.

    ``*args``/``**kwargs`` parameters keep their list/dict of values. Raises
    :class:`ParameterTypeError` with a message naming the flow and the parameter.
    """
    signature = inspect.signature(fn)
    positional, keywords = split_parameters(fn, parameters)
    known = set(signature.parameters)
    unexpected = sorted(n for n in parameters if n not in known)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if unexpected and not var_kw:
        raise ParameterTypeError(
            f"Flow {flow_name!r} got unexpected parameters: {', '.join(unexpected)}"
        )
    if var_kw:
        keywords.update({n: parameters[n] for n in unexpected})
    try:
        bound = signature.bind(*positional, **keywords)
    except TypeError as exc:
        raise ParameterTypeError(f"Flow {flow_name!r}: {exc}") from None
    bound.apply_defaults()
    hints = _hints(fn)
    to_check = {
        name: value
        for name, value in bound.arguments.items()
        if signature.parameters[name].kind
        not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and (
            signature.parameters[name].default is inspect.Parameter.empty
            or value is not signature.parameters[name].default
        )
    }
    if not any(hints.get(name, typing.Any) is not typing.Any for name in to_check):
        # Nothing to check: flows without type hints need no model (nor pydantic's import).
        return dict(bound.arguments)
    from pydantic import ValidationError

    model, fields = parameters_model(fn)
    try:
        checked = model.model_validate(to_check)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        name = str(error["loc"][0])  # the parameter: the model validates a dict by alias
        hint = model.model_fields[fields[name]].annotation if name in fields else typing.Any
        problem, detail = _describe(error, hint)
        raise ParameterTypeError(
            f"Flow {flow_name!r} parameter {name!r}: {problem} (value {to_check.get(name)!r:.200})"
            + (f": {detail}" if detail else "")
        ) from None
    result = dict(bound.arguments)
    result.update({name: getattr(checked, fields[name]) for name in to_check})
    return result


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The ``parameter_openapi_schema`` of ``fn``: the JSON schema of
    :func:`parameters_model` (``{"title": "Parameters", "type": "object", "properties":
    {...}, "required": [...]}``, models and dataclasses under ``$defs``). A parameter whose
    type has no JSON schema is described as accepting anything."""
    from pydantic.errors import PydanticInvalidForJsonSchema
    from pydantic.json_schema import PydanticJsonSchemaWarning

    model, _ = parameters_model(fn)
    with warnings.catch_warnings():
        # Defaults with no JSON form are left out of the schema, as pydantic warns.
        warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
        try:
            return model.model_json_schema(by_alias=True)
        except PydanticInvalidForJsonSchema:
            return _schema_field_by_field(model)


def _schema_field_by_field(model: Any) -> dict[str, Any]:
    from pydantic import ConfigDict, TypeAdapter
    from pydantic.errors import PydanticInvalidForJsonSchema

    config = ConfigDict(arbitrary_types_allowed=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    definitions: dict[str, Any] = {}
    for field in model.model_fields.values():
        # parameters_model gives every field an alias and a json_schema_extra dict.
        alias = typing.cast(str, field.alias)
        extra = typing.cast(dict[str, Any], field.json_schema_extra)
        hint: Any = (
            typing.Annotated[(field.annotation, *field.metadata)]
            if field.metadata
            else field.annotation
        )
        try:
            schema = TypeAdapter(hint, config=config).json_schema()
        except PydanticInvalidForJsonSchema:
            schema = {}
        definitions.update(schema.pop("$defs", {}))
        prop = {"title": field.title, **schema, **extra}
        if field.is_required():
            required.append(alias)
        else:
            try:
                prop["default"] = TypeAdapter(typing.Any).dump_python(field.default, mode="json")
            except Exception:  # a default with no JSON form is left out
                pass
        properties[alias] = prop
    result: dict[str, Any] = {"title": "Parameters", "type": "object", "properties": properties}
    if required:
        result["required"] = required
    if definitions:
        result["$defs"] = definitions
    return result
