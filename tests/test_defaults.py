"""Defaults of the server and of the agent that must agree: a healthy agent claims a run
before the server's late-runs service calls it Late (the rule stated in the README's "Late
runs")."""

import datetime

import pytest

from app.config import load_config
from app.services.scheduler import mark_late_runs
from client.agent.agent import JITTER, AgentSettings

# Seconds a healthy agent's poll may take from asking for due runs to the run's claim
# (PENDING accepted): a few round trips and starting earlier claims' processes.
CLAIM_SECONDS = 5


@pytest.fixture
def defaults(monkeypatch):
    """``(server settings, agent settings)`` as they are with no ORION_* variable set."""
    for name in (
        "ORION_LATE_RUNS_AFTER_SECONDS",
        "ORION_AGENT_QUERY_INTERVAL",
        "ORION_AGENT_PREFETCH_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    return load_config(), AgentSettings.from_env({})


def longest_claim_delay(agent):
    """Seconds from a run falling due to a healthy agent claiming it, at worst: the run falls
    due just after a poll, the next poll comes after the longest jittered interval."""
    return agent.query_interval * (1 + JITTER) + CLAIM_SECONDS


def test_a_healthy_agent_claims_before_the_late_threshold(defaults):
    server, agent = defaults
    assert server["LATE_RUNS_AFTER_SECONDS"] >= longest_claim_delay(agent)


def test_a_run_due_now_is_not_late_by_the_time_a_healthy_agent_claims_it(client, flow, defaults):
    """The late-runs service with the default threshold, at the moment the slowest healthy
    agent claims a run started now, leaves it Scheduled; a run nobody claimed goes Late."""
    server, agent = defaults
    deployment = client.post("/api/deployments/", json={"name": "now", "flow_id": flow["id"]})
    due = datetime.datetime.now(datetime.UTC)
    created = client.post(
        f"/api/deployments/{deployment.get_json()['id']}/create_flow_run",
        json={"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": due.isoformat()}}},
    )
    assert created.status_code == 201
    late_after = datetime.timedelta(seconds=server["LATE_RUNS_AFTER_SECONDS"])
    claimed_at = due + datetime.timedelta(seconds=longest_claim_delay(agent))
    assert mark_late_runs(claimed_at, late_after) == 0
    assert mark_late_runs(due + late_after + datetime.timedelta(seconds=1), late_after) == 1
    run = client.get(f"/api/flow_runs/{created.get_json()['id']}").get_json()
    assert run["state"]["name"] == "Late"


def test_a_dead_flow_run_is_crashed_within_30_s_by_default(monkeypatch):
    """The liveness service's defaults: a run silent for the heartbeat timeout is Crashed at
    the next pass; a healthy run sends at least three heartbeats within the timeout, so one or
    two lost beats (a slow request, a server restart) do not crash it."""
    from app.services.periodic import SERVICES
    from client.api.settings import get_settings

    for name in ("ORION_RUN_HEARTBEAT_TIMEOUT", "ORION_LIVENESS_LOOP_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    server = load_config()
    liveness = next(s for s in SERVICES if s.name == "liveness")
    timeout = server["RUN_HEARTBEAT_TIMEOUT"]
    assert timeout + liveness.interval(server) <= 30
    assert timeout >= 3 * get_settings({}).heartbeat_seconds


def test_a_healthy_agent_stays_online(defaults):
    """An agent beats at least three times within the timeout that shows it offline."""
    server, agent = defaults
    assert server["AGENT_HEARTBEAT_TIMEOUT"] >= 3 * agent.heartbeat_seconds
