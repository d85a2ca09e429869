"""Artifacts made by flows and tasks through the real client on the real app (both backends),
read back through the API and shown on the flow run's page."""

import json

from client import flow, task
from client.sdk.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from tests.ui.test_pages import EVIL, page


@task
def tabulate():
    create_table_artifact([{"region": "EU", "sales": 120}, {"region": "US", "sales": 98}])
    return 2


@flow
def report():
    create_markdown_artifact(
        f"# Sales\n\nUp **12 %** {EVIL}", key="sales-report", description="weekly"
    )
    create_link_artifact("https://example.org/dash", "the dashboard")
    return tabulate()


def test_artifacts_belong_to_their_runs_and_show_on_the_run_page(orion, client):
    assert report() == 2
    (run,) = orion.read_flow_runs()
    made = client.post("/api/artifacts/filter", json={"sort": "KEY_ASC"}).get_json()
    by_type = {(a["type"], a["key"]): a for a in made}
    assert set(by_type) == {("markdown", "sales-report"), ("markdown", None), ("table", None)}
    markdown = by_type["markdown", "sales-report"]
    assert markdown["flow_run_id"] == str(run.id) and markdown["task_run_id"] is None
    assert markdown["description"] == "weekly"
    assert by_type["markdown", None]["data"] == "[the dashboard](https://example.org/dash)"
    table = by_type["table", None]
    (task_run,) = orion.read_task_runs()
    assert table["task_run_id"] == str(task_run.id) and table["flow_run_id"] == str(run.id)
    assert json.loads(table["data"]) == [
        {"region": "EU", "sales": 120},
        {"region": "US", "sales": 98},
    ]
    assert orion.read_latest_artifact("sales-report")["id"] == markdown["id"]
    assert orion.read_latest_artifact("nothing") is None

    html = page(client, f"/flow-runs/{run.id}")
    section = html.split('id="artifacts-h"')[1].split("</section>")[0]
    assert "<h1>Sales</h1>" in section and "<strong>12 %</strong>" in section
    assert EVIL not in section and "&lt;script&gt;" in section
    assert '<a href="https://example.org/dash">the dashboard</a>' in section
    assert '<th scope="col">region</th>' in section and "<td>EU</td><td>120</td>" in section


def test_an_artifact_outside_any_run_belongs_to_none(orion):
    artifact_id = create_markdown_artifact("loose", key="loose")
    stored = orion.read_latest_artifact("loose")
    assert stored["id"] == artifact_id and stored["flow_run_id"] is None
