"""Deployment pages through the Flask test client, on both backends: the list, a deployment's
page, pausing and resuming, quick and custom runs, and where deployments show elsewhere.

Data is made through the API, as clients make it.
"""

import datetime
import json
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
from werkzeug.datastructures import MultiDict

from app.blueprints.ui.parameter_form import form_fields, read_parameters
from app.blueprints.ui.schedule_words import describe
from app.models import utcnow
from tests.ui.test_pages import EVIL, HX, QUOTED_NAME, csrf, is_full_page, make_flow, page

SCHEMA = {
    "title": "Parameters",
    "type": "object",
    "properties": {
        "who": {"title": "Who", "type": "string", "position": 0, "description": "Whom to greet"},
        "times": {"title": "Times", "type": "integer", "default": 2, "position": 1},
        "ratio": {"title": "Ratio", "type": "number", "position": 2},
        "loud": {"title": "Loud", "type": "boolean", "default": False, "position": 3},
        "colour": {"title": "Colour", "allOf": [{"$ref": "#/definitions/Colour"}], "position": 4},
        "items": {"title": "Items", "type": "array", "items": {"type": "integer"}, "position": 5},
        "options": {"title": "Options", "type": "object", "position": 6},
        "note": {"title": "Note", "type": "string", "position": 7},
    },
    "required": ["who", "note"],
    "definitions": {"Colour": {"title": "Colour", "enum": ["red", "green"], "type": "string"}},
}


def make_deployment(client, flow, name="nightly", **fields):
    body = {"name": name, "flow_id": flow["id"], **fields}
    response = client.post("/api/deployments/", json=body)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def runs_of(client, deployment):
    return client.post(
        "/api/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}}
    ).get_json()


def section(html, heading_id):
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


def post(client, path, data=None, **kwargs):
    return client.post(path, data={"csrf_token": csrf(client), **(data or {})}, **kwargs)


def submission_id(html):
    """The submission id of the (one) run form on a page."""
    return re.search(r'name="submission_id" value="([0-9a-f-]{36})"', html).group(1)


def run_at(client, location):
    """The flow run a redirect ``location`` (``/flow-runs/<id>``) shows, through the API."""
    run_id = re.fullmatch(r"/flow-runs/([0-9a-f-]{36})", location).group(1)
    return client.get(f"/api/flow_runs/{run_id}").get_json()


def assert_scheduled_now(run, before):
    """``run`` is Scheduled, due between ``before`` and now (as agents look for it)."""
    assert run["state"]["type"] == "SCHEDULED" and run["state"]["name"] == "Scheduled"
    due = datetime.datetime.fromisoformat(run["next_scheduled_start_time"])
    assert before <= due <= utcnow()
    assert datetime.datetime.fromisoformat(run["state"]["state_details"]["scheduled_time"]) == due


# ----------------------------------------------------------------------------- words and forms


@pytest.mark.parametrize(
    "schedule, words",
    [
        (None, ("No schedule", None)),
        ({"interval": 3600}, ("Every hour", None)),
        ({"interval": 5400}, ("Every 90 minutes", None)),
        (
            {
                "interval": 172800,
                "anchor_date": "2026-03-01T08:00:00+00:00",
                "timezone": "Europe/Berlin",
            },
            ("Every 2 days at 09:00", None),
        ),
        ({"cron": "0 9 * * 1-5"}, ("At 09:00, Monday through Friday", "0 9 * * 1-5")),
        ({"cron": "30 2 * * *"}, ("At 02:30", "30 2 * * *")),
        ({"cron": "*/15 * * * *"}, ("Every 15 minutes", "*/15 * * * *")),
        (
            {"cron": "5 */6 * * 0"},
            ("At 5 minutes past the hour, every 6 hours, only on Sunday", "5 */6 * * 0"),
        ),
        ({"cron": "0 9 1 * *"}, ("At 09:00, on day 1 of the month", "0 9 1 * *")),
        ({"cron": "0 9 1 * 1"}, ("At 09:00, on day 1 of the month, or on Monday", "0 9 1 * 1")),
        (
            {"cron": "0 9 1 * 1", "day_or": False},
            ("At 09:00, on day 1 of the month, and on Monday", "0 9 1 * 1"),
        ),
        ({"cron": "@daily"}, ("At 00:00", "@daily")),
        ({"cron": "@hourly"}, ("Every hour", "@hourly")),
        ({"cron": "@weekly"}, ("At 00:00, only on Sunday", "@weekly")),
        ({"rrule": "FREQ=WEEKLY;BYDAY=MO"}, ("Recurrence rule", "FREQ=WEEKLY;BYDAY=MO")),
    ],
)
def test_schedules_in_words(schedule, words):
    assert describe(schedule) == words


def test_parameter_form_fields_from_the_schema():
    fields = form_fields(SCHEMA, {"who": "world", "items": [1, 2]})
    by_name = {f.name: f for f in fields}
    assert [f.name for f in fields] == list(SCHEMA["properties"])
    assert {n: f.kind for n, f in by_name.items()} == {
        "who": "string",
        "times": "integer",
        "ratio": "number",
        "loud": "boolean",
        "colour": "enum",
        "items": "json",
        "options": "json",
        "note": "string",
    }
    assert by_name["who"].value == "world" and not by_name["who"].required  # has a default
    assert by_name["note"].required and by_name["times"].value == "2"
    assert by_name["loud"].value == "false" and by_name["colour"].choices == ["red", "green"]
    assert json.loads(by_name["items"].value) == [1, 2]


@pytest.mark.parametrize(
    "name, raw, value",
    [
        ("times", " 7 ", 7),
        ("ratio", "2.5", 2.5),
        ("ratio", "3", 3),
        ("loud", "true", True),
        ("colour", '"green"', "green"),
        ("items", "[1, 2]", [1, 2]),
        ("options", '{"a": null}', {"a": None}),
        ("who", "  spaced ", "  spaced "),
    ],
)
def test_parameter_form_reads_typed_values(name, raw, value):
    fields = form_fields(SCHEMA, {})
    form = MultiDict({"param.who": "x", "param.note": "n", f"param.{name}": raw})
    parameters, has_errors = read_parameters(fields, form)
    assert not has_errors and parameters[name] == value
    assert type(parameters[name]) is type(value)


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("times", "2.5", "whole number"),
        ("ratio", "abc", "a number"),
        ("ratio", "nan", "finite"),
        ("loud", "yes", "true or false"),
        ("colour", '"blue"', "listed values"),
        ("items", '{"a": 1}', "JSON list"),
        ("options", "[1]", "JSON object"),
        ("options", "{oops", "Not valid JSON"),
        ("note", "", "Required"),
    ],
)
def test_parameter_form_errors_name_the_field(name, raw, message):
    fields = form_fields(SCHEMA, {})
    form = MultiDict({"param.who": "x", "param.note": "n", f"param.{name}": raw})
    parameters, has_errors = read_parameters(fields, form)
    assert has_errors and name not in parameters
    errors = {f.name: f.error for f in fields if f.error}
    assert list(errors) == [name] and message in errors[name]
    assert next(f for f in fields if f.name == name).value == raw  # shown again as sent


def test_parameter_form_without_a_schema_is_one_json_object():
    (field,) = form_fields(None, {"a": 1})
    assert field.whole and json.loads(field.value) == {"a": 1}
    parameters, has_errors = read_parameters([field], MultiDict({field.input_name: '{"b": 2}'}))
    assert parameters == {"b": 2} and not has_errors
    parameters, has_errors = read_parameters([field], MultiDict({field.input_name: "[2]"}))
    assert has_errors and "JSON object" in field.error


# ----------------------------------------------------------------------------- list


def test_deployments_empty_state_says_what_to_do(client):
    html = page(client, "/deployments")
    assert "No deployments yet: run <code>orion deployment create …</code>" in html
    assert 'aria-current="page">Deployments' in html


def test_deployments_list(client):
    flow = make_flow(client, QUOTED_NAME)
    nightly = make_deployment(
        client, flow, schedule={"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}
    )
    manual = make_deployment(client, flow, name="by-hand")
    run = client.post(f"/api/deployments/{manual['id']}/create_flow_run", json={}).get_json()
    html = page(client, "/deployments")
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<td><a href="/deployments/([0-9a-f-]{36})">.*?</tr>', html, re.S)
    }
    assert set(rows) == {nightly["id"], manual["id"]}
    assert "At 09:00, Monday through Friday" in rows[nightly["id"]]
    assert "(Europe/Berlin)" in rows[nightly["id"]]
    assert f"/deployments/{nightly['id']}/pause" in rows[nightly["id"]]
    assert re.search(r"<time datetime=\"[^\"]+\+00:00\"", rows[nightly["id"]])  # next run
    assert "No schedule" in rows[manual["id"]] and "/pause" not in rows[manual["id"]]
    assert "Pending</span> 1" in rows[manual["id"]]  # recent run states
    assert f'/flow-runs/{run["id"]}"' in rows[manual["id"]]  # last run
    assert "never run" in rows[nightly["id"]]  # its runs are all ahead
    assert "Scheduled</span>" not in rows[nightly["id"]]  # future runs are not recent
    assert QUOTED_NAME not in html and "Tom &#34;Jerry&#34; O&#39;Hara" in html
    assert run["deployment_id"] == manual["id"]

    fragment = page(client, "/deployments?name=hand", headers=HX)
    assert not is_full_page(fragment) and manual["id"] in fragment
    assert nightly["id"] not in fragment
    assert "No deployment's name contains" in page(client, "/deployments?name=zzz")
    assert "between 1 and 200" in page(client, "/deployments?page=0", 422)


def test_deployments_list_last_run_in_one_query(client, app):
    """Each deployment's last run is its latest expected before now, whatever its state; the
    column costs the same queries for 2 deployments as for 6."""
    from playhouse.test_utils import count_queries

    flow = make_flow(client)

    def deployment_with_runs(name, finals):
        deployment = make_deployment(client, flow, name=name)
        runs = []
        for final in finals:
            run = client.post(
                f"/api/deployments/{deployment['id']}/create_flow_run", json={}
            ).get_json()
            client.post(
                f"/api/flow_runs/{run['id']}/set_state",
                json={"state": {"type": final}, "force": True},
            )
            runs.append(run)
        return deployment, runs

    def list_queries():
        with app.app_context(), count_queries() as counter:
            html = page(client, "/deployments")
        return html, counter.count

    done, done_runs = deployment_with_runs("done", ["FAILED", "COMPLETED"])
    failed, failed_runs = deployment_with_runs("failed", ["COMPLETED", "FAILED"])
    _, two = list_queries()
    for index in range(4):
        deployment_with_runs(f"more-{index}", ["RUNNING", "CRASHED"])
    html, six = list_queries()
    assert six == two
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<td><a href="/deployments/([0-9a-f-]{36})">.*?</tr>', html, re.S)
    }
    last = {key: row.split('class="last-run"')[1].split("</td>")[0] for key, row in rows.items()}
    assert "Completed</span>" in last[done["id"]] and done_runs[1]["id"] in last[done["id"]]
    assert "Failed</span>" in last[failed["id"]] and failed_runs[1]["id"] in last[failed["id"]]
    assert sum("Crashed</span>" in cell for cell in last.values()) == 4


def test_deployments_list_pages(client, monkeypatch):
    from app.blueprints.ui import deployments as views

    monkeypatch.setattr(views, "DEPLOYMENTS_PER_PAGE", 2)
    flow = make_flow(client)
    for name in ("a", "b", "c"):
        make_deployment(client, flow, name=name)
    first = page(client, "/deployments")
    assert "Next →" in first and ">c</a>" not in first
    second = page(client, "/deployments?page=2")
    assert ">c</a>" in second and "← Previous" in second and "Next →" not in second


# ----------------------------------------------------------------------------- detail


def test_deployment_page(client):
    flow = make_flow(client)
    deployment = make_deployment(
        client,
        flow,
        description=EVIL,
        parameters={"who": EVIL},
        work_queue_name="gpu",
        path="s3://bucket/flows",
        entrypoint="flows/etl.py:etl",
        tags=["nightly"],
        schedule={
            "interval": 3600,
            "timezone": "America/Santiago",
            "anchor_date": "2026-01-01T00:00:00+00:00",
        },
        parameter_openapi_schema=SCHEMA,
        pull_steps=[{"prefect.deployments.steps.run_shell_script": {"script": EVIL}}],
    )
    stored = {r["next_scheduled_start_time"]: r for r in runs_of(client, deployment)}
    html = page(client, f"/deployments/{deployment['id']}")
    assert EVIL not in html and "&lt;script&gt;" in html
    steps = re.search(r'<ol class="pull-steps">(.*?)</ol>', html).group(1)
    assert "<code>prefect.deployments.steps.run_shell_script</code>" in steps
    assert "<script" not in steps and "\\u003cscript\\u003e" in steps
    for text in (
        "Every hour",
        "(America/Santiago)",
        "<code>gpu</code>",
        "<code>s3://bucket/flows</code>",
        "<code>flows/etl.py:etl</code>",
        'class="tag">nightly',
    ):
        assert text in html, text
    upcoming = section(html, "next-h")
    times = re.findall(r'<tr><td><time datetime="([^"]+)"', upcoming)
    assert len(times) == 10
    parsed = [datetime.datetime.fromisoformat(t) for t in times]
    assert all(b - a == datetime.timedelta(hours=1) for a, b in zip(parsed, parsed[1:]))
    assert parsed[0] >= utcnow() - datetime.timedelta(seconds=5)
    assert re.search(r"\d\d:\d\d:\d\d -0[34]</td>", upcoming)  # wall time in the zone
    # Times the scheduler created runs for link to them.
    linked = re.findall(r'href="/flow-runs/([0-9a-f-]{36})"', upcoming)
    assert linked and set(linked) <= {r["id"] for r in stored.values()}
    assert "Run</button>" in html and f"/deployments/{deployment['id']}/custom-run" in html
    assert 'Not ready</span> · <span class="muted">nothing has asked for its runs' in html
    client.post(
        "/api/deployments/get_scheduled_flow_runs", json={"deployment_ids": [deployment["id"]]}
    )
    html = page(client, f"/deployments/{deployment['id']}")
    assert '<dd>Ready · <span class="muted">last asked for runs' in html
    assert "No runs of this deployment yet" in section(html, "recent-h")


def test_deployment_page_recent_runs_and_durations(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow)
    runs = []
    for index in range(3):
        run = client.post(
            f"/api/deployments/{deployment['id']}/create_flow_run", json={"name": f"run-{index}"}
        ).get_json()
        runs.append(run)
    for run, final in zip(runs[:2], ("COMPLETED", "FAILED")):
        client.post(
            f"/api/flow_runs/{run['id']}/set_state",
            json={"state": {"type": "RUNNING"}, "force": True},
        )
        client.post(
            f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": final}, "force": True}
        )
    html = page(client, f"/deployments/{deployment['id']}")
    recent = section(html, "recent-h")
    assert all(f'/flow-runs/{r["id"]}"' in recent for r in runs)
    chart = json.loads(
        re.search(r'<script type="application/json">(.*?)</script>', recent, re.S).group(1)
    )
    assert chart["names"] == ["run-0", "run-1"] and len(chart["times"]) == 2  # started only
    assert {s["state"] for s in chart["series"]} == {"COMPLETED", "FAILED"}
    completed = next(s for s in chart["series"] if s["state"] == "COMPLETED")["seconds"]
    assert sum(v is not None for v in completed) == 1
    assert "This deployment has no schedule" in section(html, "next-h")


def test_a_run_page_shows_the_runs_own_job_variables(client):
    deployment = make_deployment(client, make_flow(client))
    run = client.post(
        f"/api/deployments/{deployment['id']}/create_flow_run",
        json={"job_variables": {"env": {"WHO": EVIL}}},
    ).get_json()
    html = page(client, f"/flow-runs/{run['id']}")
    assert "<dt>Job variables</dt>" in html and EVIL not in html
    assert '{"env": {"WHO": "\\u003cscript\\u003ealert(1)' in html
    plain = client.post(f"/api/deployments/{deployment['id']}/create_flow_run", json={})
    assert "Job variables" not in page(client, f"/flow-runs/{plain.get_json()['id']}")


def test_missing_deployment_pages_are_404(client):
    missing = uuid.uuid4()
    for path in (f"/deployments/{missing}", f"/deployments/{missing}/custom-run"):
        assert 'role="alert"' in page(client, path, 404)
    for path in (
        f"/deployments/{missing}/run",
        f"/deployments/{missing}/pause",
        f"/deployments/{missing}/custom-run",
    ):
        response = post(client, path)
        assert response.status_code == 404 and b'role="alert"' in response.data


# ----------------------------------------------------------------------------- actions


def test_pause_and_resume_the_schedule(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow, schedule={"interval": 3600})
    assert runs_of(client, deployment)
    path = f"/deployments/{deployment['id']}"
    assert client.post(path + "/pause").status_code == 400  # no CSRF token

    response = post(client, path + "/pause")
    assert response.status_code == 303 and response.headers["Location"] == path
    assert client.get(f"/api{path}").get_json()["is_schedule_active"] is False
    assert runs_of(client, deployment) == []
    html = page(client, path)
    assert "Paused the schedule" in html and "The schedule is paused" in html
    assert f"{path}/resume" in html

    response = post(client, path + "/resume", {"next": "/deployments?name=x"})
    assert response.headers["Location"] == "/deployments?name=x"
    assert client.get(f"/api{path}").get_json()["is_schedule_active"] is True
    assert runs_of(client, deployment)
    response = post(client, path + "/pause", {"next": "//evil.example/"})
    assert response.headers["Location"] == path


def test_quick_run_uses_the_deployment_defaults_and_is_scheduled_now(client):
    flow = make_flow(client)
    deployment = make_deployment(
        client, flow, parameters={"who": "world"}, tags=["t"], work_queue_name="q"
    )
    path = f"/deployments/{deployment['id']}/run"
    form = {"submission_id": submission_id(page(client, f"/deployments/{deployment['id']}"))}
    assert client.post(path, data=form).status_code == 400  # no CSRF token
    before = utcnow()
    response = post(client, path, form)
    assert response.status_code == 303
    run = run_at(client, response.headers["Location"])
    assert run["deployment_id"] == deployment["id"] and run["parameters"] == {"who": "world"}
    assert run["work_queue_name"] == "q" and "t" in run["tags"]
    assert_scheduled_now(run, before)
    assert (
        f"Scheduled the flow run &#39;{run['name']}&#39; for now: an agent polling the "
        "work queue &#39;q&#39; will start it."
    ) in page(client, response.headers["Location"])


def test_a_run_form_submitted_twice_starts_one_run(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow, parameter_openapi_schema=SCHEMA)
    other = make_deployment(client, flow, name="other")
    path = f"/deployments/{deployment['id']}"
    quick = {"submission_id": submission_id(page(client, path))}
    first, again = post(client, path + "/run", quick), post(client, path + "/run", quick)
    assert first.headers["Location"] == again.headers["Location"]
    assert "This form was already submitted: it started the flow run" in page(
        client, again.headers["Location"]
    )
    # The same id sent to another deployment of the flow is another submission.
    other_run = post(client, f"/deployments/{other['id']}/run", quick)
    assert other_run.headers["Location"] != first.headers["Location"]
    # A fresh page is a fresh submission.
    fresh = post(client, path + "/run", {"submission_id": submission_id(page(client, path))})
    assert fresh.headers["Location"] != first.headers["Location"]

    custom = {
        "submission_id": submission_id(page(client, path + "/custom-run")),
        "param.who": "ann",
        "param.note": "n",
    }
    # A form sent back with errors keeps its id; sending it again, corrected, starts one run.
    bad = post(client, path + "/custom-run", {**custom, "param.times": "x"})
    assert (
        bad.status_code == 422
        and submission_id(bad.get_data(as_text=True)) == custom["submission_id"]
    )
    first, again = (
        post(client, path + "/custom-run", custom),
        post(client, path + "/custom-run", custom),
    )
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert len(runs_of(client, deployment)) == 3


def test_a_run_form_without_its_submission_id_starts_nothing(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow)
    path = f"/deployments/{deployment['id']}"
    for data in ({}, {"submission_id": "not-an-id"}):
        for form in ("/run", "/custom-run"):
            response = post(client, path + form, data)
            assert response.status_code == 422
            assert b"the form lacks its submission id: reload the page" in response.data
    assert runs_of(client, deployment) == []
    for form_page in (path, path + "/custom-run"):
        assert client.get(form_page).headers["Cache-Control"] == "no-store"


def test_custom_run_form_and_errors_next_to_fields(client):
    flow = make_flow(client)
    deployment = make_deployment(
        client, flow, parameter_openapi_schema=SCHEMA, parameters={"times": 5}
    )
    path = f"/deployments/{deployment['id']}/custom-run"
    html = page(client, path)
    assert 'name="param.times" value="5"' in html  # the deployment's value over the schema's
    assert re.search(r'<select id="param-5" name="param.colour"', html)
    assert '<option value="&#34;green&#34;"' in html
    assert "Whom to greet" in html and html.count("(required)") == 2
    assert re.search(r'name="param.note"[^>]*aria-required="true"', html)

    response = post(
        client,
        path,
        {"param.who": "ann", "param.times": "many", "param.note": "", "start": "2020-01-01T00:00"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    # Each field's markup: its label, input and error, up to the next field.
    fields = {
        m.group(1): m.group(0)
        for m in re.finditer(
            r'<label for="([^"]+)">.*?(?=<div class="field|</fieldset>)', html, re.S
        )
    }
    assert "Enter a whole number" in fields["param-2"] and 'value="many"' in fields["param-2"]
    assert "Required" in fields["param-8"]
    assert "Must be in the future" in fields["run-start"]
    assert 'value="ann"' in fields["param-1"] and "field-error" not in fields["param-1"]
    assert runs_of(client, deployment) == []


def test_custom_run_starts_the_run_with_its_parameters(client):
    flow = make_flow(client)
    deployment = make_deployment(
        client, flow, parameter_openapi_schema=SCHEMA, parameters={"keep": "me"}
    )
    path = f"/deployments/{deployment['id']}/custom-run"
    before = utcnow()
    response = post(
        client,
        path,
        {
            "param.who": EVIL,
            "param.times": "3",
            "param.ratio": "",
            "param.loud": "true",
            "param.colour": '"red"',
            "param.items": "[1, 2]",
            "param.options": "",
            "param.note": "hi",
            "name": "my-custom-run",
            "submission_id": submission_id(page(client, path)),
        },
    )
    assert response.status_code == 303, response.data[-400:]
    run = run_at(client, response.headers["Location"])
    assert run["name"] == "my-custom-run"
    assert_scheduled_now(run, before)
    assert run["parameters"] == {
        "keep": "me",
        "who": EVIL,
        "times": 3,
        "loud": True,
        "colour": "red",
        "items": [1, 2],
        "note": "hi",
    }


def test_custom_run_later_is_scheduled(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow)
    when = (utcnow() + datetime.timedelta(hours=3)).replace(microsecond=0)
    path = f"/deployments/{deployment['id']}/custom-run"
    response = post(
        client,
        path,
        {
            "param.parameters": '{"x": 1}',
            "start": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "submission_id": submission_id(page(client, path)),
        },
    )
    assert response.status_code == 303
    run = run_at(client, response.headers["Location"])
    assert f"for {when:%Y-%m-%d %H:%M:%S} UTC, but its deployment has no work queue" in page(
        client, response.headers["Location"]
    )
    assert run["state"]["type"] == "SCHEDULED" and run["parameters"] == {"x": 1}
    assert datetime.datetime.fromisoformat(run["next_scheduled_start_time"]) == when
    html = page(client, f"/deployments/{deployment['id']}")
    assert "Other scheduled runs" in html and run["id"] in section(html, "next-h")
    bad = post(client, f"/deployments/{deployment['id']}/custom-run", {"start": "soon"})
    assert bad.status_code == 422 and b"Enter a date and time" in bad.data


# ----------------------------------------------------------------------------- elsewhere


def test_flow_page_lists_its_deployments(client):
    flow = make_flow(client)
    other = make_flow(client, "other")
    assert "No deployments yet: run <code>orion deployment create …</code>" in page(
        client, f"/flows/{flow['id']}"
    )
    mine = make_deployment(
        client,
        flow,
        schedule={"cron": "30 2 * * *", "timezone": "Europe/Paris"},
        is_schedule_active=False,
    )
    theirs = make_deployment(client, other, name="theirs")
    listed = section(page(client, f"/flows/{flow['id']}"), "deployments-h")
    assert f'/deployments/{mine["id"]}"' in listed and theirs["id"] not in listed
    assert "At 02:30 (30 2 * * *), Europe/Paris, paused" in listed


def test_pages_show_every_schedule_of_a_deployment(client):
    flow = make_flow(client)
    deployment = make_deployment(
        client,
        flow,
        name="twice",
        schedules=[
            {"schedule": {"cron": "20 * * * *", "timezone": "UTC"}},
            {"schedule": {"cron": "40 * * * *", "timezone": "UTC"}, "active": False},
        ],
    )
    html = page(client, f"/deployments/{deployment['id']}")
    assert "<dt>Schedules</dt>" in html
    assert "20 * * * *" in html and "40 * * * *" in html and "(inactive)" in html
    # The next runs are the active schedule's only.
    times = re.findall(r"<td>(\d{4}-\d\d-\d\d \d\d:(\d\d):\d\d)", section(html, "next-h"))
    assert times and {minute for _, minute in times} == {"20"}
    listed = page(client, "/deployments")
    assert "20 * * * *" in listed and "40 * * * *" in listed
    flow_page = section(page(client, f"/flows/{flow['id']}"), "deployments-h")
    assert "40 * * * *" in flow_page and "(inactive)" in flow_page
    # The edit form leaves several schedules alone and says where to change them.
    edit = page(client, f"/deployments/{deployment['id']}/edit")
    assert "has 2 schedules" in edit and 'name="schedule_kind"' not in edit


def test_dashboard_upcoming_runs_link_to_their_deployments(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow, name="hourly", schedule={"interval": 3600})
    upcoming = section(page(client, "/"), "upcoming-h")
    assert f'(deployment <a href="/deployments/{deployment["id"]}">hourly</a>)' in upcoming


# ----------------------------------------------------------------------------- editing


def edit_fields(html):
    """Each field of a form page: its label, input and error, up to the next field."""
    return {
        m.group(1): m.group(0)
        for m in re.finditer(
            r'<label for="([^"]+)">.*?(?=<div class="field|</fieldset>)', html, re.S
        )
    }


def test_edit_form_is_prefilled_and_shares_the_run_forms_fields(client):
    flow = make_flow(client)
    deployment = make_deployment(
        client,
        flow,
        description=EVIL,
        tags=["a", "b"],
        work_queue_name="gpu",
        parameters={"who": "ann", "times": 5},
        parameter_openapi_schema=SCHEMA,
        schedule={"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"},
    )
    path = f"/deployments/{deployment['id']}"
    assert f'href="{path}/edit">Edit…</a>' in page(client, path)
    html = page(client, path + "/edit")
    assert client.get(path + "/edit").headers["Cache-Control"] == "no-store"
    fields = edit_fields(html)
    # The parameter fields are the custom run's (one macro draws both).
    run_form = edit_fields(page(client, path + "/custom-run"))
    for key in ("param-2", "param-4", "param-5", "param-6"):
        assert fields[key] == run_form[key], key
    assert 'value="ann"' in fields["param-1"] and 'value="5"' in fields["param-2"]
    # A parameter the schema requires stays required here: an empty field removes it.
    assert "(required)" in fields["param-1"] and "(required)" not in run_form["param-1"]
    assert "&lt;script&gt;" in fields["edit-description"] and EVIL not in html
    assert 'value="a, b"' in fields["edit-tags"]
    assert 'value="gpu"' in fields["edit-work-queue-name"]
    assert '<option value="cron" selected>' in fields["edit-schedule-kind"]
    assert 'value="0 9 * * 1-5"' in fields["edit-schedule-value"]
    assert 'value="Europe/Berlin"' in fields["edit-schedule-timezone"]
    assert 'role="alert"' in page(client, f"/deployments/{uuid.uuid4()}/edit", 404)


def test_edit_saves_the_deployment_and_reschedules(client):
    flow = make_flow(client)
    deployment = make_deployment(
        client,
        flow,
        parameters={"who": "ann", "times": 5},
        parameter_openapi_schema=SCHEMA,
        schedule={"interval": 1209600},
        work_queue_name="old",
    )
    path = f"/deployments/{deployment['id']}"
    assert 'value="1209600"' in edit_fields(page(client, path + "/edit"))["edit-schedule-value"]
    form = {
        "param.who": EVIL,
        "param.times": "",
        "param.loud": "true",
        "param.note": "n",
        "description": "  Nightly load  ",
        "tags": "etl, nightly, etl",
        "work_queue_name": "new",
        "schedule_kind": "cron",
        "schedule_value": "@daily",
        "schedule_timezone": "America/New_York",
    }
    assert client.post(path + "/edit", data=form).status_code == 400  # no CSRF token
    response = post(client, path + "/edit", form)
    assert response.status_code == 303 and response.headers["Location"] == path
    saved = client.get(f"/api{path}").get_json()
    assert saved["parameters"] == {"who": EVIL, "loud": True, "note": "n"}  # times removed
    assert saved["description"] == "Nightly load" and saved["tags"] == ["etl", "nightly"]
    assert saved["work_queue_name"] == "new"
    assert saved["schedule"]["cron"] == "@daily"
    assert saved["schedule"]["timezone"] == "America/New_York"
    runs = runs_of(client, deployment)
    assert runs and all(r["work_queue_name"] == "new" for r in runs)
    for run in runs:  # midnight in New York
        due = datetime.datetime.fromisoformat(run["next_scheduled_start_time"])
        assert due.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "00:00"
    html = page(client, path)
    assert f"Saved the deployment &#39;{deployment['name']}&#39;." in html
    assert "At 00:00" in html and "(America/New_York)" in html
    # The same form again changes nothing more; no schedule removes it and its runs.
    assert post(client, path + "/edit", form).status_code == 303
    assert {r["id"] for r in runs_of(client, deployment)} == {r["id"] for r in runs}
    response = post(
        client,
        path + "/edit",
        {**form, "schedule_kind": "", "work_queue_name": "", "tags": "", "description": ""},
    )
    assert response.status_code == 303
    saved = client.get(f"/api{path}").get_json()
    assert saved["schedule"] is None and saved["work_queue_name"] is None
    assert saved["tags"] == [] and saved["description"] is None
    assert runs_of(client, deployment) == []


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"param.times": "many"}, "param-2", "Enter a whole number"),
        ({"param.who": ""}, "param-1", "Required"),
        ({"schedule_value": "0 25 * * *"}, "edit-schedule-value", "Invalid cron expression"),
        ({"schedule_value": ""}, "edit-schedule-value", "Enter a cron expression"),
        (
            {"schedule_kind": "interval", "schedule_value": "soon"},
            "edit-schedule-value",
            "Enter a number of seconds",
        ),
        (
            {"schedule_kind": "interval", "schedule_value": "-5"},
            "edit-schedule-value",
            "greater than 0 seconds",
        ),
        ({"schedule_kind": "rrule", "schedule_value": "FREQ=NEVER"}, "edit-schedule-value", ""),
        ({"schedule_kind": "weekly"}, "edit-schedule-kind", "Choose one of"),
        ({"schedule_timezone": "Mars/Olympus"}, "edit-schedule-timezone", "not a time zone"),
        ({"schedule_timezone": "America"}, "edit-schedule-timezone", "not a time zone"),
        ({"description": "x" * 5001}, "edit-description", "At most 5,000 characters"),
        ({"tags": "t," * 600}, "edit-tags", "At most 1,000 characters"),
    ],
)
def test_edit_explains_a_wrong_field_next_to_it_and_saves_nothing(client, changes, field, message):
    flow = make_flow(client)
    deployment = make_deployment(
        client,
        flow,
        parameters={"who": "ann"},
        parameter_openapi_schema=SCHEMA,
        schedule={"cron": "0 9 * * *"},
    )
    path = f"/deployments/{deployment['id']}"
    form = {
        "param.who": "bob",
        "param.note": "n",
        "description": "typed",
        "tags": "x",
        "work_queue_name": "q",
        "schedule_kind": "cron",
        "schedule_value": "0 10 * * *",
        "schedule_timezone": "UTC",
        **changes,
    }
    response = post(client, path + "/edit", form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Not saved:</strong> correct the fields marked below" in html
    fields = edit_fields(html)
    assert 'class="field-error"' in fields[field] and message in fields[field], fields[field]
    assert 'aria-invalid="true"' in fields[field]
    assert sum('class="field-error"' in markup for markup in fields.values()) == 1
    assert "typed" in fields["edit-description"] or field == "edit-description"
    assert client.get(f"/api{path}").get_json() == deployment  # nothing saved


def test_edit_keeps_what_the_form_does_not_show(client):
    """A cron schedule's null zone and day_or stay as stored when the form is saved as is."""
    flow = make_flow(client)
    deployment = make_deployment(
        client, flow, schedule={"cron": "0 9 1 * 1", "day_or": False}, version="7"
    )
    path = f"/deployments/{deployment['id']}"
    html = page(client, path + "/edit")
    form = dict(
        re.findall(r'<input id="edit-[^"]*" type="text" name="([^"]+)" value="([^"]*)"', html)
    )
    form["schedule_kind"] = "cron"
    assert post(client, path + "/edit", form).status_code == 303
    saved = client.get(f"/api{path}").get_json()
    assert saved["schedule"] == deployment["schedule"] and saved["version"] == "7"


def test_edit_without_a_schema_replaces_the_parameters_object(client):
    flow = make_flow(client)
    deployment = make_deployment(client, flow, parameters={"old": 1, "kept": "no"})
    path = f"/deployments/{deployment['id']}"
    fields = edit_fields(page(client, path + "/edit"))
    assert "they replace them" in fields["param-1"] and "&#34;old&#34;: 1" in fields["param-1"]
    base = {"schedule_kind": "", "schedule_timezone": "UTC"}
    bad = post(client, path + "/edit", {**base, "param.parameters": "[1]"})
    assert (
        bad.status_code == 422
        and "Enter a JSON object" in edit_fields(bad.get_data(as_text=True))["param-1"]
    )
    response = post(client, path + "/edit", {**base, "param.parameters": '{"new": [1, 2]}'})
    assert response.status_code == 303
    assert client.get(f"/api{path}").get_json()["parameters"] == {"new": [1, 2]}
