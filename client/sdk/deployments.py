"""Building a deployment from a flow's code: its entrypoint, parameter schema and storage.

``orion deployment create path/to/file.py:flow_function`` loads the flow with the loader the
agent's runner uses (:func:`client.agent.run.load_flow`), so what is deployed is exactly what will
run. The parameter schema is an OpenAPI/JSON schema of the function's signature, shaped as
Prefect 2's ``parameter_openapi_schema`` (``{"title": "Parameters", "type": "object",
"properties": {...}, "required": [...]}``, each property with its ``title``, ``position``,
type and JSON default).
"""
from __future__ import annotations

import datetime
import inspect
import json
import os
import types
import typing
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client.agent.run import FlowLoadError, load_flow

if TYPE_CHECKING:
    from client.sdk.flows import Flow

_SCALARS = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "format": "binary"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    datetime.datetime: {"type": "string", "format": "date-time"},
    datetime.date: {"type": "string", "format": "date"},
    datetime.time: {"type": "string", "format": "time"},
    datetime.timedelta: {"type": "number", "format": "time-delta"},
    type(None): {"type": "null"},
}
# Folders never uploaded with a flow's code.
_SKIPPED_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules"}


def hint_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of a type hint ({} for a missing or unknown one: anything)."""
    if hint is inspect.Parameter.empty or hint is typing.Any:
        return {}
    if hint is None:
        hint = type(None)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [hint_schema(arg) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, set, frozenset, tuple) or hint in (list, set, frozenset, tuple):
        schema: dict[str, Any] = {"type": "array"}
        if origin is tuple and args and args[-1] is not Ellipsis:
            schema.update(prefixItems=[hint_schema(a) for a in args], minItems=len(args),
                          maxItems=len(args))
        elif args:
            schema["items"] = hint_schema(args[0])
        if (origin or hint) in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if origin is dict or hint is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = hint_schema(args[1])
        return schema
    return dict(_SCALARS.get(hint, {}))


def _json_default(value: Any) -> Any:
    """``value`` as JSON, or None when it has no JSON form (the default is then left out)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        if isinstance(value, (datetime.date, datetime.time, uuid.UUID)):
            return value.isoformat() if hasattr(value, "isoformat") else str(value)
        return None
    return value


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The ``parameter_openapi_schema`` of a flow function: one property per parameter
    (``*args``/``**kwargs`` left out), required when it has no default."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: describe the parameters untyped
        hints = {}
    properties, required = {}, []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.KEYWORD_ONLY)
    for position, (name, param) in enumerate(inspect.signature(fn).parameters.items()):
        if param.kind not in positional:
            continue
        prop = {"title": name, "position": position,
                **hint_schema(hints.get(name, inspect.Parameter.empty))}
        if param.default is inspect.Parameter.empty:
            required.append(name)
        else:
            default = _json_default(param.default)
            if default is not None or param.default is None:
                prop["default"] = default
        properties[name] = prop
    schema = {"title": "Parameters", "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def load_entrypoint(entrypoint: str) -> tuple[Flow, str, str]:
    """``(flow, folder, relative_entrypoint)`` for ``path/to/file.py:flow_function``: the
    @flow object, the folder holding the file and the entrypoint relative to it. Raises
    FlowLoadError saying what is wrong."""
    file_part, sep, name = entrypoint.rpartition(":")
    if not sep or not file_part.endswith(".py") or not name.isidentifier():
        raise FlowLoadError(f"Entrypoint {entrypoint!r} must look like "
                            "'path/to/file.py:flow_function'.")
    path = os.path.abspath(file_part)
    if not os.path.isfile(path):
        raise FlowLoadError(f"No such file: {file_part!r}.")
    folder = os.path.dirname(path)
    relative = f"{os.path.basename(path)}:{name}"
    return load_flow(folder, relative), folder, relative


def upload_code(folder: str, entrypoint: str, storage: str, whole_folder: bool = True) -> int:
    """Copy the flow's code to ``storage`` (an fsspec URL or a local path): the whole
    ``folder`` (caches and virtual environments left out), or with ``whole_folder=False`` only
    the entrypoint's file. Returns the number of files written."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(storage)
    root = root.rstrip("/")
    if whole_folder:
        files: list[str] = []
        for directory, subdirs, names in os.walk(folder):
            subdirs[:] = sorted(d for d in subdirs if d not in _SKIPPED_DIRS)
            files.extend(os.path.join(directory, n) for n in sorted(names)
                         if not n.endswith(".pyc"))
    else:
        files = [os.path.join(folder, entrypoint.rpartition(":")[0])]
    for local in files:
        target = f"{root}/{os.path.relpath(local, folder).replace(os.sep, '/')}"
        fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        fs.put_file(local, target)
    return len(files)
