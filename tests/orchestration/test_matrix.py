"""The full orchestration matrix, compared with the committed table matrix_expectations.csv.

For each policy (flow runs, task runs) × current state (none, one of the 9 state types, or
PAUSED with an expired pause timeout) × proposal (each of the 9 types with its default name,
plus SCHEDULED named AwaitingRetry, the one name the rules treat specially) × force off/on,
a fresh run is put in the current state and the proposal goes through the real service
(``set_flow_run_state`` / ``set_task_run_state``) on the real database. Each row records the
status, the state the caller gets back (type and name, empty for none) and whether a state row
was written (counted in the database, and checked against the result's ``written`` flag).

The set-up of every case (also in the table's header):

- a flow run belongs to a deployment and has ``retries=1, retry_delay=0``; a task run has
  ``retries=1, retry_delay=0``, no tags and no cache key, and its flow run is RUNNING on its
  first attempt (``run_count`` 1) with the task recorded as belonging to that attempt
  (``flow_run_run_count`` 1);
- the current state is written as a run is created with a state (RUNNING therefore counts
  the first attempt, so a FAILED proposal has a retry left); SCHEDULED is due in one hour
  (so a RUNNING proposal WAITs); PENDING has no scheduled time; PAUSED has no timeout and no
  reschedule, and "PAUSED:expired" is PAUSED whose pause timed out an hour ago; terminal
  states carry no data; "none" is a run row with no state at all;
- proposals carry no message, data or state details.

Every non-ACCEPT result must carry a non-empty reason. When a rule changes on purpose,
regenerate the table and review its diff::

    ORION_REGENERATE_MATRIX=1 scripts/test tests/orchestration/test_matrix.py

(with the variable set, the test writes the table instead of comparing, and still checks the
reasons and the written flag).
"""

import csv
import datetime
import io
import os
import pathlib
import uuid

import pytest

from app.models import Deployment, FlowRun, FlowRunState, TaskRun, TaskRunState, utcnow
from app.orchestration.rules import SetStateStatus
from app.schemas.states import StateCreateSchema
from app.services.orchestration import set_flow_run_state, set_task_run_state

TABLE = pathlib.Path(__file__).with_name("matrix_expectations.csv")
REGENERATE = os.environ.get("ORION_REGENERATE_MATRIX") == "1"

TYPES = [
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "CRASHED",
    "PAUSED",
    "CANCELLING",
]
FROM_STATES = ["NONE", *TYPES, "PAUSED:expired"]
PROPOSALS = [*TYPES, "SCHEDULED:AwaitingRetry"]
COLUMNS = ["policy", "from", "proposed", "force", "status", "state_type", "state_name", "written"]
HEADER = """\
# Expected outcome of every proposal under the core flow and task policies (force=0) and
# the minimal forced ones (force=1); generated and checked by test_matrix.py, whose
# docstring says how to regenerate it. Set-up of every case:
#   flow run: has a deployment; empirical_policy retries=1, retry_delay=0.
#   task run: retries=1, retry_delay=0, no tags, no cache key; its flow run is RUNNING
#     (run_count 1) and the task belongs to that attempt (flow_run_run_count 1).
#   from: the run's current state, written as at creation (RUNNING counts one attempt);
#     SCHEDULED is due in one hour; PENDING has no scheduled time; PAUSED has no timeout
#     and no reschedule; PAUSED:expired timed out an hour ago; NONE is a run with no state.
#   proposed: TYPE with its default name, or TYPE:Name; no message, data or details.
#   state_type/state_name: the state returned to the caller (empty: none);
#   written: 1 if a state row was added.
"""


def proposal(spec):
    type_, _, name = spec.partition(":")
    body = {"type": type_}
    if name:
        body["name"] = name
    return StateCreateSchema().load(body)


class Cases:
    """Builds each case's run in its current state through the API, and proposes."""

    def __init__(self, client):
        self.client = client
        flow = client.post("/api/flows/", json={"name": "matrix"}).get_json()
        self.flow_id = flow["id"]
        self.deployment_id = str(Deployment.create(flow=self.flow_id, name="matrix").id)
        self.parent = self._post(
            "/api/flow_runs/", {"flow_id": self.flow_id, "state": {"type": "RUNNING"}}
        )

    def _post(self, path, body):
        response = self.client.post(path, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    @staticmethod
    def _state(from_type):
        if from_type == "PAUSED:expired":
            expired = utcnow() - datetime.timedelta(hours=1)
            return {"type": "PAUSED", "state_details": {"pause_timeout": expired.isoformat()}}
        state = {"type": from_type}
        if from_type == "SCHEDULED":
            due = utcnow() + datetime.timedelta(hours=1)
            state["state_details"] = {"scheduled_time": due.isoformat()}
        return state

    def flow_run(self, from_type):
        policy = {"retries": 1, "retry_delay": 0}
        if from_type == "NONE":
            return FlowRun.create(
                flow=self.flow_id,
                deployment=self.deployment_id,
                name=f"m-{uuid.uuid4().hex}",
                empirical_policy=policy,
            ).id
        return self._post(
            "/api/flow_runs/",
            {
                "flow_id": self.flow_id,
                "deployment_id": self.deployment_id,
                "empirical_policy": policy,
                "state": self._state(from_type),
            },
        )

    def task_run(self, from_type):
        key = uuid.uuid4().hex
        policy = {"retries": 1, "retry_delay": 0}
        if from_type == "NONE":
            run_id = TaskRun.create(
                flow_run=self.parent,
                task_key="m",
                dynamic_key=key,
                name=f"m-{key}",
                empirical_policy=policy,
            ).id
        else:
            run_id = self._post(
                "/api/task_runs/",
                {
                    "flow_run_id": self.parent,
                    "task_key": "m",
                    "dynamic_key": key,
                    "empirical_policy": policy,
                    "state": self._state(from_type),
                },
            )
        TaskRun.update(flow_run_run_count=1).where(TaskRun.id == run_id).execute()
        return run_id

    def run(self, policy, from_type, proposed, force):
        if policy == "flow":
            run_id, propose = self.flow_run(from_type), set_flow_run_state
            rows = FlowRunState.select().where(FlowRunState.flow_run == run_id)
        else:
            run_id, propose = self.task_run(from_type), set_task_run_state
            rows = TaskRunState.select().where(TaskRunState.task_run == run_id)
        count = rows.count
        before = count()
        result = propose(run_id, proposal(proposed), force=force)
        written = count() - before
        assert written == int(result.written), (policy, from_type, proposed, force)
        if result.status is not SetStateStatus.ACCEPT:
            reason = result.details.get("reason")
            assert isinstance(reason, str) and reason.strip(), (
                policy,
                from_type,
                proposed,
                force,
                result.details,
            )
        state = result.state
        return {
            "policy": policy,
            "from": from_type,
            "proposed": proposed,
            "force": str(int(force)),
            "status": result.status.value,
            "state_type": state.type if state is not None else "",
            "state_name": state.name if state is not None else "",
            "written": str(written),
        }


def read_table():
    lines = [line for line in TABLE.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def write_table(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    TABLE.write_text(HEADER + out.getvalue())


@pytest.fixture(autouse=True)
def app_ctx(app, db):
    with app.app_context():
        yield


def test_every_transition_matches_the_expectations_table(client):
    cases = Cases(client)
    actual = [
        cases.run(policy, from_type, proposed, force)
        for policy in ("flow", "task")
        for from_type in FROM_STATES
        for proposed in PROPOSALS
        for force in (False, True)
    ]
    if REGENERATE:
        write_table(actual)
        return
    expected = read_table()

    def key(row):
        return (row["policy"], row["from"], row["proposed"], row["force"])

    assert [key(row) for row in expected] == [key(row) for row in actual], (
        "the table's cases differ from the test's: regenerate it"
    )
    mismatches = [
        f"{','.join(key(want))}: expected {want['status']} {want['state_type']}/"
        f"{want['state_name']} written={want['written']}, got {got['status']} "
        f"{got['state_type']}/{got['state_name']} written={got['written']}"
        for want, got in zip(expected, actual)
        if want != got
    ]
    assert not mismatches, "\n".join(mismatches)
