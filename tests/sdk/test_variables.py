"""``from client import variables``: set and get variables from flows, through the real client
on the real app (both backends)."""

import pytest

from client import flow, variables
from client.api.exceptions import ObjectAlreadyExists, ValidationError


def test_a_flow_reads_a_variable_set_before_it_and_sets_one_itself(orion):
    variables.set("warehouse_host", "10.0.0.5", tags=["prod"])

    @flow
    def report():
        host = variables.get("warehouse_host")
        variables.set("last_report_host", host)
        return host, variables.get("missing", default="fallback"), variables.get("missing")

    assert report() == ("10.0.0.5", "fallback", None)
    assert orion.read_variable_by_name("last_report_host")["value"] == "10.0.0.5"
    assert orion.read_variable_by_name("warehouse_host")["tags"] == ["prod"]
    assert orion.read_variable_by_name("missing") is None


def test_set_refuses_to_overwrite_unless_asked(orion):
    variables.set("threshold", "10")
    with pytest.raises(ObjectAlreadyExists, match="threshold"):
        variables.set("threshold", "20")
    assert variables.get("threshold") == "10"
    variables.set("threshold", "20", overwrite=True)
    assert variables.get("threshold") == "20"
    variables.set("threshold", "30", tags=["x"], overwrite=True)
    assert orion.read_variable_by_name("threshold")["tags"] == ["x"]
    assert [v["name"] for v in orion.read_variables()] == ["threshold"]
    orion.delete_variable_by_name("threshold")
    assert variables.get("threshold") is None


def test_bad_names_and_values_say_why(orion):
    with pytest.raises(ValidationError, match="lowercase letters, numbers, and underscores"):
        variables.set("Not-Valid", "x")
    with pytest.raises(ValidationError, match="value"):
        variables.set("long", "x" * 5001)
