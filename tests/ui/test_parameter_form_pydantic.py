"""The custom run form follows the parameter schemas our SDK writes with pydantic 2
(``$defs`` references, optional values as ``anyOf`` with ``null``)."""

import enum

import pydantic

from app.blueprints.ui.parameter_form import form_fields, read_parameters
from client.sdk.validation import parameter_schema


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Window(pydantic.BaseModel):
    days: int = 1


def etl(
    day: str,
    colour: Colour = Colour.RED,
    limit: int | None = None,
    mode: Colour | None = None,
    window: Window = Window(),
):
    return day


def test_fields_follow_defs_and_optional_values():
    fields = {f.name: f for f in form_fields(parameter_schema(etl), {})}
    assert [f.name for f in fields.values()] == ["day", "colour", "limit", "mode", "window"]
    assert fields["day"].kind == "string" and fields["day"].required
    assert fields["colour"].kind == "enum" and fields["colour"].choices == ["red", "green"]
    assert fields["colour"].value == '"red"'
    assert fields["limit"].kind == "integer" and not fields["limit"].required
    assert fields["mode"].kind == "enum" and fields["mode"].value == ""
    assert fields["window"].kind == "json" and fields["window"].json_type == "object"
    assert fields["window"].value.replace(" ", "").replace("\n", "") == '{"days":1}'
    parameters, errors = read_parameters(
        fields.values(),
        {
            "param.day": "mon",
            "param.colour": '"green"',
            "param.limit": "5",
            "param.window": '{"days": 3}',
        },
    )
    assert not errors
    assert parameters == {"day": "mon", "colour": "green", "limit": 5, "window": {"days": 3}}
