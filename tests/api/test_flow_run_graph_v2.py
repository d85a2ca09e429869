"""GET /api/flow_runs/{id}/graph-v2: a flow run's graph in Prefect 2.20's shape (the 2.20 UI's
run graph; Prefect 2.20's own UI draws it in tests/browser/test_prefect_220_ui.py)."""

import datetime
import uuid

import pytest

from app.exceptions import TooLarge
from app.schemas.graph import GraphSchema
from app.services.flow_run_graph import read_flow_run_graph_v2
from tests.conftest import assert_422


def propose(client, kind, run_id, state_type, **state):
    response = client.post(
        f"/api/{kind}/{run_id}/set_state", json={"state": {"type": state_type, **state}}
    )
    assert response.get_json()["status"] == "ACCEPT", response.get_json()


def task(client, flow_run, key, inputs=None, states=("RUNNING", "COMPLETED")):
    run = client.post(
        "/api/task_runs/",
        json={
            "flow_run_id": flow_run["id"],
            "task_key": key,
            "dynamic_key": "0",
            "name": f"{key}-0",
            "task_inputs": inputs or {},
        },
    ).get_json()
    for state_type in states:
        propose(client, "task_runs", run["id"], state_type)
    return run


def upstream(*runs):
    return [{"input_type": "task_run", "id": run["id"]} for run in runs]


def artifact(client, flow_run, key=None, task_run=None, type_="markdown"):
    response = client.post(
        "/api/artifacts/",
        json={
            "key": key,
            "type": type_,
            "data": "# hi",
            "flow_run_id": flow_run["id"],
            "task_run_id": task_run["id"] if task_run else None,
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def graph(client, flow_run, **query):
    response = client.get(f"/api/flow_runs/{flow_run['id']}/graph-v2", query_string=query)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    GraphSchema().load(body)
    return body


@pytest.fixture
def built(client, flow):
    """A running flow run with: extract -> clean -> load (load also waits for extract), a
    pending task (no node), a task that ran a subflow (the subflow's node, after clean), a
    cached task (COMPLETED with no start or end), artifacts of the run and of clean."""
    run = client.post("/api/flow_runs/", json={"flow_id": flow["id"], "name": "parent"})
    run = run.get_json()
    propose(client, "flow_runs", run["id"], "RUNNING")
    extract = task(client, run, "extract")
    clean = task(client, run, "clean", {"rows": upstream(extract)})
    load = task(
        client, run, "load", {"rows": upstream(clean), "wait_for": upstream(extract)}, ("RUNNING",)
    )
    task(client, run, "pending", states=())
    wrapper = task(client, run, "child", {"x": upstream(clean)}, ("RUNNING",))
    child_flow = client.post("/api/flows/", json={"name": "child-flow"}).get_json()
    subflow = client.post(
        "/api/flow_runs/",
        json={"flow_id": child_flow["id"], "name": "kid", "parent_task_run_id": wrapper["id"]},
    ).get_json()
    propose(client, "flow_runs", subflow["id"], "RUNNING")
    cached = task(client, run, "cached", states=("COMPLETED",))
    first = artifact(client, run, key="report")
    second = artifact(client, run, key="report")
    table = artifact(client, run, task_run=clean, type_="table")
    artifact(client, run, task_run=clean, type_="result")
    return {
        "run": run,
        "extract": extract,
        "clean": clean,
        "load": load,
        "subflow": subflow,
        "cached": cached,
        "artifacts": (first, second, table),
    }


def test_nodes_edges_and_subflows(client, built):
    body = graph(client, built["run"])
    nodes = dict(body["nodes"])
    extract, clean, load = (built[k]["id"] for k in ("extract", "clean", "load"))
    subflow, cached = built["subflow"]["id"], built["cached"]["id"]
    assert set(nodes) == {extract, clean, load, subflow, cached}, "no node for a pending task"
    assert [n["id"] for _, n in body["nodes"]] == [i for i, _ in body["nodes"]]
    starts = [node["start_time"] for _, node in body["nodes"]]
    assert starts == sorted(starts)
    assert sorted(body["root_node_ids"]) == sorted([extract, cached])

    assert nodes[extract]["kind"] == "task-run" and nodes[extract]["label"] == "extract-0"
    assert nodes[extract]["state_type"] == "COMPLETED" and nodes[extract]["end_time"]
    assert {c["id"] for c in nodes[extract]["children"]} == {clean, load}
    assert [p["id"] for p in nodes[load]["parents"]] == [extract, clean], "by start time"
    assert nodes[load]["end_time"] is None and nodes[load]["state_type"] == "RUNNING"
    assert {c["id"] for c in nodes[clean]["children"]} == {load, subflow}

    child = nodes[subflow]
    assert (child["kind"], child["label"], child["state_type"]) == (
        "flow-run",
        "child-flow / kid",
        "RUNNING",
    )
    assert child["parents"] == [{"id": clean}] and child["children"] == []
    # A cached task never ran: it ends where it was expected to start.
    assert nodes[cached]["end_time"] == nodes[cached]["start_time"]


def test_artifacts_and_states(client, built):
    body = graph(client, built["run"])
    first, second, table = built["artifacts"]
    assert [(a["id"], a["key"], a["is_latest"]) for a in body["artifacts"]] == [
        (first["id"], "report", False),
        (second["id"], "report", True),
    ]
    nodes = dict(body["nodes"])
    (made,) = nodes[built["clean"]["id"]]["artifacts"]
    assert (made["id"], made["type"], made["is_latest"]) == (table["id"], "table", True)
    assert nodes[built["extract"]["id"]]["artifacts"] == []
    assert [(s["type"], s["name"]) for s in body["states"]] == [
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
    ]
    run = client.get(f"/api/flow_runs/{built['run']['id']}").get_json()
    assert (body["start_time"], body["end_time"]) == (run["start_time"], None)


def test_since_leaves_out_nodes_that_ended_before(client, built):
    nodes = dict(graph(client, built["run"])["nodes"])
    ended = max(n["end_time"] for n in nodes.values() if n["end_time"])
    after = (datetime.datetime.fromisoformat(ended) + datetime.timedelta(seconds=1)).isoformat()
    later = graph(client, built["run"], since=after)
    assert {node_id for node_id, _ in later["nodes"]} == {
        built["load"]["id"],
        built["subflow"]["id"],
    }, "only what has not ended"
    everything = graph(client, built["run"], since="1970-01-01T00:00:00Z")
    assert len(everything["nodes"]) == len(nodes)


def test_a_run_without_tasks(client, flow_run):
    body = graph(client, flow_run)
    assert (body["nodes"], body["root_node_ids"], body["artifacts"]) == ([], [], [])
    assert body["start_time"] == flow_run["expected_start_time"]


def test_errors(client, built):
    assert client.get(f"/api/flow_runs/{uuid.uuid4()}/graph-v2").status_code == 404
    path = f"/api/flow_runs/{built['run']['id']}/graph-v2"
    assert_422(client.get(path, query_string={"since": "yesterday"}), "query", "since")
    assert_422(client.get(path, query_string={"since": "0001-01-01T00:00:00Z"}), "query", "since")
    with pytest.raises(TooLarge, match="more than 4 nodes"):
        read_flow_run_graph_v2(built["run"]["id"], max_nodes=4)
