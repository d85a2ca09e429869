"""A property-based test of runs' lives through the API (hypothesis RuleBasedStateMachine).

Each example creates a flow run (initial state, retries and deployment drawn) with one task
run in it, then takes random steps: proposals of any state type for either run (forced or
not), pauses (keys, reschedule, timeouts), resumes, cancellation (CANCELLING, then the
agent's forced CANCELLED), manual retries of the flow run, and clock moves. The server's
clock is the test's: the modules that read the time for orchestration are given a clock that
runs with real time plus the moves.

After every step, for both runs:

- the API answered 201 exactly when it wrote a state row (200 otherwise), and every
  non-ACCEPT answer carries a reason;
- the run's state rows, ordered by timestamp, are exactly the states written, in the order
  they were written (so timestamps strictly increase along the history);
- the run's denormalised state columns equal its newest state row;
- ``run_count`` is the number of entries into RUNNING, except that a flow run resuming from a
  pause is not on a new attempt, and a task run restarted by its flow's retry starts again
  at 1 (ORION-REFERENCE §3; the resume deviation is documented in HandleResumingPausedFlows);
- ``start_time`` is the timestamp of the first RUNNING state;
- ``end_time`` is set exactly when the state is terminal (COMPLETED, FAILED, CANCELLED,
  CRASHED; not PAUSED or CANCELLING) and the run has started: Orion's SetEndTime only stamps
  runs that started.

Settings are deterministic (derandomize, no example database) and modest, so that CI is
stable and the test stays quick on each backend.
"""

import datetime
import uuid

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import app.services.flow_runs
import app.services.orchestration
import app.services.runs
from app.models import Deployment, FlowRun, FlowRunState, TaskRun, TaskRunState, utcnow

# Hypothesis draws (and shrinks towards) the first choices of a list most often, so lists of
# choices start with those that lead further into a run's life.
TYPES = [
    "RUNNING",
    "FAILED",
    "PAUSED",
    "SCHEDULED",
    "PENDING",
    "COMPLETED",
    "CRASHED",
    "CANCELLING",
    "CANCELLED",
]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
RETRYABLE = {"FAILED", "CRASHED", "CANCELLED"}
FORCE = st.sampled_from([False, False, False, True])
# How a flow run (with one task run in it) is created: its initial state (None: Pending),
# when a SCHEDULED one is due (seconds from now), the retry policies, and a deployment.
NEW_RUNS = dict(
    initial=st.sampled_from(["RUNNING", None, "SCHEDULED", "PENDING"]),
    due_in=st.sampled_from([-60, 0, 30, 3600]),
    retries=st.sampled_from([1, 2, 0]),
    retry_delay=st.sampled_from([0, 30]),
    deployment=st.sampled_from([True, True, True, False]),
    task_retries=st.sampled_from([1, 2, 0]),
    task_retry_delay=st.sampled_from([0, 30]),
)


class Clock:
    """The server's time in this test: real time plus every move made so far."""

    def __init__(self):
        self.offset = datetime.timedelta()

    def __call__(self):
        return utcnow() + self.offset

    def move(self, seconds):
        self.offset += datetime.timedelta(seconds=seconds)


def due_time(state):
    when = (state.get("state_details") or {}).get("scheduled_time")
    return datetime.datetime.fromisoformat(when) if when else None


class Tracked:
    """What the test knows of one run: the ids of the states written to it, in order, the
    run count those transitions imply, and when its current state is due (its
    ``scheduled_time``, or None)."""

    def __init__(self, kind, run_id, state):
        self.kind, self.id = kind, run_id
        self.history = [state["id"]]
        self.last_type = state["type"]
        self.due = due_time(state)
        self.run_count = 1 if state["type"] == "RUNNING" else 0
        self.resuming = False
        self.model, self.state_model, self.link = (
            (FlowRun, FlowRunState, FlowRunState.flow_run)
            if kind == "flow_runs"
            else (TaskRun, TaskRunState, TaskRunState.task_run)
        )

    def states(self):
        """The run's state rows (id, type, name, timestamp), ordered by timestamp."""
        m = self.state_model
        return list(
            m.select(m.id, m.type, m.name, m.timestamp)
            .where(self.link == self.id)
            .order_by(m.timestamp)
            .namedtuples()
        )

    def row(self):
        """The run's columns that follow its states."""
        m = self.model
        return (
            m.select(
                m.state_id,
                m.state_type,
                m.state_name,
                m.state_timestamp,
                m.run_count,
                m.start_time,
                m.end_time,
            )
            .where(m.id == self.id)
            .namedtuples()
            .get()
        )

    def record(self, state, status, force):
        """Account for a state written by a transition from ``last_type``."""
        before, new = self.last_type, state["type"]
        if self.kind == "flow_runs":
            # HandleResumingPausedFlows marks an accepted, unforced move out of PAUSED.
            resumed = not force and before == "PAUSED" and status == "ACCEPT"
            if new == "RUNNING" and before != "RUNNING" and not (self.resuming or resumed):
                self.run_count += 1
            self.resuming = (self.resuming or resumed) and new not in TERMINAL | {"RUNNING"}
        elif new == "RUNNING" and before != "RUNNING":
            # An unforced restart from a terminal state is a flow retry: the count restarts.
            flow_retry = not force and before in RETRYABLE
            self.run_count = 1 if flow_retry else self.run_count + 1
        self.history.append(state["id"])
        self.last_type = new
        self.due = due_time(state)


class RunLife(RuleBasedStateMachine):
    def __init__(self, client, flow_id, deployment_id, clock):
        super().__init__()
        self.client, self.flow_id, self.deployment_id, self.clock = (
            client,
            flow_id,
            deployment_id,
            clock,
        )

    # --- helpers ---------------------------------------------------------------------------

    def post(self, path, body=None):
        response = self.client.post(path, json=body)
        assert response.status_code in (200, 201), response.get_json()
        return response.status_code, response.get_json()

    def when(self, seconds):
        return (self.clock() + datetime.timedelta(seconds=seconds)).isoformat()

    def transition(self, run, path, body=None, force=False):
        """POST a transition of ``run``. A 201 answer's state is recorded as written; the
        invariant then finds exactly the recorded states in the database (so 201 iff a row
        was written)."""
        code, result = self.post(path, body)
        if result["status"] != "ACCEPT":
            assert isinstance(result["details"].get("reason"), str)
            assert result["details"]["reason"].strip(), result
        if code == 201:
            run.record(result["state"], result["status"], force)
            if (
                run is self.flow
                and result["state"]["type"] == "CANCELLED"
                and self.task.last_type not in TERMINAL
            ):
                self.record_cascade()
        return result

    def record_cascade(self):
        """A flow run that became CANCELLED forced its unfinished task run to Cancelled."""
        newest = self.task.states()[-1]
        assert (newest.type, newest.name) == ("CANCELLED", "Cancelled")
        self.task.record({"id": str(newest.id), "type": "CANCELLED"}, "ACCEPT", True)

    def propose_state(self, run, state_type, force=False, name=None, **details):
        state = {"type": state_type, "state_details": details}
        if name:
            state["name"] = name
        return self.transition(
            run, f"/api/{run.kind}/{run.id}/set_state", {"state": state, "force": force}, force
        )

    # --- rules -----------------------------------------------------------------------------

    @initialize(**NEW_RUNS)
    def create(self, **draws):
        self.create_runs(**draws)

    @precondition(lambda self: self.flow.last_type in TERMINAL)
    @rule(**NEW_RUNS)
    def next_life(self, **draws):
        """Once the flow run has ended, follow a new pair of runs."""
        self.create_runs(**draws)

    def create_runs(
        self, initial, due_in, retries, retry_delay, deployment, task_retries, task_retry_delay
    ):
        body = {
            "flow_id": self.flow_id,
            "empirical_policy": {"retries": retries, "retry_delay": retry_delay},
        }
        if deployment:
            body["deployment_id"] = self.deployment_id
        if initial is not None:
            body["state"] = {"type": initial}
            if initial == "SCHEDULED":
                body["state"]["state_details"] = {"scheduled_time": self.when(due_in)}
        code, run = self.post("/api/flow_runs/", body)
        assert code == 201
        self.flow = Tracked("flow_runs", run["id"], run["state"])
        code, task = self.post(
            "/api/task_runs/",
            {
                "flow_run_id": run["id"],
                "task_key": "t",
                "dynamic_key": "0",
                "empirical_policy": {"retries": task_retries, "retry_delay": task_retry_delay},
            },
        )
        assert code == 201
        self.task = Tracked("task_runs", task["id"], task["state"])

    @rule(which=st.sampled_from(["flow", "task"]), state_type=st.sampled_from(TYPES), force=FORCE)
    def propose(self, which, state_type, force):
        """Any proposal, sensible or not."""
        self.propose_state(self.flow if which == "flow" else self.task, state_type, force)

    # The usual moves of a run's life, each taken only when it makes sense, so that examples
    # reach retries, pauses and reruns far more often than random proposals alone would.

    @precondition(
        lambda self: (
            self.flow.last_type in ("SCHEDULED", "PENDING")
            and not (self.flow.due and self.flow.due > self.clock())
        )
    )
    @rule()
    def start_flow(self):
        """An agent submits the flow run once it is due, and it starts."""
        if self.flow.last_type == "SCHEDULED":
            self.propose_state(self.flow, "PENDING")
        self.propose_state(self.flow, "RUNNING")

    @precondition(lambda self: self.flow.last_type == "RUNNING")
    @rule()
    def start_task(self):
        self.propose_state(self.task, "RUNNING")

    @precondition(lambda self: self.task.last_type == "RUNNING")
    @rule()
    def fail_task(self):
        """The task fails: it is retried while it has retries left."""
        self.propose_state(self.task, "FAILED")

    @precondition(lambda self: self.flow.last_type == "RUNNING")
    @rule()
    def fail_flow(self):
        self.propose_state(self.flow, "FAILED")

    @precondition(lambda self: "RUNNING" in (self.flow.last_type, self.task.last_type))
    @rule(which=st.sampled_from(["flow", "task"]))
    def complete(self, which):
        self.propose_state(self.flow if which == "flow" else self.task, "COMPLETED")

    @precondition(lambda self: self.flow.last_type == "RUNNING")
    @rule(
        key=st.sampled_from([None, "k1", "k2"]),
        reschedule=st.sampled_from([False, True]),
        timeout=st.sampled_from([None, 30, 3600]),
    )
    def pause(self, key, reschedule, timeout):
        details = {"pause_key": key, "pause_reschedule": reschedule}
        if timeout is not None:
            details["pause_timeout"] = self.when(timeout)
        self.propose_state(self.flow, "PAUSED", **details)

    @precondition(lambda self: self.flow.last_type == "PAUSED")
    @rule()
    def resume(self):
        """Resume; a run that paused to be rescheduled is then picked up by an agent."""
        result = self.transition(self.flow, f"/api/flow_runs/{self.flow.id}/resume")
        if result["state"] and result["state"]["name"] == "Resuming":
            self.start_flow()

    @precondition(lambda self: self.flow.last_type == "RUNNING")
    @rule()
    def cancel(self):
        """A user cancels; the agent then stops the run and forces Cancelled."""
        if self.propose_state(self.flow, "CANCELLING")["status"] == "ACCEPT":
            self.propose_state(self.flow, "CANCELLED", force=True)

    @precondition(lambda self: self.flow.last_type in ("COMPLETED", "FAILED", "CRASHED"))
    @rule()
    def manual_retry(self):
        self.propose_state(self.flow, "SCHEDULED", name="AwaitingRetry")

    @rule(seconds=st.sampled_from([1, 31, 3601]))
    def clock_moves(self, seconds):
        self.clock.move(seconds)

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def runs_agree_with_their_histories(self):
        for tracked in (self.flow, self.task):
            states = tracked.states()
            assert [str(s.id) for s in states] == tracked.history
            stamps = [s.timestamp for s in states]
            assert all(a < b for a, b in zip(stamps, stamps[1:])), stamps
            run, newest = tracked.row(), states[-1]
            assert (str(run.state_id), run.state_type, run.state_name, run.state_timestamp) == (
                str(newest.id),
                newest.type,
                newest.name,
                newest.timestamp,
            )
            assert run.run_count == tracked.run_count, (
                tracked.kind,
                [(s.type, s.name) for s in states],
            )
            first_running = next((s.timestamp for s in states if s.type == "RUNNING"), None)
            assert run.start_time == first_running
            ended = run.state_type in TERMINAL and run.start_time is not None
            assert (run.end_time is not None) == ended, (run.state_type, run.end_time)


@pytest.fixture
def clock(monkeypatch):
    """The server's clock for this test, in every module that reads it for orchestration."""
    clock = Clock()
    for module in (app.services.orchestration, app.services.flow_runs, app.services.runs):
        monkeypatch.setattr(module, "utcnow", clock)
    return clock


def test_a_runs_life_keeps_its_invariants(app, client, flow, clock):
    deployment_id = str(Deployment.create(flow=flow["id"], name=f"d-{uuid.uuid4().hex}").id)
    with app.app_context():
        run_state_machine_as_test(
            lambda: RunLife(client, flow["id"], deployment_id, clock),
            settings=settings(
                max_examples=40,
                stateful_step_count=25,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
