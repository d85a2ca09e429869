"""Which block schema fields are secret, and how they are obfuscated and kept on update."""

import pytest

from app.exceptions import InvalidData
from app.services.blocks import (
    OBFUSCATED,
    _keep_unchanged_secrets,
    obfuscate,
    secret_paths,
    validate_data,
)

NESTED = {
    "properties": {
        "plain": {"type": "string"},
        "password": {"type": "string", "format": "password"},
        "key": {"type": "string", "writeOnly": True},
        "registry": {"$ref": "#/definitions/Registry"},
        "wrapped": {"allOf": [{"$ref": "#/definitions/Registry"}]},
    },
    "definitions": {
        "Registry": {
            "properties": {
                "user": {"type": "string"},
                "token": {"type": "string", "format": "password"},
            }
        }
    },
    "secret_fields": ["env.*"],
}


def test_secret_paths_follow_markers_definitions_and_secret_fields():
    assert secret_paths(NESTED) == [
        ("env", "*"),
        ("key",),
        ("password",),
        ("registry", "token"),
        ("wrapped", "token"),
    ]


def test_obfuscate_replaces_secrets_and_wildcards_but_not_nulls():
    data = {
        "plain": "p",
        "password": "pw",
        "key": None,
        "registry": {"user": "u", "token": "t"},
        "env": {"A": "1", "B": {"C": "2"}},
    }
    obfuscate(data, secret_paths(NESTED))
    assert data == {
        "plain": "p",
        "password": OBFUSCATED,
        "key": None,
        "registry": {"user": "u", "token": OBFUSCATED},
        "env": {"A": OBFUSCATED, "B": {"C": OBFUSCATED}},
    }


def test_obfuscated_values_sent_back_keep_the_current_secret():
    current = {"password": "pw", "env": {"A": "1", "B": "2"}, "registry": {"token": "t"}}
    new = {
        "password": OBFUSCATED,
        "env": {"A": OBFUSCATED, "B": "changed"},
        "registry": {"token": "new"},
    }
    _keep_unchanged_secrets(new, current, secret_paths(NESTED))
    assert new == {
        "password": "pw",
        "env": {"A": "1", "B": "changed"},
        "registry": {"token": "new"},
    }


@pytest.mark.parametrize(
    "data, loc",
    [
        ({"registry": {"token": 987654}}, ["body", "data", "registry", "token"]),
        ({"plain": ["TOPSECRET"]}, ["body", "data", "plain"]),
    ],
)
def test_validation_names_the_field_and_never_the_value(data, loc):
    with pytest.raises(InvalidData) as error:
        validate_data(NESTED, data)
    assert error.value.loc == loc
    assert "987654" not in str(error.value) and "TOPSECRET" not in str(error.value)
    assert "not of type 'string'" in str(error.value)


def test_required_field_is_named():
    with pytest.raises(InvalidData) as error:
        validate_data({"properties": {"url": {"type": "string"}}, "required": ["url"]}, {})
    assert error.value.loc == ["body", "data", "url"]
