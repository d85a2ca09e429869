"""Flow parameters checked against the signature's type hints (by pydantic), and the
parameter schema written from the same model."""

import dataclasses
import datetime
from typing import Annotated, Literal, Optional

import pydantic
import pytest

from client.sdk.validation import ParameterTypeError, parameter_schema, validate_parameters


def fn(
    n: int,
    ratio: float = 0.5,
    name: Optional[str] = None,
    items: list[int] = (),
    mode: Literal["a", "b"] = "a",
    when: datetime.date = None,
    pair: tuple[int, str] = (0, ""),
    untyped=None,
):
    return n


def test_valid_values_pass_with_defaults_filled_in():
    assert validate_parameters(fn, {"n": 3}, "f") == {
        "n": 3,
        "ratio": 0.5,
        "name": None,
        "items": (),
        "mode": "a",
        "when": None,
        "pair": (0, ""),
        "untyped": None,
    }


def test_lossless_coercions():
    got = validate_parameters(
        fn,
        {
            "n": "7",
            "ratio": 1,
            "items": ["1", 2],
            "mode": "b",
            "when": "2026-11-23",
            "pair": [1, "x"],
            "untyped": object,
        },
        "f",
    )
    assert got["n"] == 7 and got["ratio"] == 1.0 and isinstance(got["ratio"], float)
    assert got["items"] == [1, 2] and got["when"] == datetime.date(2026, 11, 23)
    assert got["pair"] == (1, "x") and got["untyped"] is object


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n": "seven"}, "Flow 'f' parameter 'n': expected int, got str (value 'seven')"),
        (
            {"n": 1.5},
            (
                "parameter 'n': expected int, got float (value 1.5): Input should be a "
                "valid integer, got a number with a fractional part"
            ),
        ),
        ({"n": 1, "name": 5}, "parameter 'name': expected Optional[str], got int"),
        ({"n": 1, "items": [1, "x"]}, "parameter 'items': at [1]: Input should be a valid integer"),
        ({"n": 1, "mode": "c"}, "parameter 'mode': expected one of ['a', 'b']"),
        ({"n": 1, "pair": [1]}, "parameter 'pair': at [1]: Field required"),
        ({}, "Flow 'f': missing a required argument: 'n'"),
        ({"n": 1, "bogus": 2}, "Flow 'f' got unexpected parameters: bogus"),
    ],
)
def test_errors_name_the_flow_the_parameter_and_the_problem(params, message):
    with pytest.raises(ParameterTypeError) as info:
        validate_parameters(fn, params, "f")
    assert message in str(info.value)


def test_var_keyword_flows_accept_extra_names():
    def g(a: int, **rest):
        return a

    assert validate_parameters(g, {"a": 1, "b": 2}, "g") == {"a": 1, "rest": {"b": 2}}


class Point(pydantic.BaseModel):
    x: int
    y: int = 0


@dataclasses.dataclass
class Window:
    start: datetime.date
    days: int = 1


def rich(
    point: Point,
    window: Window,
    size: Annotated[int, pydantic.Field(gt=0, le=10)] = 1,
    tags: set[str] = frozenset(),
):
    return point


def test_models_dataclasses_and_constraints_are_validated_and_coerced():
    got = validate_parameters(
        rich,
        {
            "point": {"x": "1"},
            "window": {"start": "2026-12-04"},
            "size": "3",
            "tags": ["a", "a", "b"],
        },
        "r",
    )
    assert got["point"] == Point(x=1, y=0)
    assert got["window"] == Window(start=datetime.date(2026, 12, 4), days=1)
    assert got["size"] == 3 and got["tags"] == {"a", "b"}


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"point": {"y": 1}, "window": {"start": "2026-12-04"}},
            "parameter 'point': at ['x']: Field required",
        ),
        (
            {"point": {"x": 1}, "window": {"start": "someday"}},
            "parameter 'window': at ['start']: Input should be a valid date",
        ),
        (
            {"point": {"x": 1}, "window": {"start": "2026-12-04"}, "size": 11},
            "parameter 'size': Input should be less than or equal to 10 (value 11)",
        ),
    ],
)
def test_nested_and_constraint_errors_name_where(params, message):
    with pytest.raises(ParameterTypeError) as info:
        validate_parameters(rich, params, "r")
    assert message in str(info.value)


def test_the_parameter_schema_comes_from_the_same_model():
    schema = parameter_schema(rich)
    assert schema["required"] == ["point", "window"]
    assert schema["properties"]["point"] == {
        "$ref": "#/$defs/Point",
        "position": 0,
        "title": "point",
    }
    assert schema["$defs"]["Point"]["required"] == ["x"]
    assert schema["$defs"]["Window"]["properties"]["start"] == {
        "format": "date",
        "title": "Start",
        "type": "string",
    }
    assert schema["properties"]["size"] == {
        "default": 1,
        "exclusiveMinimum": 0,
        "maximum": 10,
        "position": 2,
        "title": "size",
        "type": "integer",
    }
    assert schema["properties"]["tags"]["uniqueItems"] is True


def test_types_without_a_json_schema_accept_anything_in_the_schema():
    class Opaque:
        pass

    def g(thing: Opaque, n: int = 2, when=object()):
        return thing

    schema = parameter_schema(g)
    assert schema["properties"]["thing"] == {"title": "thing", "position": 0}
    assert schema["properties"]["n"] == {
        "title": "n",
        "position": 1,
        "type": "integer",
        "default": 2,
    }
    assert "default" not in schema["properties"]["when"]
    value = Opaque()
    assert validate_parameters(g, {"thing": value}, "g")["thing"] is value
    with pytest.raises(ParameterTypeError, match="parameter 'thing': expected Opaque"):
        validate_parameters(g, {"thing": 3}, "g")


def test_flows_without_hints_need_no_pydantic():
    import subprocess
    import sys

    code = (
        "import sys\nfrom client.sdk.validation import validate_parameters\n"
        "def f(a, b=2): pass\n"
        "assert validate_parameters(f, {'a': 1}, 'f') == {'a': 1, 'b': 2}\n"
        "print('pydantic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
