"""Binding a call's arguments to a function's parameters, and calling it back with them."""

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def bind_arguments(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The call ``fn(*args, **kwargs)`` as a name → value mapping (defaults included;
    ``*args`` as a tuple and ``**kwargs`` as a dict under their own names). TypeError if
    the call does not fit the signature."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def call_with_parameters(fn: Callable[..., Any], parameters: Mapping[str, Any]) -> Any:
    """Call ``fn`` with a mapping made by :func:`bind_arguments` (or validated from one)."""
    args, kwargs = split_parameters(fn, parameters)
    return fn(*args, **kwargs)


def split_parameters(
    fn: Callable[..., Any], parameters: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """A name → value mapping turned back into ``(args, kwargs)`` for ``fn``; names that are
    not parameters of ``fn`` are left out."""
    args, kwargs = [], {}
    positional = True  # until a parameter is missing, the ones that can go by position do
    for name, param in inspect.signature(fn).parameters.items():
        if name not in parameters:
            positional = positional and param.kind is param.VAR_POSITIONAL
            continue
        value = parameters[name]
        if param.kind is param.VAR_POSITIONAL:
            args.extend(value)
        elif param.kind is param.VAR_KEYWORD:
            kwargs.update(value)
        elif param.kind is param.KEYWORD_ONLY or not positional:
            kwargs[name] = value
        else:
            args.append(value)
    return args, kwargs
