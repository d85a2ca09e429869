"""The strict JSON parser every request body goes through (API arguments and ``get_json``).

Python's ``json`` accepts more than JSON, and more than the databases store:

- ``NaN``, ``Infinity`` and ``-Infinity``, and numbers such as ``1e999`` that overflow to an
  infinite float: PostgreSQL's ``jsonb`` refuses them, SQLite would store them, so the two
  databases disagree. They are refused here.
- Nesting as deep as the recursion limit allows (about a thousand levels), beyond which it
  raises ``RecursionError``, and PostgreSQL's ``jsonb`` has a stack limit of its own. Bodies
  nested deeper than :data:`app.schemas.limits.JSON_MAX_DEPTH` are refused here.

Each refusal is a :class:`JSONBodyError` whose message says what is wrong; the API turns it
into a 422. Checking the depth costs nothing for a body with fewer opening brackets than the
bound (most bodies); only a body with more is walked.
"""

import json
import math

from app.schemas.limits import JSON_MAX_DEPTH, excerpt

DEPTH_MESSAGE = f"JSON nested more than {JSON_MAX_DEPTH} levels deep."


class JSONBodyError(ValueError):
    """A request body that is not JSON this server accepts; the message says why."""


def _refuse_constant(name):
    raise JSONBodyError(f"{name} is not a JSON number; send a finite number or null.")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise JSONBodyError(f"The number {excerpt(text, 40)} is too large for a float.")
    return value


def _too_deep(data):
    """True if ``data`` nests lists and objects more than JSON_MAX_DEPTH levels deep."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def loads(raw):
    """Parse a request body (bytes or text) as strict JSON; raise :class:`JSONBodyError`."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise JSONBodyError(DEPTH_MESSAGE) from None
    except JSONBodyError:
        raise
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise JSONBodyError(f"Invalid JSON: {excerpt(str(error), 120)}") from None
    opening = raw.count(b"[") + raw.count(b"{") if isinstance(raw, bytes) else None
    if opening is None:
        opening = raw.count("[") + raw.count("{")
    if opening > JSON_MAX_DEPTH and _too_deep(data):
        raise JSONBodyError(DEPTH_MESSAGE)
    return data
