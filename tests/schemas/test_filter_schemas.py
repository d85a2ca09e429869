"""app.schemas.filters: what filter bodies accept, reject, and load to."""

import datetime
import uuid

import pytest
from marshmallow import ValidationError

from app.schemas import filters as schemas

UTC = datetime.UTC

PAGED_BODIES = [
    (schemas.FlowFilterBody, "NAME_ASC"),
    (schemas.FlowRunFilterBody, "ID_DESC"),
    (schemas.TaskRunFilterBody, "ID_DESC"),
    (schemas.DeploymentFilterBody, "NAME_ASC"),
    (schemas.LogFilterBody, "TIMESTAMP_ASC"),
    (schemas.WorkQueueFilterBody, None),
]
COUNT_BODIES = [
    schemas.FlowCountBody,
    schemas.FlowRunCountBody,
    schemas.TaskRunCountBody,
    schemas.DeploymentCountBody,
]


def errors(schema_class, body):
    with pytest.raises(ValidationError) as info:
        schema_class().load(body)
    return info.value.messages


@pytest.mark.parametrize("schema_class, sort", PAGED_BODIES)
def test_paged_body_defaults(schema_class, sort):
    loaded = schema_class().load({})
    expected = {"limit": 200, "offset": 0} | ({"sort": sort} if sort else {})
    assert loaded == expected


@pytest.mark.parametrize("schema_class, sort", PAGED_BODIES)
def test_nulls_are_absent_keys(schema_class, sort):
    nulls = dict.fromkeys(schema_class().fields)
    assert schema_class().load(nulls) == schema_class().load({})


@pytest.mark.parametrize("schema_class", COUNT_BODIES)
def test_count_bodies_take_the_four_filters_only(schema_class):
    assert schema_class().load({}) == {}
    assert schema_class().load({"flows": {"name": {"any_": ["etl"]}}}) == {
        "flows": {"operator": "and_", "name": {"any_": ["etl"]}}
    }
    assert errors(schema_class, {"logs": {"level": {"ge_": 1}}}) == {
        "logs": [schemas.UNSUPPORTED_FILTER]
    }


@pytest.mark.parametrize("schema_class", COUNT_BODIES)
def test_count_bodies_accept_and_ignore_sort_limit_offset(schema_class):
    assert schema_class().load({"sort": "NAME_ASC", "limit": 5, "offset": 10}) == {}
    assert schema_class().load({"sort": None, "limit": None, "offset": None}) == {}
    assert errors(schema_class, {"limit": "many"}) == {"limit": ["Not a valid integer."]}
    assert errors(schema_class, {"sort": 1}) == {"sort": ["Not a valid string."]}


def test_loaded_body_is_keyed_like_the_json():
    run_id = uuid.uuid4()
    body = {
        "flows": {"name": {"any_": ["etl"]}},
        "flow_runs": {
            "operator": "or_",
            "id": {"not_any_": [str(run_id)]},
            "state": {"type": {"any_": ["FAILED", "CRASHED"]}, "name": None},
            "tags": {"all_": ["prod"], "is_null_": None},
            "start_time": {"after_": "2030-01-01T02:00:00+02:00"},
            "expected_start_time": {"before_": "2030-01-01T00:00:00"},
        },
        "task_runs": {"subflow_runs": {"exists_": False}},
        "deployments": {"is_schedule_active": {"eq_": True}},
        "sort": "EXPECTED_START_TIME_DESC",
        "limit": 50,
        "offset": 10,
    }
    assert schemas.FlowRunFilterBody().load(body) == {
        "flows": {"operator": "and_", "name": {"any_": ["etl"]}},
        "flow_runs": {
            "operator": "or_",
            "id": {"not_any_": [run_id]},
            "state": {"operator": "and_", "type": {"any_": ["FAILED", "CRASHED"]}},
            "tags": {"operator": "and_", "all_": ["prod"]},
            "start_time": {"after_": datetime.datetime(2030, 1, 1, tzinfo=UTC)},
            "expected_start_time": {"before_": datetime.datetime(2030, 1, 1, tzinfo=UTC)},
        },
        "task_runs": {"operator": "and_", "subflow_runs": {"exists_": False}},
        "deployments": {"operator": "and_", "is_schedule_active": {"eq_": True}},
        "sort": "EXPECTED_START_TIME_DESC",
        "limit": 50,
        "offset": 10,
    }


def test_prefect_client_body_with_every_criterion_null():
    body = {
        "flows": {"operator": "and_", "id": None, "name": None, "tags": None},
        "flow_runs": {
            "operator": "and_",
            "id": None,
            "name": None,
            "tags": None,
            "deployment_id": None,
            "work_queue_name": None,
            "flow_version": None,
            "start_time": None,
            "expected_start_time": None,
            "next_scheduled_start_time": None,
            "parent_task_run_id": None,
            "state": {"operator": "and_", "type": {"any_": ["SCHEDULED"]}, "name": None},
        },
        "task_runs": None,
        "deployments": None,
        "sort": None,
        "limit": None,
        "offset": 0,
    }
    assert schemas.FlowRunFilterBody().load(body) == {
        "flows": {"operator": "and_"},
        "flow_runs": {
            "operator": "and_",
            "state": {"operator": "and_", "type": {"any_": ["SCHEDULED"]}},
        },
        "sort": "ID_DESC",
        "limit": 200,
        "offset": 0,
    }


UNSUPPORTED = [schemas.UNSUPPORTED_FILTER]


@pytest.mark.parametrize(
    "schema_class, body, messages",
    [
        (schemas.FlowRunFilterBody, {"colour": 1}, {"colour": UNSUPPORTED}),
        (
            schemas.FlowRunFilterBody,
            {"flow_runs": {"nmae": {"any_": ["x"]}}},
            {"flow_runs": {"nmae": UNSUPPORTED}},
        ),
        (
            schemas.FlowRunFilterBody,
            {"flow_runs": {"name": {"regex_": "x"}}},
            {"flow_runs": {"name": {"regex_": UNSUPPORTED}}},
        ),
        (
            schemas.FlowRunFilterBody,
            {"flow_runs": {"state": {"type": {"all_": ["FAILED"]}}}},
            {"flow_runs": {"state": {"type": {"all_": UNSUPPORTED}}}},
        ),
        # Operators only where the reference lists them.
        (
            schemas.FlowFilterBody,
            {"flows": {"id": {"not_any_": []}}},
            {"flows": {"id": {"not_any_": UNSUPPORTED}}},
        ),
        (
            schemas.FlowRunFilterBody,
            {"flow_runs": {"expected_start_time": {"is_null_": True}}},
            {"flow_runs": {"expected_start_time": {"is_null_": UNSUPPORTED}}},
        ),
        (
            schemas.FlowRunFilterBody,
            {"flow_runs": {"name": {"operator": "or_"}}},
            {"flow_runs": {"name": {"operator": UNSUPPORTED}}},
        ),
        (
            schemas.TaskRunFilterBody,
            {"task_runs": {"deployment_id": {"any_": []}}},
            {"task_runs": {"deployment_id": UNSUPPORTED}},
        ),
        (
            schemas.FlowRunFilterBody,
            {"flow_runs": {"subflow_runs": {"exists_": True}}},
            {"flow_runs": {"subflow_runs": UNSUPPORTED}},
        ),
        (schemas.LogFilterBody, {"flow_runs": {"id": {"any_": []}}}, {"flow_runs": UNSUPPORTED}),
        (schemas.WorkQueueFilterBody, {"sort": "NAME_ASC"}, {"sort": UNSUPPORTED}),
        (
            schemas.WorkQueueFilterBody,
            {"work_queues": {"name": {"like_": "x"}}},
            {"work_queues": {"name": {"like_": UNSUPPORTED}}},
        ),
        # Families of features this server lacks: refused once they ask anything.
        (
            schemas.DeploymentFilterBody,
            {"artifacts": {"key": {"exists_": False}}},
            {"artifacts": UNSUPPORTED},
        ),
        (
            schemas.FlowFilterBody,
            {"work_queues": {"name": {"any_": ["q"]}}},
            {"work_queues": UNSUPPORTED},
        ),
    ],
)
def test_unsupported_keys_that_ask_something_are_refused_by_name(schema_class, body, messages):
    assert errors(schema_class, body) == messages


@pytest.mark.parametrize(
    "schema_class, body, same_as",
    [
        (schemas.FlowRunFilterBody, {"colour": None}, {}),
        (schemas.FlowRunFilterBody, {"flow_runs": {"nmae": None}}, {"flow_runs": {}}),
        (schemas.TaskRunFilterBody, {"work_pools": {}}, {}),
        (
            schemas.TaskRunFilterBody,
            {"work_pools": {"operator": "and_", "id": None, "name": None, "type": None}},
            {},
        ),
        (
            schemas.DeploymentFilterBody,
            {"artifacts": {"operator": "or_", "key": {"any_": None, "like_": None}}},
            {},
        ),
        (
            schemas.FlowFilterBody,
            {"work_queues": {"operator": "and_", "name": None, "id": None}},
            {},
        ),
        (schemas.LogFilterBody, {"flow_runs": {}}, {}),
    ],
)
def test_unsupported_keys_that_ask_nothing_are_dropped(schema_class, body, same_as):
    assert schema_class().load(body) == schema_class().load(same_as)


def test_work_pool_queues_filter_flow_runs_and_deployments_only():
    body = {"work_pool_queues": {"name": {"any_": ["q"]}}}
    for schema_class in (
        schemas.FlowRunFilterBody,
        schemas.DeploymentFilterBody,
        schemas.FlowRunCountBody,
        schemas.DeploymentCountBody,
    ):
        assert schema_class().load(body)["work_pool_queues"] == {
            "operator": "and_",
            "name": {"any_": ["q"]},
        }
    for schema_class in (schemas.FlowFilterBody, schemas.TaskRunFilterBody):
        assert errors(schema_class, body) == {"work_pool_queues": UNSUPPORTED}


@pytest.mark.parametrize(
    "body, path",
    [
        ({"flow_runs": {"id": {"any_": ["nope"]}}}, ["flow_runs", "id", "any_", 0]),
        ({"flows": {"id": {"any_": [str(uuid.uuid4()), 5]}}}, ["flows", "id", "any_", 1]),
        (
            {"flow_runs": {"deployment_id": {"any_": ["x"]}}},
            ["flow_runs", "deployment_id", "any_", 0],
        ),
        (
            {"flow_runs": {"state": {"type": {"any_": ["DONE"]}}}},
            ["flow_runs", "state", "type", "any_", 0],
        ),
        (
            {"task_runs": {"state": {"type": {"any_": ["failed"]}}}},
            ["task_runs", "state", "type", "any_", 0],
        ),
        (
            {"flow_runs": {"start_time": {"before_": "yesterday"}}},
            ["flow_runs", "start_time", "before_"],
        ),
        (
            {"flow_runs": {"expected_start_time": {"after_": 17}}},
            ["flow_runs", "expected_start_time", "after_"],
        ),
        ({"flow_runs": {"operator": "xor_"}}, ["flow_runs", "operator"]),
        ({"flow_runs": {"tags": {"operator": "not_"}}}, ["flow_runs", "tags", "operator"]),
        ({"flow_runs": {"tags": {"all_": "prod"}}}, ["flow_runs", "tags", "all_"]),
        ({"flow_runs": {"tags": {"is_null_": "maybe"}}}, ["flow_runs", "tags", "is_null_"]),
        ({"flow_runs": {"name": {"like_": ["a"]}}}, ["flow_runs", "name", "like_"]),
        ({"flow_runs": "everything"}, ["flow_runs", "_schema"]),
        (
            {"deployments": {"is_schedule_active": {"eq_": "yes please"}}},
            ["deployments", "is_schedule_active", "eq_"],
        ),
        ({"sort": "SIDEWAYS"}, ["sort"]),
        ({"sort": "name_asc"}, ["sort"]),
        ({"limit": -1}, ["limit"]),
        ({"limit": 201}, ["limit"]),
        ({"limit": "many"}, ["limit"]),
        ({"offset": -1}, ["offset"]),
    ],
)
def test_bad_values_are_rejected_where_they_are(body, path):
    node = errors(schemas.FlowRunFilterBody, body)
    for key in path:
        node = node[key]
    assert node and all(isinstance(message, str) for message in node)


@pytest.mark.parametrize(
    "schema_class, body, path",
    [
        (schemas.LogFilterBody, {"logs": {"level": {"ge_": "loud"}}}, ["logs", "level", "ge_"]),
        (
            schemas.LogFilterBody,
            {"logs": {"task_run_id": {"any_": ["x"]}}},
            ["logs", "task_run_id", "any_", 0],
        ),
        (schemas.LogFilterBody, {"sort": "ID_DESC"}, ["sort"]),
        (schemas.TaskRunFilterBody, {"sort": "START_TIME_DESC"}, ["sort"]),
        (schemas.FlowFilterBody, {"sort": "ID_DESC"}, ["sort"]),
        (schemas.DeploymentFilterBody, {"sort": "EXPECTED_START_TIME_ASC"}, ["sort"]),
        (
            schemas.WorkQueueFilterBody,
            {"work_queues": {"name": {"startswith_": "de"}}},
            ["work_queues", "name", "startswith_"],
        ),
    ],
)
def test_bad_values_in_other_bodies(schema_class, body, path):
    node = errors(schema_class, body)
    for key in path:
        node = node[key]
    assert node


def test_limit_bounds_messages():
    assert errors(schemas.FlowRunFilterBody, {"limit": 201}) == {
        "limit": ["Invalid limit: must be less than or equal to 200."]
    }
    assert errors(schemas.FlowRunFilterBody, {"limit": -1}) == {
        "limit": ["Invalid limit: must be greater than or equal to 0."]
    }
    assert schemas.FlowRunFilterBody().load({"limit": 0})["limit"] == 0
    assert schemas.FlowRunFilterBody().load({"limit": 200})["limit"] == 200


def test_max_limit_is_a_setting_of_every_paged_body(monkeypatch):
    schema = schemas.FlowRunFilterBody()  # instantiated before the change, as smorest does
    monkeypatch.setattr(schemas.PagedBody, "max_limit", 50)
    assert schema.load({})["limit"] == 50
    assert schemas.LogFilterBody().load({})["limit"] == 50
    assert errors(schemas.FlowFilterBody, {"limit": 51}) == {
        "limit": ["Invalid limit: must be less than or equal to 50."]
    }


@pytest.mark.parametrize(
    "schema_class, names",
    [
        (schemas.FlowRunFilterBody, schemas.FLOW_RUN_SORTS),
        (schemas.TaskRunFilterBody, schemas.TASK_RUN_SORTS),
        (schemas.FlowFilterBody, schemas.FLOW_SORTS),
        (schemas.DeploymentFilterBody, schemas.DEPLOYMENT_SORTS),
        (schemas.LogFilterBody, schemas.LOG_SORTS),
    ],
)
def test_every_sort_name_loads(schema_class, names):
    for name in names:
        assert schema_class().load({"sort": name})["sort"] == name


def test_sort_names_match_the_reference():
    assert set(schemas.FLOW_RUN_SORTS) == {
        "ID_DESC",
        "START_TIME_ASC",
        "START_TIME_DESC",
        "EXPECTED_START_TIME_ASC",
        "EXPECTED_START_TIME_DESC",
        "NAME_ASC",
        "NAME_DESC",
        "NEXT_SCHEDULED_START_TIME_ASC",
        "END_TIME_DESC",
    }
    assert set(schemas.TASK_RUN_SORTS) == set(schemas.FLOW_RUN_SORTS) - {
        "START_TIME_ASC",
        "START_TIME_DESC",
    }
    assert (
        set(schemas.FLOW_SORTS)
        == set(schemas.DEPLOYMENT_SORTS)
        == {"CREATED_DESC", "UPDATED_DESC", "NAME_ASC", "NAME_DESC"}
    )
    assert set(schemas.LOG_SORTS) == {
        f"{column}_{direction}"
        for column in ("TIMESTAMP", "LEVEL", "FLOW_RUN_ID", "TASK_RUN_ID")
        for direction in ("ASC", "DESC")
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2030-01-01T00:00:00Z", datetime.datetime(2030, 1, 1, tzinfo=UTC)),
        ("2030-01-01T00:00:00", datetime.datetime(2030, 1, 1, tzinfo=UTC)),
        ("2030-01-01T05:30:00+05:30", datetime.datetime(2030, 1, 1, tzinfo=UTC)),
    ],
)
def test_times_load_timezone_aware(text, expected):
    loaded = schemas.LogFilterBody().load({"logs": {"timestamp": {"after_": text}}})
    when = loaded["logs"]["timestamp"]["after_"]
    assert when == expected and when.tzinfo is not None


def test_every_state_type_loads_as_its_string():
    loaded = schemas.TaskRunFilterBody().load(
        {"task_runs": {"state": {"type": {"any_": ["PAUSED", "CANCELLING", "CRASHED"]}}}}
    )
    assert loaded["task_runs"]["state"]["type"]["any_"] == ["PAUSED", "CANCELLING", "CRASHED"]
