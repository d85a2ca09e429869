"""app.services.filters on real databases: every operator of every filter field, and/or,
related-object filters, every sort (ties, NULL placement, stable paging) and limit/offset.

Bodies go through the request schemas first, so these tests also prove that everything the
schemas accept has a translation.
"""

import datetime
import uuid
from types import SimpleNamespace

import pytest
from marshmallow import fields

from app.db import database, is_sqlite
from app.models import (
    Agent,
    Artifact,
    Deployment,
    Flow,
    FlowRun,
    Log,
    TaskRun,
    Variable,
    Worker,
    WorkPool,
    WorkQueue,
)
from app.models import runs as runs_module
from app.models.runs import FLOW_RUN_NAME_SEARCH
from app.schemas import filters as schemas
from app.services import filters

UTC = datetime.UTC
T0 = datetime.datetime(2030, 1, 1, tzinfo=UTC)
MINUTE = datetime.timedelta(minutes=1)
HOUR = datetime.timedelta(hours=1)

BODY_SCHEMAS = {
    Flow: schemas.FlowFilterBody(),
    FlowRun: schemas.FlowRunFilterBody(),
    TaskRun: schemas.TaskRunFilterBody(),
    Deployment: schemas.DeploymentFilterBody(),
    Log: schemas.LogFilterBody(),
    WorkQueue: schemas.WorkQueueFilterBody(),
    WorkPool: schemas.WorkPoolFilterBody(),
    Worker: schemas.WorkerFilterBody(),
    Agent: schemas.AgentFilterBody(),
    Variable: schemas.VariableFilterBody(),
    Artifact: schemas.ArtifactFilterBody(),
}


def iso(when):
    return when.isoformat()


def add(model, **values):
    """Insert one row as given (``created``/``updated`` too) and return it unsaved-style."""
    values.setdefault("id", uuid.uuid4())
    model.insert(**values).execute()
    return model(**values)


def label(row):
    if isinstance(row, Log):
        return row.message
    return row.description if isinstance(row, Artifact) else row.name


def matching(model, body):
    """Labels of the ``model`` rows a JSON filter body selects, loaded by its schema first."""
    loaded = BODY_SCHEMAS[model].load(body)
    return {label(row) for row in filters.apply_filters(model.select(), model, loaded)}


@pytest.fixture
def world(db):
    """Three flows, two deployments, five flow runs (one a subflow), four task runs, four
    logs, three work queues and three agents, with values chosen so each case below tells
    operators apart.
    """
    w = SimpleNamespace()
    w.etl = add(Flow, name="etl", tags=["prod", "daily"])
    w.ml = add(Flow, name="ml-Train", tags=["prod"])
    w.misc = add(Flow, name="misc_100%", tags=[])
    w.nightly = add(
        Deployment,
        name="nightly",
        flow=w.etl.id,
        tags=["prod"],
        paused=False,
        work_queue_name="default",
    )
    w.adhoc = add(
        Deployment,
        name="adhoc",
        flow=w.ml.id,
        tags=[],
        paused=True,
        work_queue_name="gpu",
    )

    def run(name, flow, deployment, tags, state, state_name, **times):
        return add(
            FlowRun,
            name=name,
            flow=flow.id,
            deployment=deployment.id if deployment else None,
            tags=tags,
            state_type=state,
            state_name=state_name,
            **times,
        )

    w.r1 = run(
        "alpha-run",
        w.etl,
        w.nightly,
        ["prod", "daily"],
        "COMPLETED",
        "Completed",
        flow_version="1.0",
        work_queue_name="default",
        expected_start_time=T0,
        start_time=T0 + MINUTE,
        end_time=T0 + 5 * MINUTE,
        idempotency_key="key-1",
    )
    w.r2 = run(
        "beta-run",
        w.etl,
        w.nightly,
        ["prod"],
        "FAILED",
        "Failed",
        flow_version="1.0",
        work_queue_name="default",
        expected_start_time=T0 + HOUR,
        start_time=T0 + HOUR + MINUTE,
        end_time=T0 + HOUR + 2 * MINUTE,
        idempotency_key="key-2",
    )
    w.r3 = run(
        "gamma-run",
        w.ml,
        w.adhoc,
        [],
        "SCHEDULED",
        "Late",
        flow_version="2.0",
        work_queue_name="gpu",
        expected_start_time=T0 + 2 * HOUR,
        next_scheduled_start_time=T0 + 2 * HOUR,
    )
    w.r4 = run(
        "delta-run",
        w.ml,
        None,
        ["daily"],
        "RUNNING",
        "Running",
        expected_start_time=T0 + 3 * HOUR,
        start_time=T0 + 3 * HOUR,
    )

    def task(name, flow_run, tags, state, state_name, start_time=None):
        return add(
            TaskRun,
            name=name,
            flow_run=flow_run.id,
            task_key=name,
            dynamic_key="0",
            tags=tags,
            state_type=state,
            state_name=state_name,
            start_time=start_time,
        )

    w.t1 = task("extract", w.r1, ["io"], "COMPLETED", "Completed", T0 + 2 * MINUTE)
    w.t2 = task("transform", w.r1, [], "FAILED", "Failed", T0 + 3 * MINUTE)
    w.t3 = task("load", w.r2, ["io", "db"], "RUNNING", "Running", T0 + HOUR + MINUTE)
    w.t4 = task("train", w.r3, [], "SCHEDULED", "Late")
    # A subflow of alpha-run, started by its "extract" task run.
    w.r5 = run(
        "epsilon_sub",
        w.misc,
        None,
        [],
        "PENDING",
        "Pending",
        expected_start_time=T0 + 4 * HOUR,
        next_scheduled_start_time=T0 + 6 * HOUR,
        parent_task_run_id=w.t1.id,
    )

    for i, (level, flow_run, task_run) in enumerate(
        [(10, w.r1, w.t1), (20, w.r1, None), (30, w.r2, w.t3), (40, w.r2, None)]
    ):
        add(
            Log,
            name="orion",
            level=level,
            message=f"m{i + 1}",
            timestamp=T0 + i * MINUTE,
            flow_run_id=flow_run.id,
            task_run_id=task_run.id if task_run else None,
        )

    w.agents = add(WorkPool, name="default-agent-pool", type="prefect-agent", base_job_template={})
    w.local = add(WorkPool, name="local", type="process", base_job_template={})
    w.k8s = add(WorkPool, name="k8s", type="kubernetes", base_job_template={})
    w.default = add(WorkQueue, name="default", work_pool=w.agents.id)
    w.default_high = add(WorkQueue, name="Default-high", work_pool=w.agents.id)
    w.gpu = add(WorkQueue, name="gpu", work_pool=w.agents.id)
    w.w1 = add(Worker, name="w1", work_pool=w.local.id, last_heartbeat_time=T0)
    w.w2 = add(Worker, name="w2", work_pool=w.local.id, last_heartbeat_time=T0 + HOUR)
    w.w3 = add(Worker, name="w3", work_pool=w.k8s.id, last_heartbeat_time=None)
    w.a1 = add(Agent, name="a1", work_queue=w.gpu.id)
    w.a2 = add(Agent, name="a2", work_queue=w.default.id)
    w.a3 = add(Agent, name="a3", work_queue=None)
    w.v1 = add(Variable, name="db_host", value="10.0.0.5", tags=["prod", "eu"])
    w.v2 = add(Variable, name="db_port", value="5432", tags=["prod"])
    w.v3 = add(Variable, name="threshold", value="10%", tags=[])
    w.x1 = add(Artifact, key="report", type="markdown", flow_run_id=w.r1.id, description="x1")
    w.x2 = add(
        Artifact,
        key="table-1",
        type="table",
        flow_run_id=w.r1.id,
        task_run_id=w.t1.id,
        description="x2",
    )
    w.x3 = add(Artifact, key=None, type="result", flow_run_id=w.r2.id, description="x3")
    return w


FLOWS = {"etl", "ml-Train", "misc_100%"}
RUNS = {"alpha-run", "beta-run", "gamma-run", "delta-run", "epsilon_sub"}
TASKS = {"extract", "transform", "load", "train"}


def case(model, body, expected, id):
    """One filter case: ``body(world)`` is the JSON body; ``expected`` the labels matched."""
    return pytest.param(model, body, set(expected), id=id)


CASES = [
    # Flows.
    case(
        Flow,
        lambda w: {"flows": {"id": {"any_": [str(w.etl.id), str(w.misc.id)]}}},
        {"etl", "misc_100%"},
        "flows.id.any_",
    ),
    case(
        Flow,
        lambda w: {"flows": {"name": {"any_": ["ml-Train", "nope"]}}},
        {"ml-Train"},
        "flows.name.any_",
    ),
    case(
        Flow,
        lambda w: {"flows": {"name": {"like_": "TRAIN"}}},
        {"ml-Train"},
        "flows.name.like_ is case-insensitive",
    ),
    case(
        Flow,
        lambda w: {"flows": {"name": {"like_": "_"}}},
        {"misc_100%"},
        "flows.name.like_ escapes _",
    ),
    case(
        Flow,
        lambda w: {"flows": {"name": {"like_": "0%"}}},
        {"misc_100%"},
        "flows.name.like_ escapes %",
    ),
    case(
        Flow,
        lambda w: {"flows": {"tags": {"all_": ["prod", "daily"]}}},
        {"etl"},
        "flows.tags.all_ two",
    ),
    case(
        Flow,
        lambda w: {"flows": {"tags": {"all_": ["prod"]}}},
        {"etl", "ml-Train"},
        "flows.tags.all_ one",
    ),
    case(Flow, lambda w: {"flows": {"tags": {"all_": []}}}, FLOWS, "flows.tags.all_ empty"),
    case(
        Flow,
        lambda w: {"flows": {"tags": {"is_null_": True}}},
        {"misc_100%"},
        "flows.tags.is_null_ true",
    ),
    case(
        Flow,
        lambda w: {"flows": {"tags": {"is_null_": False}}},
        {"etl", "ml-Train"},
        "flows.tags.is_null_ false",
    ),
    case(
        Flow,
        lambda w: {"flows": {"tags": {"operator": "or_", "all_": ["daily"], "is_null_": True}}},
        {"etl", "misc_100%"},
        "flows.tags.operator or_",
    ),
    case(
        Flow,
        lambda w: {
            "flows": {"operator": "or_", "name": {"any_": ["etl"]}, "tags": {"is_null_": True}}
        },
        {"etl", "misc_100%"},
        "flows.operator or_",
    ),
    case(
        Flow,
        lambda w: {
            "flows": {"operator": "and_", "name": {"like_": "l"}, "tags": {"all_": ["daily"]}}
        },
        {"etl"},
        "flows.operator and_",
    ),
    case(Flow, lambda w: {"flows": {}}, FLOWS, "flows empty"),
    case(
        Flow,
        lambda w: {"flows": {"operator": "or_", "name": None}},
        FLOWS,
        "flows without criteria",
    ),
    case(
        Flow,
        lambda w: {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}},
        {"ml-Train"},
        "flows by flow_runs",
    ),
    case(Flow, lambda w: {"task_runs": {"tags": {"all_": ["db"]}}}, {"etl"}, "flows by task_runs"),
    case(
        Flow,
        lambda w: {
            "flow_runs": {"name": {"any_": ["beta-run"]}},
            "task_runs": {"name": {"any_": ["extract"]}},
        },
        set(),
        "flows by flow_runs whose task_runs match",
    ),
    case(
        Flow,
        lambda w: {
            "flow_runs": {"name": {"any_": ["alpha-run"]}},
            "task_runs": {"name": {"any_": ["extract"]}},
        },
        {"etl"},
        "flows by flow_runs and their task_runs",
    ),
    case(
        Flow,
        lambda w: {"deployments": {"name": {"any_": ["adhoc"]}}},
        {"ml-Train"},
        "flows by deployments",
    ),
    case(
        Flow,
        lambda w: {
            "deployments": {"is_schedule_active": {"eq_": True}},
            "flow_runs": {"name": {"any_": ["alpha-run"]}},
        },
        {"etl"},
        "flows by deployments and flow_runs",
    ),
    # Flow runs.
    case(
        FlowRun,
        lambda w: {"flow_runs": {"id": {"any_": [str(w.r1.id), str(w.r3.id)]}}},
        {"alpha-run", "gamma-run"},
        "flow_runs.id.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"id": {"not_any_": [str(w.r1.id), str(w.r3.id)]}}},
        {"beta-run", "delta-run", "epsilon_sub"},
        "flow_runs.id.not_any_",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {"id": {"any_": [str(w.r1.id), str(w.r2.id)], "not_any_": [str(w.r2.id)]}}
        },
        {"alpha-run"},
        "flow_runs.id.any_ and not_any_",
    ),
    case(FlowRun, lambda w: {"flow_runs": {"id": {"any_": []}}}, set(), "flow_runs.id.any_ empty"),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"id": {"not_any_": []}}},
        RUNS,
        "flow_runs.id.not_any_ empty",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"name": {"any_": ["alpha-run", "nope"]}}},
        {"alpha-run"},
        "flow_runs.name.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"name": {"like_": "TA-"}}},
        {"beta-run", "delta-run"},
        "flow_runs.name.like_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"tags": {"all_": ["prod"]}}},
        {"alpha-run", "beta-run"},
        "flow_runs.tags.all_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"tags": {"all_": ["prod", "daily"]}}},
        {"alpha-run"},
        "flow_runs.tags.all_ two",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"tags": {"is_null_": True}}},
        {"gamma-run", "epsilon_sub"},
        "flow_runs.tags.is_null_ true",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"tags": {"is_null_": False}}},
        {"alpha-run", "beta-run", "delta-run"},
        "flow_runs.tags.is_null_ false",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {"tags": {"operator": "or_", "all_": ["prod", "daily"], "is_null_": True}}
        },
        {"alpha-run", "gamma-run", "epsilon_sub"},
        "flow_runs.tags.operator or_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"deployment_id": {"any_": [str(w.nightly.id)]}}},
        {"alpha-run", "beta-run"},
        "flow_runs.deployment_id.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"deployment_id": {"is_null_": True}}},
        {"delta-run", "epsilon_sub"},
        "flow_runs.deployment_id.is_null_ true",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"deployment_id": {"is_null_": False}}},
        {"alpha-run", "beta-run", "gamma-run"},
        "flow_runs.deployment_id.is_null_ false",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {
                "deployment_id": {"operator": "or_", "any_": [str(w.adhoc.id)], "is_null_": True}
            }
        },
        {"gamma-run", "delta-run", "epsilon_sub"},
        "flow_runs.deployment_id.operator or_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"work_queue_name": {"any_": ["gpu"]}}},
        {"gamma-run"},
        "flow_runs.work_queue_name.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"work_queue_name": {"is_null_": True}}},
        {"delta-run", "epsilon_sub"},
        "flow_runs.work_queue_name.is_null_ true",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"work_queue_name": {"is_null_": False}}},
        {"alpha-run", "beta-run", "gamma-run"},
        "flow_runs.work_queue_name.is_null_ false",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {"work_queue_name": {"operator": "or_", "any_": ["gpu"], "is_null_": True}}
        },
        {"gamma-run", "delta-run", "epsilon_sub"},
        "flow_runs.work_queue_name.operator or_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"state": {"type": {"any_": ["FAILED", "RUNNING"]}}}},
        {"beta-run", "delta-run"},
        "flow_runs.state.type.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"state": {"name": {"any_": ["Late"]}}}},
        {"gamma-run"},
        "flow_runs.state.name.any_",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {
                "state": {"type": {"any_": ["SCHEDULED"]}, "name": {"any_": ["Scheduled"]}}
            }
        },
        set(),
        "flow_runs.state type and name",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {
                "state": {
                    "operator": "or_",
                    "type": {"any_": ["FAILED"]},
                    "name": {"any_": ["Late"]},
                }
            }
        },
        {"beta-run", "gamma-run"},
        "flow_runs.state.operator or_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"flow_version": {"any_": ["2.0"]}}},
        {"gamma-run"},
        "flow_runs.flow_version.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"start_time": {"before_": iso(T0 + HOUR + MINUTE)}}},
        {"alpha-run", "beta-run"},
        "flow_runs.start_time.before_ inclusive",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"start_time": {"after_": iso(T0 + HOUR + MINUTE)}}},
        {"beta-run", "delta-run"},
        "flow_runs.start_time.after_ inclusive",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"start_time": {"is_null_": True}}},
        {"gamma-run", "epsilon_sub"},
        "flow_runs.start_time.is_null_ true",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"start_time": {"is_null_": False}}},
        {"alpha-run", "beta-run", "delta-run"},
        "flow_runs.start_time.is_null_ false",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"start_time": {"before_": "2030-01-01T01:01:00+01:00"}}},
        {"alpha-run"},
        "flow_runs.start_time.before_ with an offset",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"start_time": {"before_": "2030-01-01T00:01:00"}}},
        {"alpha-run"},
        "flow_runs.start_time.before_ naive is UTC",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"expected_start_time": {"before_": iso(T0 + HOUR)}}},
        {"alpha-run", "beta-run"},
        "flow_runs.expected_start_time.before_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"expected_start_time": {"after_": iso(T0 + 3 * HOUR)}}},
        {"delta-run", "epsilon_sub"},
        "flow_runs.expected_start_time.after_",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {
                "expected_start_time": {"after_": iso(T0 + HOUR), "before_": iso(T0 + 2 * HOUR)}
            }
        },
        {"beta-run", "gamma-run"},
        "flow_runs.expected_start_time window",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"next_scheduled_start_time": {"before_": iso(T0 + 2 * HOUR)}}},
        {"gamma-run"},
        "flow_runs.next_scheduled_start_time.before_",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {"next_scheduled_start_time": {"after_": iso(T0 + 2 * HOUR + MINUTE)}}
        },
        {"epsilon_sub"},
        "flow_runs.next_scheduled_start_time.after_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"parent_task_run_id": {"any_": [str(w.t1.id)]}}},
        {"epsilon_sub"},
        "flow_runs.parent_task_run_id.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"parent_task_run_id": {"is_null_": True}}},
        RUNS - {"epsilon_sub"},
        "flow_runs.parent_task_run_id.is_null_ true",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"parent_task_run_id": {"is_null_": False}}},
        {"epsilon_sub"},
        "flow_runs.parent_task_run_id.is_null_ false",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {
                "parent_task_run_id": {"operator": "or_", "any_": [str(w.t1.id)], "is_null_": True}
            }
        },
        RUNS,
        "flow_runs.parent_task_run_id.operator or_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"parent_flow_run_id": {"any_": [str(w.r1.id)]}}},
        {"epsilon_sub"},
        "flow_runs.parent_flow_run_id.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"parent_flow_run_id": {"any_": [str(w.r2.id)]}}},
        set(),
        "flow_runs.parent_flow_run_id.any_ without subflows",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {"parent_flow_run_id": {"operator": "or_", "any_": [str(w.r1.id)]}}
        },
        {"epsilon_sub"},
        "flow_runs.parent_flow_run_id.operator or_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"idempotency_key": {"any_": ["key-2", "nope"]}}},
        {"beta-run"},
        "flow_runs.idempotency_key.any_",
    ),
    case(
        FlowRun,
        lambda w: {"flow_runs": {"idempotency_key": {"not_any_": ["key-2"]}}},
        {"alpha-run"},
        "flow_runs.idempotency_key.not_any_ (NULL keys excluded)",
    ),
    case(
        FlowRun,
        lambda w: {"work_pool_queues": {"name": {"any_": ["gpu"]}}},
        {"gamma-run"},
        "flow_runs by work_pool_queues",
    ),
    case(
        FlowRun,
        lambda w: {"work_pool_queues": {"id": {"any_": [str(w.default.id)]}}},
        {"alpha-run", "beta-run"},
        "flow_runs by work_pool_queues id",
    ),
    case(
        FlowRun,
        lambda w: {
            "flow_runs": {
                "operator": "or_",
                "name": {"any_": ["alpha-run"]},
                "state": {"type": {"any_": ["RUNNING"]}},
            }
        },
        {"alpha-run", "delta-run"},
        "flow_runs.operator or_",
    ),
    case(
        FlowRun,
        lambda w: {"flows": {"name": {"any_": ["ml-Train"]}}},
        {"gamma-run", "delta-run"},
        "flow_runs by flows",
    ),
    case(
        FlowRun,
        lambda w: {"flows": {"tags": {"is_null_": True}}},
        {"epsilon_sub"},
        "flow_runs by flows tags",
    ),
    case(
        FlowRun,
        lambda w: {"deployments": {"is_schedule_active": {"eq_": False}}},
        {"gamma-run"},
        "flow_runs by deployments",
    ),
    case(
        FlowRun,
        lambda w: {"deployments": {"tags": {"all_": ["prod"]}}},
        {"alpha-run", "beta-run"},
        "flow_runs by deployments tags",
    ),
    case(
        FlowRun,
        lambda w: {"task_runs": {"state": {"type": {"any_": ["FAILED"]}}}},
        {"alpha-run"},
        "flow_runs having a failed task run",
    ),
    case(
        FlowRun,
        lambda w: {"task_runs": {"subflow_runs": {"exists_": True}}},
        {"alpha-run"},
        "flow_runs having a subflow parent task run",
    ),
    case(
        FlowRun,
        lambda w: {"task_runs": {"subflow_runs": {"exists_": False}}},
        {"alpha-run", "beta-run", "gamma-run"},
        "flow_runs having a plain task run",
    ),
    case(
        FlowRun,
        lambda w: {
            "flows": {"name": {"any_": ["etl"]}},
            "flow_runs": {
                "state": {"type": {"any_": ["FAILED", "CRASHED"]}},
                "tags": {"all_": ["prod"]},
            },
        },
        {"beta-run"},
        "flow_runs reference example",
    ),
    case(
        FlowRun,
        lambda w: {
            "flows": {"name": {"any_": ["etl"]}},
            "flow_runs": {"tags": {"all_": ["prod"]}},
            "deployments": {"name": {"any_": ["nightly"]}},
            "task_runs": {"name": {"any_": ["load"]}},
        },
        {"beta-run"},
        "flow_runs by all four objects",
    ),
    case(
        FlowRun,
        lambda w: {
            "flows": {"name": {"any_": ["etl"]}},
            "deployments": {"name": {"any_": ["adhoc"]}},
        },
        set(),
        "flow_runs related filters are ANDed",
    ),
    case(
        FlowRun,
        lambda w: {"flows": {}, "task_runs": {}, "deployments": {}},
        RUNS,
        "flow_runs empty related filters",
    ),
    # Task runs.
    case(
        TaskRun,
        lambda w: {"task_runs": {"id": {"any_": [str(w.t1.id), str(w.t4.id)]}}},
        {"extract", "train"},
        "task_runs.id.any_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"name": {"any_": ["load"]}}},
        {"load"},
        "task_runs.name.any_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"name": {"like_": "TRA"}}},
        {"extract", "transform", "train"},
        "task_runs.name.like_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"tags": {"all_": ["io"]}}},
        {"extract", "load"},
        "task_runs.tags.all_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"tags": {"all_": ["io", "db"]}}},
        {"load"},
        "task_runs.tags.all_ two",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"tags": {"is_null_": True}}},
        {"transform", "train"},
        "task_runs.tags.is_null_ true",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"tags": {"is_null_": False}}},
        {"extract", "load"},
        "task_runs.tags.is_null_ false",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"tags": {"operator": "or_", "all_": ["db"], "is_null_": True}}},
        {"transform", "train", "load"},
        "task_runs.tags.operator or_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}},
        {"extract"},
        "task_runs.state.type.any_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"state": {"name": {"any_": ["Late"]}}}},
        {"train"},
        "task_runs.state.name.any_",
    ),
    case(
        TaskRun,
        lambda w: {
            "task_runs": {
                "state": {
                    "operator": "or_",
                    "type": {"any_": ["COMPLETED"]},
                    "name": {"any_": ["Late"]},
                }
            }
        },
        {"extract", "train"},
        "task_runs.state.operator or_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"start_time": {"before_": iso(T0 + 2 * MINUTE)}}},
        {"extract"},
        "task_runs.start_time.before_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"start_time": {"after_": iso(T0 + 3 * MINUTE)}}},
        {"transform", "load"},
        "task_runs.start_time.after_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"start_time": {"is_null_": True}}},
        {"train"},
        "task_runs.start_time.is_null_ true",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"start_time": {"is_null_": False}}},
        {"extract", "transform", "load"},
        "task_runs.start_time.is_null_ false",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"subflow_runs": {"exists_": True}}},
        {"extract"},
        "task_runs.subflow_runs.exists_ true",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"subflow_runs": {"exists_": False}}},
        {"transform", "load", "train"},
        "task_runs.subflow_runs.exists_ false",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"flow_run_id": {"any_": [str(w.r1.id)]}}},
        {"extract", "transform"},
        "task_runs.flow_run_id.any_",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"flow_run_id": {"is_null_": False}}},
        TASKS,
        "task_runs.flow_run_id.is_null_ false",
    ),
    case(
        TaskRun,
        lambda w: {"task_runs": {"flow_run_id": {"is_null_": True}}},
        set(),
        "task_runs.flow_run_id.is_null_ true",
    ),
    case(
        TaskRun,
        lambda w: {
            "task_runs": {
                "flow_run_id": {"operator": "or_", "any_": [str(w.r3.id)], "is_null_": True}
            }
        },
        {"train"},
        "task_runs.flow_run_id.operator or_",
    ),
    case(
        TaskRun,
        lambda w: {
            "task_runs": {
                "operator": "or_",
                "name": {"any_": ["load"]},
                "subflow_runs": {"exists_": True},
            }
        },
        {"extract", "load"},
        "task_runs.operator or_",
    ),
    case(
        TaskRun,
        lambda w: {"flows": {"name": {"any_": ["ml-Train"]}}},
        {"train"},
        "task_runs by flows",
    ),
    case(
        TaskRun,
        lambda w: {"flow_runs": {"name": {"any_": ["alpha-run"]}}},
        {"extract", "transform"},
        "task_runs by flow_runs",
    ),
    case(
        TaskRun,
        lambda w: {"deployments": {"name": {"any_": ["nightly"]}}},
        {"extract", "transform", "load"},
        "task_runs by deployments",
    ),
    case(
        TaskRun,
        lambda w: {
            "flows": {"name": {"any_": ["etl"]}},
            "flow_runs": {"state": {"type": {"any_": ["FAILED"]}}},
        },
        {"load"},
        "task_runs by flows and flow_runs",
    ),
    case(
        TaskRun,
        lambda w: {
            "flow_runs": {"name": {"any_": ["alpha-run"]}},
            "deployments": {"name": {"any_": ["adhoc"]}},
        },
        set(),
        "task_runs by flow_runs and deployments",
    ),
    # Deployments.
    case(
        Deployment,
        lambda w: {"deployments": {"id": {"any_": [str(w.nightly.id)]}}},
        {"nightly"},
        "deployments.id.any_",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"name": {"any_": ["adhoc"]}}},
        {"adhoc"},
        "deployments.name.any_",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"name": {"like_": "IGH"}}},
        {"nightly"},
        "deployments.name.like_",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"is_schedule_active": {"eq_": True}}},
        {"nightly"},
        "deployments.is_schedule_active.eq_ true",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"is_schedule_active": {"eq_": False}}},
        {"adhoc"},
        "deployments.is_schedule_active.eq_ false",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"paused": {"eq_": True}}},
        {"adhoc"},
        "deployments.paused.eq_ true",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"paused": {"eq_": False}}},
        {"nightly"},
        "deployments.paused.eq_ false",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"tags": {"all_": ["prod"]}}},
        {"nightly"},
        "deployments.tags.all_",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"tags": {"is_null_": True}}},
        {"adhoc"},
        "deployments.tags.is_null_ true",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"tags": {"is_null_": False}}},
        {"nightly"},
        "deployments.tags.is_null_ false",
    ),
    case(
        Deployment,
        lambda w: {
            "deployments": {"tags": {"operator": "or_", "all_": ["nope"], "is_null_": True}}
        },
        {"adhoc"},
        "deployments.tags.operator or_",
    ),
    case(
        Deployment,
        lambda w: {"work_pool_queues": {"name": {"startswith_": ["GP"]}}},
        {"adhoc"},
        "deployments by work_pool_queues",
    ),
    case(
        Deployment,
        lambda w: {"deployments": {"work_queue_name": {"any_": ["gpu"]}}},
        {"adhoc"},
        "deployments.work_queue_name.any_",
    ),
    case(
        Deployment,
        lambda w: {
            "deployments": {
                "operator": "or_",
                "name": {"any_": ["nightly"]},
                "work_queue_name": {"any_": ["gpu"]},
            }
        },
        {"nightly", "adhoc"},
        "deployments.operator or_",
    ),
    case(
        Deployment,
        lambda w: {"flows": {"name": {"any_": ["etl"]}}},
        {"nightly"},
        "deployments by flows",
    ),
    case(
        Deployment,
        lambda w: {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}},
        {"adhoc"},
        "deployments by flow_runs",
    ),
    case(
        Deployment,
        lambda w: {"task_runs": {"name": {"any_": ["load"]}}},
        {"nightly"},
        "deployments by task_runs",
    ),
    case(
        Deployment,
        lambda w: {
            "flow_runs": {"name": {"any_": ["gamma-run"]}},
            "task_runs": {"name": {"any_": ["load"]}},
        },
        set(),
        "deployments by flow_runs whose task_runs match",
    ),
    case(
        Deployment,
        lambda w: {
            "flow_runs": {"name": {"any_": ["beta-run"]}},
            "task_runs": {"name": {"any_": ["load"]}},
        },
        {"nightly"},
        "deployments by flow_runs and their task_runs",
    ),
    # Logs.
    case(Log, lambda w: {"logs": {"level": {"ge_": 30}}}, {"m3", "m4"}, "logs.level.ge_"),
    case(Log, lambda w: {"logs": {"level": {"le_": 20}}}, {"m1", "m2"}, "logs.level.le_"),
    case(
        Log, lambda w: {"logs": {"level": {"ge_": 20, "le_": 30}}}, {"m2", "m3"}, "logs.level range"
    ),
    case(
        Log,
        lambda w: {"logs": {"timestamp": {"before_": iso(T0 + MINUTE)}}},
        {"m1", "m2"},
        "logs.timestamp.before_",
    ),
    case(
        Log,
        lambda w: {"logs": {"timestamp": {"after_": iso(T0 + 2 * MINUTE)}}},
        {"m3", "m4"},
        "logs.timestamp.after_",
    ),
    case(
        Log,
        lambda w: {"logs": {"flow_run_id": {"any_": [str(w.r2.id)]}}},
        {"m3", "m4"},
        "logs.flow_run_id.any_",
    ),
    case(
        Log,
        lambda w: {"logs": {"task_run_id": {"any_": [str(w.t1.id), str(w.t3.id)]}}},
        {"m1", "m3"},
        "logs.task_run_id.any_",
    ),
    case(
        Log,
        lambda w: {
            "logs": {
                "operator": "or_",
                "level": {"ge_": 40},
                "task_run_id": {"any_": [str(w.t1.id)]},
            }
        },
        {"m1", "m4"},
        "logs.operator or_",
    ),
    # Work queues.
    case(
        WorkQueue,
        lambda w: {"work_queues": {"id": {"any_": [str(w.gpu.id)]}}},
        {"gpu"},
        "work_queues.id.any_",
    ),
    case(
        WorkQueue,
        lambda w: {"work_queues": {"name": {"any_": ["default"]}}},
        {"default"},
        "work_queues.name.any_",
    ),
    case(
        WorkQueue,
        lambda w: {"work_queues": {"name": {"startswith_": ["DEF"]}}},
        {"default", "Default-high"},
        "work_queues.name.startswith_ is case-insensitive",
    ),
    case(
        WorkQueue,
        lambda w: {"work_queues": {"name": {"startswith_": ["gp", "default-"]}}},
        {"gpu", "Default-high"},
        "work_queues.name.startswith_ any prefix",
    ),
    case(
        WorkQueue,
        lambda w: {"work_queues": {"name": {"startswith_": []}}},
        set(),
        "work_queues.name.startswith_ empty",
    ),
    case(
        WorkQueue,
        lambda w: {
            "work_queues": {
                "operator": "or_",
                "id": {"any_": [str(w.gpu.id)]},
                "name": {"any_": ["default"]},
            }
        },
        {"default", "gpu"},
        "work_queues.operator or_",
    ),
    # Work pools.
    case(
        WorkPool,
        lambda w: {"work_pools": {"id": {"any_": [str(w.local.id)]}}},
        {"local"},
        "work_pools.id.any_",
    ),
    case(
        WorkPool,
        lambda w: {"work_pools": {"name": {"any_": ["k8s", "zz"]}}},
        {"k8s"},
        "work_pools.name.any_",
    ),
    case(
        WorkPool,
        lambda w: {"work_pools": {"type": {"any_": ["process", "prefect-agent"]}}},
        {"local", "default-agent-pool"},
        "work_pools.type.any_",
    ),
    case(
        WorkPool,
        lambda w: {
            "work_pools": {
                "operator": "or_",
                "name": {"any_": ["k8s"]},
                "type": {"any_": ["process"]},
            }
        },
        {"local", "k8s"},
        "work_pools.operator or_",
    ),
    # Workers.
    case(Worker, lambda w: {"workers": {"name": {"any_": ["w2"]}}}, {"w2"}, "workers.name.any_"),
    case(
        Worker,
        lambda w: {"workers": {"last_heartbeat_time": {"after_": iso(T0 + MINUTE)}}},
        {"w2"},
        "workers.last_heartbeat_time.after_",
    ),
    case(
        Worker,
        lambda w: {"workers": {"last_heartbeat_time": {"before_": iso(T0 + MINUTE)}}},
        {"w1"},
        "workers.last_heartbeat_time.before_",
    ),
    case(
        Worker,
        lambda w: {
            "workers": {
                "operator": "or_",
                "name": {"any_": ["w3"]},
                "last_heartbeat_time": {"before_": iso(T0)},
            }
        },
        {"w1", "w3"},
        "workers.operator or_",
    ),
    # Agents.
    case(
        Agent,
        lambda w: {"agents": {"id": {"any_": [str(w.a1.id), str(w.a3.id)]}}},
        {"a1", "a3"},
        "agents.id.any_",
    ),
    case(Agent, lambda w: {"agents": {"name": {"any_": ["a2", "zz"]}}}, {"a2"}, "agents.name.any_"),
    case(
        Agent,
        lambda w: {"agents": {"work_queue_id": {"any_": [str(w.gpu.id)]}}},
        {"a1"},
        "agents.work_queue_id.any_",
    ),
    case(
        Agent,
        lambda w: {
            "agents": {
                "operator": "or_",
                "name": {"any_": ["a3"]},
                "work_queue_id": {"any_": [str(w.default.id)]},
            }
        },
        {"a2", "a3"},
        "agents.operator or_",
    ),
    # Variables.
    case(
        Variable,
        lambda w: {"variables": {"id": {"any_": [str(w.v1.id), str(w.v3.id)]}}},
        {"db_host", "threshold"},
        "variables.id.any_",
    ),
    case(
        Variable,
        lambda w: {"variables": {"name": {"any_": ["db_port", "nope"]}}},
        {"db_port"},
        "variables.name.any_",
    ),
    case(
        Variable,
        lambda w: {"variables": {"name": {"like_": "DB_"}}},
        {"db_host", "db_port"},
        "variables.name.like_ escapes _",
    ),
    case(
        Variable,
        lambda w: {"variables": {"value": {"any_": ["5432"]}}},
        {"db_port"},
        "variables.value.any_",
    ),
    case(
        Variable,
        lambda w: {"variables": {"value": {"like_": "0%"}}},
        {"threshold"},
        "variables.value.like_ escapes %",
    ),
    case(
        Variable,
        lambda w: {"variables": {"tags": {"all_": ["prod", "eu"]}}},
        {"db_host"},
        "variables.tags.all_",
    ),
    case(
        Variable,
        lambda w: {"variables": {"tags": {"is_null_": True}}},
        {"threshold"},
        "variables.tags.is_null_ true",
    ),
    case(
        Variable,
        lambda w: {"variables": {"tags": {"operator": "or_", "all_": ["eu"], "is_null_": True}}},
        {"db_host", "threshold"},
        "variables.tags.operator or_",
    ),
    case(
        Variable,
        lambda w: {"variables": {"tags": {"is_null_": False}}},
        {"db_host", "db_port"},
        "variables.tags.is_null_ false",
    ),
    case(
        Variable,
        lambda w: {
            "variables": {
                "operator": "or_",
                "name": {"any_": ["threshold"]},
                "tags": {"all_": ["eu"]},
            }
        },
        {"db_host", "threshold"},
        "variables.operator or_",
    ),
    # Artifacts.
    case(
        Artifact,
        lambda w: {"artifacts": {"id": {"any_": [str(w.x1.id), str(w.x3.id)]}}},
        {"x1", "x3"},
        "artifacts.id.any_",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"key": {"any_": ["report", "nope"]}}},
        {"x1"},
        "artifacts.key.any_",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"key": {"like_": "TABLE"}}},
        {"x2"},
        "artifacts.key.like_",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"key": {"exists_": True}}},
        {"x1", "x2"},
        "artifacts.key.exists_ true",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"key": {"exists_": False}}},
        {"x3"},
        "artifacts.key.exists_ false",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"flow_run_id": {"any_": [str(w.r1.id)]}}},
        {"x1", "x2"},
        "artifacts.flow_run_id.any_",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"task_run_id": {"any_": [str(w.t1.id)]}}},
        {"x2"},
        "artifacts.task_run_id.any_",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"type": {"any_": ["table", "result"]}}},
        {"x2", "x3"},
        "artifacts.type.any_",
    ),
    case(
        Artifact,
        lambda w: {"artifacts": {"type": {"not_any_": ["markdown"]}}},
        {"x2", "x3"},
        "artifacts.type.not_any_",
    ),
    case(
        Artifact,
        lambda w: {
            "artifacts": {
                "operator": "or_",
                "key": {"any_": ["report"]},
                "type": {"any_": ["result"]},
            }
        },
        {"x1", "x3"},
        "artifacts.operator or_",
    ),
    case(
        Artifact,
        lambda w: {
            "flows": {"name": {"any_": ["etl"]}},
            "task_runs": {"name": {"any_": ["extract"]}},
        },
        {"x2"},
        "artifacts by their flow and task run",
    ),
]


@pytest.mark.parametrize("model, body, expected", CASES)
def test_filter(world, model, body, expected):
    assert matching(model, body(world)) == expected


def test_count_uses_the_same_filters(world):
    body = BODY_SCHEMAS[FlowRun].load({"flows": {"name": {"any_": ["etl"]}}})
    assert filters.apply_filters(FlowRun.select(), FlowRun, body).count() == 2


def test_filters_and_with_an_existing_where(world):
    body = BODY_SCHEMAS[FlowRun].load({"flow_runs": {"tags": {"all_": ["prod"]}}})
    query = FlowRun.select().where(FlowRun.name != "alpha-run")
    assert [r.name for r in filters.apply_filters(query, FlowRun, body)] == ["beta-run"]


@pytest.mark.parametrize(
    "criteria",
    [
        None,
        {},
        {"operator": "or_"},
        {"name": None},
        {"name": {"any_": None}},
        {"name": {"operator": "or_"}},
    ],
)
def test_object_filter_without_criteria_is_none(criteria):
    assert filters.object_filter(FlowRun, criteria) is None
    assert filters.filter_condition(FlowRun, {"flow_runs": criteria, "flows": criteria}) is None


def _schema_paths(schema, prefix):
    """Every (path..., operator) a filter schema accepts; booleans and ``or_`` both ways."""
    paths = set()
    for name, field in schema.fields.items():
        if isinstance(field, fields.Nested):
            paths |= _schema_paths(field.schema, prefix + (name,))
        elif name == "operator":
            paths.add(prefix + (name, "or_"))
        elif isinstance(field, fields.Boolean):
            paths |= {prefix + (name, True), prefix + (name, False)}
        else:
            paths.add(prefix + (name,))
    return paths


def _body_paths(node, prefix=()):
    paths = set()
    for key, value in node.items():
        if isinstance(value, dict):
            paths |= _body_paths(value, prefix + (key,))
        elif key == "operator" or isinstance(value, bool):
            paths.add(prefix + (key, value))
        else:
            paths.add(prefix + (key,))
    return paths


class _AnyWorld:
    def __getattr__(self, name):
        return SimpleNamespace(id=uuid.uuid4())


def test_cases_cover_every_operator_of_every_filter_field():
    for model, key in filters.FILTER_KEYS.items():
        schema = BODY_SCHEMAS[model].fields[key].schema
        required = _schema_paths(schema, (key,))
        covered = set()
        for param in CASES:
            case_model, body, _ = param.values
            if case_model is model:
                covered |= _body_paths(body(_AnyWorld()))
        assert required <= covered, sorted(map(str, required - covered))


def test_every_schema_field_has_a_column():
    def check(model, schema, table):
        for name, field in schema.fields.items():
            if name == "operator":
                continue
            assert name in table, (model, name)
            if isinstance(table[name], dict):
                check(model, field.schema, table[name])

    for model, key in filters.FILTER_KEYS.items():
        check(model, BODY_SCHEMAS[model].fields[key].schema, filters.FIELDS[model])


def test_filter_sql_per_backend(db):
    tags = filters.object_filter(FlowRun, {"tags": {"all_": ["a"]}})
    sql, _ = FlowRun.select().where(tags).sql()
    assert ("json_each" in sql) if is_sqlite() else ("@>" in sql)
    like = filters.object_filter(FlowRun, {"name": {"like_": "a_b"}})
    sql, params = FlowRun.select().where(like).sql()
    assert "ESCAPE" in sql and "%a\\_b%" in params
    body = {"flows": {"name": {"any_": ["etl"]}}}
    sql, _ = FlowRun.select().where(filters.filter_condition(FlowRun, body)).sql()
    assert '"flow_id" IN (SELECT' in sql


def _search_is_consistent():
    """SQLite: the trigram index of run names holds exactly the stored names (FTS5's
    integrity check against its content table raises otherwise)."""
    database.execute_sql(
        f'INSERT INTO "{FLOW_RUN_NAME_SEARCH}" ("{FLOW_RUN_NAME_SEARCH}", rank) '
        "VALUES ('integrity-check', 1)"
    )


def test_flow_run_name_like_follows_inserts_renames_and_deletes(db, monkeypatch):
    flow = add(Flow, name="etl")
    runs = {
        name: add(FlowRun, flow=flow.id, name=name)
        for name in ("brave-Otter-12", "calm-otter-123", "keen-heron-12", 'say "hi" 100%', "ab")
    }
    assert matching(FlowRun, {"flow_runs": {"name": {"like_": "OTTER-12"}}}) == {
        "brave-Otter-12",
        "calm-otter-123",
    }
    assert matching(FlowRun, {"flow_runs": {"name": {"like_": '"hi" 1'}}}) == {'say "hi" 100%'}
    assert matching(FlowRun, {"flow_runs": {"name": {"like_": "0%"}}}) == {'say "hi" 100%'}
    assert matching(FlowRun, {"flow_runs": {"name": {"like_": "AB"}}}) == {"ab"}

    FlowRun.update(name="keen-otter-12").where(FlowRun.id == runs["keen-heron-12"].id).execute()
    FlowRun.delete().where(FlowRun.id == runs["brave-Otter-12"].id).execute()
    FlowRun.update(state_type="RUNNING").execute()
    expected = {"calm-otter-123", "keen-otter-12"}
    assert matching(FlowRun, {"flow_runs": {"name": {"like_": "otter-12"}}}) == expected
    assert matching(FlowRun, {"flow_runs": {"name": {"like_": "heron"}}}) == set()
    assert matching(Flow, {"flow_runs": {"name": {"like_": "otter-12"}}}) == {"etl"}
    if is_sqlite():
        _search_is_consistent()
    # Past the cap the LIKE alone decides: the same runs.
    monkeypatch.setattr(runs_module, "NAME_SEARCH_MAX_MATCHES", 1)
    assert matching(FlowRun, {"flow_runs": {"name": {"like_": "otter-12"}}}) == expected


@pytest.mark.parametrize(
    "text, cap, searched",
    [("otter-12", 10_000, True), ("otter-12", 2, False), ("ot", 10_000, False)],
)
def test_flow_run_name_like_reads_the_trigram_index_on_sqlite(db, monkeypatch, text, cap, searched):
    """On SQLite the filter narrows the runs to the index's matches when the text has 3
    characters or more and the matches are fewer than the cap (2 here); never on PostgreSQL,
    whose trigram index serves the ILIKE itself."""
    flow = add(Flow, name="etl")
    for name in ("brave-otter-12", "calm-otter-123"):
        add(FlowRun, flow=flow.id, name=name)
    monkeypatch.setattr(runs_module, "NAME_SEARCH_MAX_MATCHES", cap)
    sql, _ = FlowRun.select().where(runs_module.name_contains(text)).sql()
    assert (f'"{FLOW_RUN_NAME_SEARCH}" MATCH' in sql) is (searched and is_sqlite())


# Sorts: the reference order each sort must produce, computed in Python. NULL sorts as greater
# than every value (last ascending, first descending); ties break on the id, same direction.
def _ref(value, descending=False):
    return value, descending


def _started(row):
    return row.start_time or row.expected_start_time


def _hex(attribute):
    return lambda row: None if getattr(row, attribute) is None else getattr(row, attribute).hex


_RUN_SORTS = {
    "ID_DESC": _ref(lambda r: r.id.hex, True),
    "EXPECTED_START_TIME_ASC": _ref(lambda r: r.expected_start_time),
    "EXPECTED_START_TIME_DESC": _ref(lambda r: r.expected_start_time, True),
    "NAME_ASC": _ref(lambda r: r.name),
    "NAME_DESC": _ref(lambda r: r.name, True),
    "NEXT_SCHEDULED_START_TIME_ASC": _ref(lambda r: r.next_scheduled_start_time),
    "END_TIME_DESC": _ref(lambda r: r.end_time, True),
}
_NAMED_SORTS = {
    "CREATED_DESC": _ref(lambda r: r.created, True),
    "UPDATED_DESC": _ref(lambda r: r.updated, True),
    "NAME_ASC": _ref(lambda r: r.name),
    "NAME_DESC": _ref(lambda r: r.name, True),
}
REFERENCE_SORTS = {
    FlowRun: {
        **_RUN_SORTS,
        "START_TIME_ASC": _ref(_started),
        "START_TIME_DESC": _ref(_started, True),
    },
    TaskRun: _RUN_SORTS,
    Flow: _NAMED_SORTS,
    Deployment: _NAMED_SORTS,
    Log: {
        "TIMESTAMP_ASC": _ref(lambda r: r.timestamp),
        "TIMESTAMP_DESC": _ref(lambda r: r.timestamp, True),
        "LEVEL_ASC": _ref(lambda r: r.level),
        "LEVEL_DESC": _ref(lambda r: r.level, True),
        "FLOW_RUN_ID_ASC": _ref(_hex("flow_run_id")),
        "FLOW_RUN_ID_DESC": _ref(_hex("flow_run_id"), True),
        "TASK_RUN_ID_ASC": _ref(_hex("task_run_id")),
        "TASK_RUN_ID_DESC": _ref(_hex("task_run_id"), True),
    },
    WorkQueue: {"NAME_ASC": _ref(lambda r: r.name)},
    WorkPool: {"NAME_ASC": _ref(lambda r: r.name)},
    Worker: {"LAST_HEARTBEAT_DESC": _ref(lambda r: r.last_heartbeat_time, True)},
    Agent: {"NAME_ASC": _ref(lambda r: r.name)},
}
SCHEMA_SORTS = {
    FlowRun: schemas.FLOW_RUN_SORTS,
    TaskRun: schemas.TASK_RUN_SORTS,
    Flow: schemas.FLOW_SORTS,
    Deployment: schemas.DEPLOYMENT_SORTS,
    Log: schemas.LOG_SORTS,
    WorkQueue: ("NAME_ASC",),
    WorkPool: ("NAME_ASC",),
    Worker: ("LAST_HEARTBEAT_DESC",),
    Agent: ("NAME_ASC",),
}


def reference_order(rows, value, descending):
    present = sorted((r for r in rows if value(r) is not None), key=lambda r: (value(r), r.id.hex))
    missing = sorted((r for r in rows if value(r) is None), key=lambda r: r.id.hex)
    return missing[::-1] + present[::-1] if descending else present + missing


def _run_times():
    """Six runs' (name, expected, start, next scheduled, end): ties and NULLs in every column."""
    return [
        ("b", T0, None, None, T0 + HOUR),
        ("a", T0, T0 + 30 * MINUTE, T0, None),
        ("b", None, None, T0, T0 + HOUR),
        ("c", T0 + HOUR, T0 + HOUR, None, None),
        ("a", T0 + 2 * HOUR, None, T0 + HOUR, T0),
        ("b", T0 + HOUR, T0 + 30 * MINUTE, None, T0 + 2 * HOUR),
    ]


def make_sort_rows(model):
    """Rows of ``model`` with ties and NULLs in every sorted column."""
    if model in (FlowRun, TaskRun):
        flow = add(Flow, name="f")
        parent = add(FlowRun, name="parent", flow=flow.id) if model is TaskRun else None
        rows = []
        for i, (name, expected, start, next_start, end) in enumerate(_run_times()):
            values = dict(
                name=name,
                expected_start_time=expected,
                start_time=start,
                next_scheduled_start_time=next_start,
                end_time=end,
            )
            if model is TaskRun:
                rows.append(
                    add(TaskRun, flow_run=parent.id, task_key="k", dynamic_key=str(i), **values)
                )
            else:
                rows.append(add(FlowRun, flow=flow.id, **values))
        return rows
    if model is Flow:
        return [
            add(Flow, name=name, created=T0 + c * HOUR, updated=T0 + u * HOUR)
            for name, c, u in [("c", 0, 1), ("a", 0, 0), ("b", 1, 0), ("d", -1, 1)]
        ]
    if model is Deployment:
        flows = [add(Flow, name="f1"), add(Flow, name="f2")]
        return [
            add(
                Deployment,
                name=name,
                flow=flows[i % 2].id,
                created=T0 + c * HOUR,
                updated=T0 + u * HOUR,
            )
            for i, (name, c, u) in enumerate([("x", 0, 1), ("x", 0, 0), ("y", 1, 0), ("a", -1, 1)])
        ]
    if model is Log:
        flow_runs, task_runs = [uuid.uuid4(), uuid.uuid4()], [uuid.uuid4(), uuid.uuid4()]
        spec = [(20, 0, 0, None), (10, 0, 1, 0), (20, 1, 0, 1), (30, -1, 1, None), (10, 1, 0, 0)]
        return [
            add(
                Log,
                name="l",
                message=f"m{i}",
                level=level,
                timestamp=T0 + minutes * MINUTE,
                flow_run_id=flow_runs[run],
                task_run_id=None if task is None else task_runs[task],
            )
            for i, (level, minutes, run, task) in enumerate(spec)
        ]
    if model is Agent:
        return [add(Agent, name=name) for name in ("b", "a", "c")]
    pool = add(WorkPool, name="p", type="process", base_job_template={})
    if model is WorkPool:
        return [pool, *(add(WorkPool, name=n, type="t", base_job_template={}) for n in "bac")]
    if model is Worker:
        times = [T0, None, T0 + HOUR, T0]
        return [
            add(Worker, name=f"w{i}", work_pool=pool.id, last_heartbeat_time=when)
            for i, when in enumerate(times)
        ]
    return [add(WorkQueue, name=name, work_pool=pool.id) for name in ("b", "a", "c")]


SORT_CASES = [(model, sort) for model, sorts in REFERENCE_SORTS.items() for sort in sorts]


def test_sort_tables_agree_with_schemas():
    for model, names in SCHEMA_SORTS.items():
        assert set(filters.SORTS[model]) == set(names) == set(REFERENCE_SORTS[model])
        assert filters.DEFAULT_SORTS[model] in names


@pytest.mark.parametrize(
    "model, sort", SORT_CASES, ids=[f"{m.__name__}.{s}" for m, s in SORT_CASES]
)
def test_sort(db, model, sort):
    rows = make_sort_rows(model)
    expected = [r.id for r in reference_order(rows, *REFERENCE_SORTS[model][sort])]
    query = filters.apply_sort(model.select(), model, sort)
    assert [r.id for r in query] == expected
    # Paging through in pages of two visits every row once, in the same order.
    pages = [filters.apply_pagination(query, 2, offset) for offset in range(0, len(rows), 2)]
    assert [r.id for page in pages for r in page] == expected


@pytest.mark.parametrize("model", list(filters.DEFAULT_SORTS))
def test_default_sort(db, model):
    make_sort_rows(model)
    default = filters.SORTS[model][filters.DEFAULT_SORTS[model]]
    assert [r.id for r in filters.apply_sort(model.select(), model)] == [
        r.id for r in model.select().order_by(*default)
    ]


def test_null_placement_and_coalesced_start_time(db):
    rows = make_sort_rows(FlowRun)
    never_expected = rows[2]  # expected_start_time and start_time are both NULL

    def names(sort):
        return [r.id for r in filters.apply_sort(FlowRun.select(), FlowRun, sort)]

    assert names("EXPECTED_START_TIME_ASC")[-1] == never_expected.id
    assert names("EXPECTED_START_TIME_DESC")[0] == never_expected.id
    assert names("START_TIME_ASC")[-1] == never_expected.id
    # Coalesced: rows[0] never started but was expected at T0, before everyone's start.
    assert names("START_TIME_ASC")[0] == rows[0].id
    unfinished = {rows[1].id, rows[3].id}
    assert set(names("END_TIME_DESC")[:2]) == unfinished


@pytest.mark.parametrize(
    "limit, offset, expected",
    [
        (None, 0, ["a", "b", "c"]),
        (2, 0, ["a", "b"]),
        (2, 2, ["c"]),
        (0, 0, []),
        (200, 3, []),
        (None, 5, []),
        (None, 1, ["b", "c"]),
    ],
)
def test_pagination(db, limit, offset, expected):
    make_sort_rows(WorkQueue)
    query = filters.apply_pagination(
        filters.apply_sort(WorkQueue.select(), WorkQueue), limit, offset
    )
    assert [q.name for q in query] == expected


def test_sort_and_page_reads_the_loaded_body(db):
    make_sort_rows(Flow)
    body = BODY_SCHEMAS[Flow].load({"sort": "NAME_DESC", "limit": 2, "offset": 1})
    assert [f.name for f in filters.sort_and_page(Flow.select(), Flow, body)] == ["c", "b"]
    defaults = BODY_SCHEMAS[Flow].load({})
    assert [f.name for f in filters.sort_and_page(Flow.select(), Flow, defaults)] == [
        "a",
        "b",
        "c",
        "d",
    ]
