"""Flow parameters checked against the signature's type hints."""
import datetime
from typing import Literal, Optional

import pytest

from client.sdk.validation import ParameterTypeError, validate_parameters


def fn(n: int, ratio: float = 0.5, name: Optional[str] = None,
       items: list[int] = (), mode: Literal["a", "b"] = "a", when: datetime.date = None,
       pair: tuple[int, str] = (0, ""), untyped=None):
    return n


def test_valid_values_pass_with_defaults_filled_in():
    assert validate_parameters(fn, {"n": 3}, "f") == {
        "n": 3, "ratio": 0.5, "name": None, "items": (), "mode": "a", "when": None,
        "pair": (0, ""), "untyped": None}


def test_lossless_coercions():
    got = validate_parameters(fn, {"n": "7", "ratio": 1, "items": ["1", 2], "mode": "b",
                                   "when": "2026-11-23", "pair": [1, "x"],
                                   "untyped": object}, "f")
    assert got["n"] == 7 and got["ratio"] == 1.0 and isinstance(got["ratio"], float)
    assert got["items"] == [1, 2] and got["when"] == datetime.date(2026, 11, 23)
    assert got["pair"] == (1, "x") and got["untyped"] is object


@pytest.mark.parametrize("params, message", [
    ({"n": "seven"}, "Flow 'f' parameter 'n': expected int, got str (value 'seven')"),
    ({"n": True}, "parameter 'n': expected int, got bool"),
    ({"n": 1, "name": 5}, "parameter 'name': expected Optional[str], got int"),
    ({"n": 1, "items": [1, "x"]}, "parameter 'items': expected int, got str"),
    ({"n": 1, "mode": "c"}, "parameter 'mode': expected one of ['a', 'b']"),
    ({"n": 1, "pair": [1]}, "parameter 'pair': expected 2 items, got 1"),
    ({}, "Flow 'f': missing a required argument: 'n'"),
    ({"n": 1, "bogus": 2}, "Flow 'f' got unexpected parameters: bogus"),
])
def test_errors_name_the_flow_the_parameter_and_the_problem(params, message):
    with pytest.raises(ParameterTypeError) as info:
        validate_parameters(fn, params, "f")
    assert message in str(info.value)


def test_var_keyword_flows_accept_extra_names():
    def g(a: int, **rest):
        return a
    assert validate_parameters(g, {"a": 1, "b": 2}, "g") == {"a": 1, "rest": {"b": 2}}
