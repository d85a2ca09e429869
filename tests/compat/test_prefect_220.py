"""What Prefect 2.20 added, against Orion: variables (``Variable.set``/``get`` from a script
and from a flow, ``prefect variable ls`` and ``delete``), artifacts made by a flow and its
task (and the run's page, reached by the link the engine prints, showing them), and global
concurrency limits (``prefect.concurrency.sync``'s ``concurrency`` and ``rate_limit``); the
server's side read through its API. (Prefect 2.7 has none of these.)"""

import re

import httpx

from tests.compat.conftest import ok, prefect_220_only

SCRIPT = """
import sys

from prefect import flow
from prefect.variables import Variable

name = sys.argv[1]
Variable.set(name, "hello", tags=["compat"])
print("GOT=" + Variable.get(name).value)
try:
    Variable.set(name, "again")
except ValueError:
    print("REFUSED")
Variable.set(name, "changed", overwrite=True)
print("MISSING=" + str(Variable.get(name + "_nope", default="fallback")))


@flow
def reads():
    return Variable.get(name).value


print("FLOW=" + reads())
"""


prefect = prefect_220_only("prefect-2.20")


def test_variables_set_in_a_script_are_read_in_a_flow_and_by_the_cli(prefect, api):
    name = "compat_" + prefect.tag.replace("-", "_")
    output = prefect.script(SCRIPT, name)
    assert "GOT=hello" in output and "REFUSED" in output, output
    assert "MISSING=fallback" in output and "FLOW=changed" in output, output

    stored = ok(api.get(f"variables/name/{name}"))
    # An overwrite sends the tags it was given (none here), as on Prefect's own server.
    assert (stored["value"], stored["tags"]) == ("changed", [])
    listing = prefect.run("variable", "ls")
    assert name in listing, listing
    prefect.run("variable", "delete", name)
    assert api.get(f"variables/name/{name}").status_code == 404


ARTIFACTS = """
import sys

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

key = sys.argv[1]


@task
def tabulate():
    create_table_artifact([{"region": "EU", "sales": 120}], key=key + "-table")


@flow(name=key)
def report():
    create_markdown_artifact("# Sales", key=key, description="weekly")
    create_link_artifact("https://example.org", link_text="home")
    tabulate()


report()
"""


def test_artifacts_of_a_flow_and_its_task_are_stored_with_their_runs(prefect, api):
    key = "report-" + prefect.tag
    output = prefect.script(ARTIFACTS, key)
    (run,) = ok(api.post("flow_runs/filter", json={"flows": {"name": {"any_": [key]}}}))
    # The engine's "View at" link to Prefect's UI is answered by the run's page here, which
    # shows the artifacts.
    (link,) = re.findall(r"View at (http\S+)", output)
    assert link.endswith(f"/flow-runs/flow-run/{run['id']}")
    run_page = httpx.get(link, follow_redirects=True)
    assert run_page.status_code == 200 and str(run_page.url).endswith(f"/flow-runs/{run['id']}")
    assert "# Sales" not in run_page.text and "<h1>Sales</h1>" in run_page.text
    made = ok(api.post("artifacts/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}}))
    assert sorted((a["key"], a["type"]) for a in made if a["key"]) == [
        (key, "markdown"),
        (key + "-table", "table"),
    ]
    latest = ok(api.get(f"artifacts/{key}/latest"))
    assert (latest["data"], latest["description"]) == ("# Sales", "weekly")
    table = ok(api.get(f"artifacts/{key}-table/latest"))
    assert table["task_run_id"] and table["flow_run_id"] == run["id"]
    assert any(a["data"] == "[home](https://example.org)" for a in made)


CONCURRENCY = """
import os
import sys

import httpx
from prefect import flow
from prefect.concurrency.sync import concurrency, rate_limit

name, rated = sys.argv[1], sys.argv[2]
limits = os.environ["PREFECT_API_URL"] + "/v2/concurrency_limits/"

# The limit is full: Prefect waits on 423 Locked until its timeout.
try:
    with concurrency(name, occupy=1, timeout_seconds=1):
        print("ENTERED-A-FULL-LIMIT")
except TimeoutError:
    print("TIMED-OUT")
httpx.patch(limits + name, json={"active_slots": 0}).raise_for_status()


@flow
def guarded():
    with concurrency(name, occupy=1):
        return httpx.get(limits + name).json()["active_slots"]


print(f"HELD={guarded()}")
for _ in range(3):
    rate_limit(rated)
print("RATED")
"""


def test_prefect_concurrency_and_rate_limit_use_limits_made_through_the_api(prefect, api):
    name = "gcl-" + prefect.tag
    rated = "rated-" + prefect.tag
    ok(api.post("v2/concurrency_limits/", json={"name": name, "limit": 1, "active_slots": 1}))
    ok(
        api.post(
            "v2/concurrency_limits/",
            json={"name": rated, "limit": 1, "slot_decay_per_second": 10},
        )
    )
    output = prefect.script(CONCURRENCY, name, rated)
    assert "TIMED-OUT" in output and "ENTERED-A-FULL-LIMIT" not in output, output
    assert "HELD=1" in output and "RATED" in output, output
    limit = ok(api.get(f"v2/concurrency_limits/{name}"))
    assert limit["active_slots"] == 0
    # The flow reported how long it held its slot: the average moved off its default.
    assert limit["avg_slot_occupancy_seconds"] != 2.0
