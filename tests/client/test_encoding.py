"""client.api.encoding: the one JSON encoder of request bodies and state details."""

import datetime
import json
import uuid

import pytest

from client.api.encoding import dumps
from client.api.states import Scheduled

UTC = datetime.UTC


def test_bodies_write_times_ids_sets_and_states_in_the_api_form():
    when = datetime.datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    run_id = uuid.UUID("6a0c1a7e-3b9f-4c63-9d2e-5a1f0b7c8d90")

    body = json.loads(
        dumps({"at": when, "id": run_id, "tags": {"etl"}, "state": Scheduled(scheduled_time=when)})
    )

    assert body["at"] == "2026-11-23T08:30:00+00:00"
    assert body["id"] == str(run_id)
    assert body["tags"] == ["etl"]
    assert body["state"]["type"] == "SCHEDULED"
    # State details go through the same encoder: the time is written the same way.
    assert body["state"]["state_details"]["scheduled_time"] == body["at"]


def test_a_naive_time_or_a_value_without_json_form_is_refused():
    with pytest.raises(ValueError, match="Naive datetime"):
        dumps({"at": datetime.datetime(2026, 11, 23, 8, 30)})
    with pytest.raises(ValueError, match="Naive datetime"):
        Scheduled(scheduled_time=datetime.datetime(2026, 11, 23, 8, 30))
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        dumps({"x": object()})
