"""Flow parameters bound to the function's signature and checked against its type hints.

Binding follows Python's own rules (missing, unexpected and duplicated arguments are errors).
Each value whose parameter has a type hint is then checked, with the few lossless coercions a
flow run's JSON parameters need: an int where a float is expected, a numeric string where a
number is expected ("3" → 3), "true"/"false" for a bool, a list where a tuple or set is
expected and an ISO string for a date, time or datetime. Everything else must already have the
hinted type. Understood hints: plain classes, ``Any``, ``Optional``/``Union``/``X | Y``,
``Literal``, ``list[X]``, ``tuple[X, ...]``/``tuple[X, Y]``, ``set[X]``, ``dict[K, V]`` and
their ``typing`` aliases; any other hint is not checked. A failure raises
:class:`ParameterTypeError` naming the flow, the parameter, the expected type and the value.
"""
import datetime
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from client.sdk.callables import split_parameters


class ParameterTypeError(TypeError):
    """A flow was called with parameters that do not fit its signature or type hints."""


class _Mismatch(Exception):
    """Internal: the value does not fit the hint (message says how)."""


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return repr(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` (possibly converted); raises _Mismatch if it does not fit."""
    if hint is typing.Any or hint is inspect.Parameter.empty or isinstance(hint, typing.TypeVar):
        return value
    if hint is None or hint is type(None):
        if value is None:
            return None
        raise _Mismatch(f"expected None, got {type(value).__name__}")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        for option in args:
            try:
                return _coerce(value, option)
            except _Mismatch:
                continue
        raise _Mismatch(f"expected {_type_name(hint)}, got {type(value).__name__}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch(f"expected one of {list(args)!r}")
    if origin in (list, set, frozenset, tuple, dict):
        return _coerce_container(value, hint, origin, args)
    if origin is not None or not isinstance(hint, type):
        return value  # hints we do not understand (Callable, Annotated, ...) are not checked
    return _coerce_scalar(value, hint)


def _coerce_container(value: Any, hint: Any, origin: Any, args: tuple[Any, ...]) -> Any:
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch(f"expected {_type_name(hint)}, got {type(value).__name__}")
        if not args:
            return value
        return {_coerce(k, args[0]): _coerce(v, args[1]) for k, v in value.items()}
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise _Mismatch(f"expected {_type_name(hint)}, got {type(value).__name__}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise _Mismatch(f"expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a) for v, a in zip(value, args))
    item_hint = args[0] if args else typing.Any
    return origin(_coerce(v, item_hint) for v in value)


def _coerce_scalar(value: Any, hint: Any) -> Any:
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            if hint in (int, float):
                return hint(value)
            if hint is bool and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if hint in (datetime.datetime, datetime.date, datetime.time):
                return hint.fromisoformat(value)
        except ValueError:
            pass
    if hint in (tuple, set, frozenset) and isinstance(value, list):
        return hint(value)
    raise _Mismatch(f"expected {_type_name(hint)}, got {type(value).__name__}")


def validate_parameters(fn: Callable[..., Any], parameters: Mapping[str, Any],
                        flow_name: str) -> dict[str, Any]:
    """Bind ``parameters`` (a name → value mapping) to ``fn``'s signature and check each
    value against its type hint; return the bound parameters, coerced, defaults included.

    ``*args``/``**kwargs`` parameters keep their list/dict of values. Raises
    :class:`ParameterTypeError` with a message naming the flow and the parameter.
    """
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    positional, keywords = split_parameters(fn, parameters)
    known = set(signature.parameters)
    unexpected = sorted(n for n in parameters if n not in known)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if unexpected and not var_kw:
        raise ParameterTypeError(
            f"Flow {flow_name!r} got unexpected parameters: {', '.join(unexpected)}")
    if var_kw:
        keywords.update({n: parameters[n] for n in unexpected})
    try:
        bound = signature.bind(*positional, **keywords)
    except TypeError as exc:
        raise ParameterTypeError(f"Flow {flow_name!r}: {exc}") from None
    bound.apply_defaults()
    result = {}
    for name, value in bound.arguments.items():
        param = signature.parameters[name]
        hint = hints.get(name, inspect.Parameter.empty)
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or (
                value is param.default and param.default is not inspect.Parameter.empty):
            result[name] = value
            continue
        try:
            result[name] = _coerce(value, hint)
        except _Mismatch as exc:
            raise ParameterTypeError(
                f"Flow {flow_name!r} parameter {name!r}: {exc} (value {value!r:.200})"
            ) from None
    return result
