"""Cancelling flow runs: straight to Cancelled without infrastructure, cascade to children."""

import pytest

from app.models import ConcurrencySlot, FlowRun, TaskRun


def propose(client, run_id, state_type, force=False, message=None, kind="flow_runs"):
    return client.post(
        f"/api/{kind}/{run_id}/set_state",
        json={"state": {"type": state_type, "message": message}, "force": force},
    )


def run_in(client, flow, *states, **fields):
    run = client.post("/api/flow_runs/", json={"flow_id": flow["id"], **fields}).get_json()
    for state in states:
        assert propose(client, run["id"], state).status_code == 201
    return run["id"]


def task_in(client, flow_run_id, key, state="RUNNING", tags=()):
    body = client.post(
        "/api/task_runs/create_and_set_state",
        json={
            "flow_run_id": flow_run_id,
            "task_key": key,
            "dynamic_key": "0",
            "tags": list(tags),
            "proposed_state": {"type": state},
        },
    ).get_json()
    assert body["orchestration_result"]["status"] == "ACCEPT", body
    return body["task_run"]["id"]


def subflow_of(client, flow, parent_task_id, *states):
    return run_in(client, flow, *states, parent_task_run_id=parent_task_id)


def type_of(run_id, model=FlowRun):
    return model.get_by_id(run_id).state_type


class TestCancelWithoutInfrastructure:
    def test_a_scheduled_run_is_cancelled_at_once(self, client, flow):
        run_id = run_in(client, flow, state={"type": "SCHEDULED"})
        response = propose(client, run_id, "CANCELLING", message="not today")
        assert response.status_code == 201
        body = response.get_json()
        assert body["status"] == "REJECT"
        assert body["state"]["type"] == "CANCELLED"
        assert body["state"]["name"] == "Cancelled"
        assert body["state"]["message"] == "not today"
        assert "no infrastructure" in body["details"]["reason"]
        assert type_of(run_id) == "CANCELLED"

    def test_a_pending_run_without_a_pid_is_cancelled_at_once(self, client, flow):
        run_id = run_in(client, flow)
        assert propose(client, run_id, "CANCELLING").get_json()["state"]["type"] == "CANCELLED"

    def test_a_pending_run_with_a_pid_is_cancelling(self, client, flow):
        run_id = run_in(client, flow)
        client.patch(f"/api/flow_runs/{run_id}", json={"infrastructure_pid": "4242"})
        body = propose(client, run_id, "CANCELLING").get_json()
        assert (body["status"], body["state"]["type"]) == ("ACCEPT", "CANCELLING")

    def test_a_running_run_is_cancelling_until_its_agent_reports(self, client, flow):
        run_id = run_in(client, flow, "RUNNING")
        body = propose(client, run_id, "CANCELLING").get_json()
        assert (body["status"], body["state"]["type"]) == ("ACCEPT", "CANCELLING")
        assert propose(client, run_id, "RUNNING").get_json()["status"] == "REJECT"
        assert propose(client, run_id, "CANCELLED", force=True).status_code == 201
        assert type_of(run_id) == "CANCELLED"


class TestCascade:
    @pytest.mark.parametrize("force", [False, True])
    def test_children_of_a_cancelled_run_are_cancelled(self, client, flow, force):
        client.post("/api/concurrency_limits/", json={"tag": "db", "concurrency_limit": 5})
        parent = run_in(client, flow, "RUNNING")
        running = task_in(client, parent, "work", tags=["db"])
        done = task_in(client, parent, "done")
        assert propose(client, done, "COMPLETED", kind="task_runs").status_code == 201
        sub_task = task_in(client, parent, "sub")
        child = subflow_of(client, flow, sub_task, "RUNNING")
        child_task = task_in(client, child, "inner", tags=["db"])
        grandchild = subflow_of(client, flow, task_in(client, child, "deeper"), "RUNNING")
        finished_task = task_in(client, parent, "finished-sub")
        finished = subflow_of(client, flow, finished_task, "RUNNING", "COMPLETED")
        assert ConcurrencySlot.select().count() == 2

        assert propose(client, parent, "CANCELLING").status_code == 201
        assert type_of(child) == "RUNNING"
        assert propose(client, parent, "CANCELLED", force=force).status_code == 201

        assert [type_of(r) for r in (parent, child, grandchild, finished)] == [
            "CANCELLED",
            "CANCELLED",
            "CANCELLED",
            "COMPLETED",
        ]
        tasks = {
            t: type_of(t, TaskRun) for t in (running, done, sub_task, child_task, finished_task)
        }
        assert tasks == {
            running: "CANCELLED",
            done: "COMPLETED",
            sub_task: "CANCELLED",
            child_task: "CANCELLED",
            finished_task: "COMPLETED",
        }
        assert ConcurrencySlot.select().count() == 0
        child_state = client.get(f"/api/flow_runs/{child}").get_json()["state"]
        assert child_state["message"] == f"The parent flow run {parent} was cancelled."
        sub_state = client.get(f"/api/task_runs/{sub_task}").get_json()["state"]
        assert sub_state["state_details"]["child_flow_run_id"] == child

    def test_cancelling_a_subflow_leaves_its_parent_running(self, client, flow):
        parent = run_in(client, flow, "RUNNING")
        sub_task = task_in(client, parent, "sub")
        sibling = task_in(client, parent, "sibling")
        child = subflow_of(client, flow, sub_task, "RUNNING")
        propose(client, child, "CANCELLING")
        propose(client, child, "CANCELLED", force=True)
        assert type_of(parent) == "RUNNING"
        assert type_of(sub_task, TaskRun) == "CANCELLED"
        assert type_of(sibling, TaskRun) == "RUNNING"

    def test_a_cancelled_scheduled_run_has_nothing_to_cascade(self, client, flow):
        run_id = run_in(client, flow, state={"type": "SCHEDULED"})
        assert propose(client, run_id, "CANCELLING").status_code == 201
        assert client.get(f"/api/flow_runs/{run_id}").get_json()["state"]["type"] == "CANCELLED"
