"""Bulk actions of the flow runs list through the Flask test client, on both backends:
retry of a selection (with the reasons for refusals), and cancel / retry / delete of every
run a filter matches, confirmed with the exact count and done in batches."""

import json
import re
import uuid

import pytest
from werkzeug.datastructures import MultiDict

from app.models import Deployment
from app.services import bulk
from tests.ui.test_pages import HX, csrf, is_full_page, make_flow, make_run, page, set_state


def deployment_of(flow):
    return str(
        Deployment.create(id=uuid.uuid4(), name=f"d-{uuid.uuid4().hex[:6]}", flow=flow["id"]).id
    )


def state_of(client, run):
    state = client.get(f"/api/flow_runs/{run['id']}").get_json()["state"]
    return state["type"], state["name"]


def test_retry_selection_moves_failed_deployment_runs_and_says_why_not_others(client):
    flow = make_flow(client)
    deployment = deployment_of(flow)
    failed = make_run(client, flow, deployment_id=deployment)
    set_state(client, failed, "FAILED")
    crashed = make_run(client, flow, deployment_id=deployment)
    set_state(client, crashed, "CRASHED")
    adhoc = make_run(client, flow)
    set_state(client, adhoc, "FAILED")
    done = make_run(client, flow, deployment_id=deployment)
    set_state(client, done, "COMPLETED")
    ids = [r["id"] for r in (failed, crashed, adhoc, done)]
    token = csrf(client)

    confirm = client.post(
        "/flow-runs/bulk", headers=HX, data={"csrf_token": token, "action": "retry", "run": ids}
    )
    html = confirm.get_data(as_text=True)
    assert "Retry 4 flow runs?" in html and "AwaitingRetry" in html
    assert state_of(client, failed) == ("FAILED", "Failed")

    response = client.post(
        "/flow-runs/bulk",
        data={"csrf_token": token, "action": "retry", "run": ids, "confirm": "yes"},
    )
    assert response.status_code == 303
    assert state_of(client, failed) == ("SCHEDULED", "AwaitingRetry")
    assert state_of(client, crashed) == ("SCHEDULED", "AwaitingRetry")
    assert state_of(client, adhoc) == ("FAILED", "Failed")
    assert state_of(client, done) == ("COMPLETED", "Completed")
    message = page(client, "/flow-runs")
    assert (
        "Retried 2 of 4 flow runs. Not retried: 1 not failed or crashed; "
        "1 not a deployment&#39;s run (nothing would run it again)."
    ) in message


def test_whole_filter_confirmation_counts_every_page(client):
    flow = make_flow(client)
    other = make_flow(client, "other")
    for _ in range(3):
        make_run(client, flow)
    make_run(client, other)
    token = csrf(client)
    listed = page(client, f"/flow-runs?flow={flow['id']}")
    assert 'id="bulk-filter"' in listed and "Cancel all" in listed and "Retry all" in listed
    confirm = client.post(
        "/flow-runs/bulk",
        headers=HX,
        data={
            "csrf_token": token,
            "action": "delete",
            "scope": "filter",
            "query": f"flow={flow['id']}&page=3",
            "next": "/flow-runs",
        },
    )
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and not is_full_page(html)
    assert "Delete 3 flow runs matching this filter?" in html
    assert "flow etl" in html
    assert 'name="as_of"' in html and 'name="total" value="3"' in html
    nothing = client.post(
        "/flow-runs/bulk",
        data={"csrf_token": token, "action": "cancel", "scope": "filter", "query": "name=nope"},
    )
    assert "Cancel 0 flow runs matching this filter?" in nothing.get_data(as_text=True)
    assert "no flow run matches" in nothing.get_data(as_text=True)
    bad = client.post(
        "/flow-runs/bulk",
        data={"csrf_token": token, "action": "cancel", "scope": "filter", "query": "state=BOGUS"},
    )
    assert bad.status_code == 422 and "BOGUS" in bad.get_data(as_text=True)


def _form(html):
    """The hidden fields of the (last) form in ``html``, as a list of pairs."""
    form = html[html.rindex("<form") :]
    return [
        (name, value.replace("&#34;", '"').replace("&amp;", "&"))
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    ]


@pytest.mark.parametrize("htmx", [True, False])
def test_whole_filter_action_runs_in_batches_until_done(client, monkeypatch, htmx):
    monkeypatch.setattr(bulk, "BATCH_SIZE", 2)
    flow = make_flow(client)
    deployment = deployment_of(flow)
    failed = []
    for _ in range(5):
        run = make_run(client, flow, deployment_id=deployment, tags=["nightly"])
        set_state(client, run, "FAILED")
        failed.append(run)
    running = make_run(client, flow, deployment_id=deployment, tags=["nightly"])
    set_state(client, running, "RUNNING")
    untouched = make_run(client, flow, deployment_id=deployment)
    set_state(client, untouched, "FAILED")
    token = csrf(client)
    headers = HX if htmx else {}
    html = client.post(
        "/flow-runs/bulk",
        headers=headers,
        data={
            "csrf_token": token,
            "action": "retry",
            "scope": "filter",
            "query": "tags=nightly",
            "next": "/flow-runs?tags=nightly",
        },
    ).get_data(as_text=True)
    assert "Retry 6 flow runs matching this filter?" in html
    # Created after the confirmation: not part of what was confirmed.
    late = make_run(client, flow, deployment_id=deployment, tags=["nightly"])
    set_state(client, late, "FAILED")

    fields = _form(html)
    requests = 0
    while True:
        response = client.post("/flow-runs/bulk", headers=headers, data=MultiDict(fields))
        requests += 1
        assert response.status_code in (200, 303)
        if response.status_code == 303 or "HX-Redirect" in response.headers:
            break
        html = response.get_data(as_text=True)
        assert is_full_page(html) != htmx
        assert "flow runs handled" in html and 'hx-trigger="load"' in html
        fields = _form(html)
        tally = json.loads(dict(fields)["tally"])
        assert sum(tally.values()) == 2 * requests
    assert requests == 4  # 2 + 2 + 2 + an empty last batch
    target = response.headers.get("HX-Redirect") or response.headers["Location"]
    assert target == "/flow-runs?tags=nightly"
    assert all(state_of(client, run) == ("SCHEDULED", "AwaitingRetry") for run in failed)
    assert state_of(client, running) == ("RUNNING", "Running")
    assert state_of(client, untouched) == ("FAILED", "Failed")
    assert state_of(client, late) == ("FAILED", "Failed")
    assert "Retried 5 of 6 flow runs. Not retried: 1 not failed or crashed." in page(
        client, "/flow-runs"
    )


def test_whole_filter_cancel_and_delete(client):
    flow = make_flow(client)
    keep = make_run(client, flow, name="keep-me")
    runs = [make_run(client, flow, name=f"batch-{i}") for i in range(3)]
    token = csrf(client)
    base = {
        "csrf_token": token,
        "scope": "filter",
        "query": "name=batch",
        "confirm": "yes",
        "as_of": "2999-01-01T00:00:00",
        "total": "3",
    }
    response = client.post("/flow-runs/bulk", data={**base, "action": "cancel"})
    assert response.status_code == 303
    assert all(state_of(client, r)[0] == "CANCELLED" for r in runs)
    assert "Cancelled 3 of 3 flow runs." in page(client, "/flow-runs")
    response = client.post("/flow-runs/bulk", data={**base, "action": "delete"})
    assert response.status_code == 303
    assert [r["id"] for r in client.post("/api/flow_runs/filter", json={}).get_json()] == [
        keep["id"]
    ]
    for bad, name in (
        ({"as_of": ""}, "as_of"),
        ({"tally": "[1]"}, "tally"),
        ({"after": "x"}, "after"),
    ):
        response = client.post("/flow-runs/bulk", data={**base, "action": "delete", **bad})
        assert response.status_code == 422 and name in response.get_data(as_text=True)
