"""Flow run notifications: queued in the transition's transaction, sent by the service to a
real HTTP receiver, at most once, retried with backoff when the receiver fails."""

import datetime
import logging
import time

import pytest

from app.models import FlowRunNotification, utcnow
from app.services import notifications
from app.services.notifications import NotificationSettings, send_notifications
from tests.notification_helpers import install_system_blocks, make_block_document, make_policy
from tests.services.receiver import Receiver

FAST = NotificationSettings(
    timeout_seconds=5,
    max_attempts=3,
    retry_seconds=0.3,
    concurrency=4,
    ui_url="https://orion.example",
)


@pytest.fixture
def blocks(client):
    install_system_blocks(client)
    return client


def new_run(client, flow, tags=(), name=None):
    body = {"flow_id": flow["id"], "tags": list(tags)}
    if name:
        body["name"] = name
    return client.post("/api/flow_runs/", json=body).get_json()


def set_state(client, run, state_type, name=None, force=False):
    response = client.post(
        f"/api/flow_runs/{run['id']}/set_state",
        json={"state": {"type": state_type, "name": name or state_type.title()}, "force": force},
    )
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def fail(client, run):
    set_state(client, run, "RUNNING")
    return set_state(client, run, "FAILED")


def queued():
    return list(FlowRunNotification.select())


def test_a_matching_state_change_queues_exactly_one_notification(blocks, flow):
    slack = make_block_document(blocks, "slack-webhook", {"url": "http://127.0.0.1:9/x"})
    policy = make_policy(
        blocks, slack["id"], state_names=["Failed", "Crashed"], tags=["prod", "nightly"]
    )
    make_policy(blocks, slack["id"], state_names=["Failed"], tags=["prod"], is_active=False)
    tagged = new_run(blocks, flow, tags=["prod", "eu"])
    untagged = new_run(blocks, flow)
    other = new_run(blocks, flow, tags=["dev"])
    for run in (tagged, untagged, other):
        fail(blocks, run)
    rows = queued()
    assert len(rows) == 1
    assert rows[0].policy_id.hex == policy["id"].replace("-", "")
    state = blocks.get(f"/api/flow_runs/{tagged['id']}").get_json()["state"]
    assert str(rows[0].flow_run_state_id) == state["id"]
    # Proposing the same state again writes nothing and queues nothing.
    response = blocks.post(
        f"/api/flow_runs/{tagged['id']}/set_state",
        json={"state": {"type": "FAILED", "name": "Failed"}},
    )
    assert response.get_json()["status"] == "REJECT" or len(queued()) == 1
    assert len(queued()) == 1


def test_empty_lists_match_every_state_and_run_and_creation_counts(blocks, flow):
    slack = make_block_document(blocks, "slack-webhook", {"url": "http://127.0.0.1:9/x"})
    make_policy(blocks, slack["id"], state_names=[], tags=[])
    run = new_run(blocks, flow)  # Pending: the first state notifies too
    set_state(blocks, run, "RUNNING")
    set_state(blocks, run, "COMPLETED")
    assert len(queued()) == 3


def test_a_refused_transition_queues_nothing(blocks, flow):
    slack = make_block_document(blocks, "slack-webhook", {"url": "http://127.0.0.1:9/x"})
    make_policy(blocks, slack["id"], state_names=["Running"], tags=[])
    run = new_run(blocks, flow)
    set_state(blocks, run, "COMPLETED", force=True)
    result = set_state(blocks, run, "RUNNING")  # terminal -> running is refused
    assert result["status"] == "ABORT"
    assert queued() == []


def test_slack_block_receives_the_message_once(blocks, flow):
    with Receiver() as receiver:
        slack = make_block_document(
            blocks, "slack-webhook", {"url": f"{receiver.url}/services/T/B/C"}
        )
        make_policy(blocks, slack["id"], tags=["prod"])
        run = new_run(blocks, flow, tags=["prod"], name="silly-goose")
        fail(blocks, run)
        assert send_notifications(FAST) == {"sent": 1, "retrying": 0, "gave_up": 0, "dropped": 0}
        assert send_notifications(FAST)["sent"] == 0
        requests = receiver.received()
    assert len(requests) == 1
    request = requests[0]
    assert (request["method"], request["path"]) == ("POST", "/services/T/B/C")
    text = request["json"]["text"]
    assert text.startswith("*Prefect flow run notification*\n")
    assert "Flow run etl/silly-goose entered state `Failed`" in text
    assert f"https://orion.example/flow-runs/{run['id']}" in text
    assert queued() == []


def test_webhook_block_uses_method_headers_and_template(blocks, flow):
    with Receiver() as receiver:
        hook = make_block_document(
            blocks,
            "webhook",
            {"url": f"{receiver.url}/hook", "method": "PUT", "headers": {"X-Token": "s3cr3t"}},
        )
        policy = make_policy(
            blocks,
            hook["id"],
            state_names=["Crashed"],
            message_template="{flow_run_name}: {flow_run_state_message}",
        )
        run = new_run(blocks, flow, name="brave-fox")
        set_state(blocks, run, "RUNNING")
        blocks.post(
            f"/api/flow_runs/{run['id']}/set_state",
            json={"state": {"type": "CRASHED", "name": "Crashed", "message": "out of memory"}},
        )
        assert send_notifications(FAST)["sent"] == 1
        (request,) = receiver.received()
    assert request["method"] == "PUT" and request["headers"]["X-Token"] == "s3cr3t"
    body = request["json"]
    assert body["subject"] == "Prefect flow run notification"
    assert body["body"] == "brave-fox: out of memory"
    assert body["flow_run_id"] == run["id"]
    assert body["flow_run_state_name"] == "Crashed"
    assert body["flow_run_notification_policy_id"] == policy["id"]
    assert body["flow_name"] == "etl"


def test_failing_receiver_is_retried_with_backoff_then_given_up(blocks, flow, caplog):
    caplog.set_level(logging.INFO, logger="app.services.notifications")
    with Receiver(status=500) as receiver:
        slack = make_block_document(blocks, "slack-webhook", {"url": f"{receiver.url}/x"})
        make_policy(blocks, slack["id"])
        fail(blocks, new_run(blocks, flow))
        outcomes = []
        deadline = time.monotonic() + 20
        while not outcomes or outcomes[-1]["gave_up"] == 0:
            assert time.monotonic() < deadline, outcomes
            outcome = send_notifications(FAST)
            if any(outcome.values()):
                outcomes.append(outcome)
            time.sleep(0.05)
        times = [r["at"] for r in receiver.received()]
    assert [o["retrying"] for o in outcomes] == [1, 1, 0]
    assert len(times) == FAST.max_attempts == 3
    # Backoff: 0.3 s after the first attempt, 0.6 s after the second.
    assert times[1] - times[0] >= 0.3 and times[2] - times[1] >= 0.6
    assert queued() == []
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failed (attempt" in m and "HTTP 500" in m for m in messages) == 2
    assert any(m.startswith("Gave up sending") and "3 attempt(s)" in m for m in messages)


def test_unreachable_url_is_retried_and_other_notifications_still_go(blocks, flow, caplog):
    with Receiver() as receiver:
        with Receiver() as closed:
            dead_url = f"{closed.url}/gone"  # nothing listens there once the block exits
        dead = make_block_document(blocks, "slack-webhook", {"url": dead_url}, name="dead")
        alive = make_block_document(
            blocks, "slack-webhook", {"url": f"{receiver.url}/ok"}, name="alive"
        )
        make_policy(blocks, dead["id"])
        make_policy(blocks, alive["id"])
        fail(blocks, new_run(blocks, flow))
        first = send_notifications(FAST)
        assert (first["sent"], first["retrying"]) == (1, 1)
        assert len(receiver.received()) == 1
    (row,) = queued()
    assert row.attempts == 1 and row.sending_since is None
    assert "ConnectError" in row.last_error
    assert row.next_attempt_at - row.updated == datetime.timedelta(seconds=FAST.retry_seconds)


def test_client_errors_and_bad_urls_are_given_up_at_once(blocks, flow):
    with Receiver(status=404) as receiver:
        missing = make_block_document(
            blocks, "slack-webhook", {"url": f"{receiver.url}/x"}, name="missing"
        )
        malformed = make_block_document(
            blocks, "webhook", {"url": "ftp://example/x"}, name="malformed"
        )
        make_policy(blocks, missing["id"])
        make_policy(blocks, malformed["id"])
        fail(blocks, new_run(blocks, flow))
        assert send_notifications(FAST) == {"sent": 0, "retrying": 0, "gave_up": 2, "dropped": 0}
        assert len(receiver.received()) == 1
    assert queued() == []


def test_private_urls_refused_when_the_webhook_block_says_so(blocks, flow):
    with Receiver() as receiver:
        hook = make_block_document(
            blocks, "webhook", {"url": f"{receiver.url}/hook", "allow_private_urls": False}
        )
        make_policy(blocks, hook["id"])
        fail(blocks, new_run(blocks, flow))
        assert send_notifications(FAST)["gave_up"] == 1
        assert receiver.received() == []


def test_a_send_left_in_flight_by_a_dead_process_is_never_sent_again(blocks, flow, caplog):
    with Receiver() as receiver:
        slack = make_block_document(blocks, "slack-webhook", {"url": f"{receiver.url}/x"})
        make_policy(blocks, slack["id"])
        fail(blocks, new_run(blocks, flow))
        long_ago = utcnow() - datetime.timedelta(hours=1)
        FlowRunNotification.update(sending_since=long_ago, attempts=1).execute()
        assert send_notifications(FAST)["dropped"] == 1
        assert receiver.received() == []
    assert queued() == []
    assert any("is not sent again" in r.getMessage() for r in caplog.records)


def test_deleted_policy_drops_its_queued_notifications(blocks, flow):
    slack = make_block_document(blocks, "slack-webhook", {"url": "http://127.0.0.1:9/x"})
    policy = make_policy(blocks, slack["id"])
    fail(blocks, new_run(blocks, flow))
    blocks.delete(f"/api/flow_run_notification_policies/{policy['id']}")
    assert send_notifications(FAST)["dropped"] == 1
    assert queued() == []


def test_late_runs_notify(blocks, flow):
    from app.services.scheduler import mark_late_runs

    slack = make_block_document(blocks, "slack-webhook", {"url": "http://127.0.0.1:9/x"})
    make_policy(blocks, slack["id"], state_names=["Late"], tags=["prod"])
    past = (utcnow() - datetime.timedelta(minutes=5)).isoformat()
    for tags in (["prod"], []):
        blocks.post(
            "/api/flow_runs/",
            json={
                "flow_id": flow["id"],
                "tags": tags,
                "state": {
                    "type": "SCHEDULED",
                    "name": "Scheduled",
                    "state_details": {"scheduled_time": past},
                },
            },
        )
    assert mark_late_runs(late_after=datetime.timedelta(seconds=5), batch_size=10) == 2
    assert len(queued()) == 1


def test_settings_come_from_the_config(app):
    settings = NotificationSettings.from_config(dict(app.config, UI_URL="https://x.example/"))
    assert settings.ui_url == "https://x.example"
    assert settings.max_attempts == app.config["NOTIFICATIONS_MAX_ATTEMPTS"]
    default = NotificationSettings.from_config(dict(app.config, UI_URL=None))
    assert default.ui_url == (f"http://{app.config['SERVER_HOST']}:{app.config['SERVER_PORT']}")
    assert notifications.SUBJECT == "Prefect flow run notification"
