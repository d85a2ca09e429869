"""``orion deployment``: the real commands through a real OrionClient bound to the test app
(both backends), and the console script as a subprocess against a real ``orion start`` and
against the ephemeral API."""

import datetime
import os
import textwrap

import pytest

from client import OrionClient
from client.agent.run import fetch_code, load_flow
from client.sdk.deployments import parameter_schema
from tests.support import BACKENDS, module_server
from tests.test_cli_api import orion_script

UTC = datetime.UTC

FLOW_SOURCE = '''
import datetime
from typing import Literal, Optional

from client import flow

from etl_helpers import double


@flow(name="etl")
def etl(day: str, n: int = 3, ratio: float = 0.5, when: Optional[datetime.datetime] = None,
        mode: Literal["a", "b"] = "a", xs: list[int] = [1], *rest, **options):
    """Extract, transform, load."""
    return double(n)
'''


@pytest.fixture
def flow_file(tmp_path):
    """``<tmp>/project/flows/etl.py`` (importing a helper next to it); returns its path."""
    folder = tmp_path / "project" / "flows"
    folder.mkdir(parents=True)
    (folder / "etl.py").write_text(FLOW_SOURCE)
    (folder / "etl_helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    return folder / "etl.py"


def _runs(client, deployment_id, **criteria):
    body = {
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": criteria,
        "sort": "EXPECTED_START_TIME_ASC",
        "limit": 200,
    }
    return client.post("/api/flow_runs/filter", json=body).get_json()


def _deployment(client, name="etl/daily"):
    return client.get(f"/api/deployments/name/{name}").get_json()


def test_parameter_schema_follows_the_signature_and_hints():
    def fn(
        day: str,
        n: int = 3,
        when: datetime.datetime | None = None,
        *rest,
        flag: bool = False,
        **options,
    ):
        return day

    schema = parameter_schema(fn)
    assert schema["required"] == ["day"]
    assert list(schema["properties"]) == ["day", "n", "when", "flag"]
    assert schema["properties"]["day"] == {"title": "day", "position": 0, "type": "string"}
    assert schema["properties"]["n"] == {
        "title": "n",
        "position": 1,
        "type": "integer",
        "default": 3,
    }
    assert schema["properties"]["when"]["anyOf"] == [
        {"type": "string", "format": "date-time"},
        {"type": "null"},
    ]
    assert schema["properties"]["when"]["default"] is None
    assert schema["properties"]["flag"]["position"] == 4


class TestDeploymentCommands:
    def test_create_schedules_runs_and_stores_the_flow(self, cli, client, flow_file):
        out = cli(
            "deployment",
            "create",
            f"{flow_file}:etl",
            "--name",
            "daily",
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "-p",
            "n=5",
            "-p",
            "day=monday",
            "-p",
            "xs=[1, 2]",
            "-t",
            "nightly",
            "-q",
            "etl",
        )
        assert "Deployment 'etl/daily'" in out and "cron 0 2 * * * (Europe/Berlin)" in out
        deployment = _deployment(client)
        assert deployment["parameters"] == {"n": 5, "day": "monday", "xs": [1, 2]}
        assert deployment["schedule"] == {
            "cron": "0 2 * * *",
            "timezone": "Europe/Berlin",
            "day_or": True,
        }
        assert deployment["tags"] == ["nightly"] and deployment["work_queue_name"] == "etl"
        assert deployment["entrypoint"] == "etl.py:etl"
        assert deployment["path"] == str(flow_file.parent)
        assert deployment["description"] == "Extract, transform, load."
        schema = deployment["parameter_openapi_schema"]
        assert schema["required"] == ["day"]
        assert schema["properties"]["mode"] == {
            "title": "mode",
            "position": 4,
            "enum": ["a", "b"],
            "type": "string",
            "default": "a",
        }
        assert schema["properties"]["xs"]["items"] == {"type": "integer"}
        assert "rest" not in schema["properties"] and "options" not in schema["properties"]
        # Its first runs exist when the command returns.
        assert len(_runs(client, deployment["id"])) >= 3
        # Re-running create updates the same deployment.
        cli("deployment", "create", f"{flow_file}:etl", "--name", "daily", "--interval", "3600")
        again = _deployment(client)
        assert again["id"] == deployment["id"] and again["schedule"]["interval"] == 3600

    def test_ls_inspect_and_delete(self, cli, client, flow_file):
        assert cli("deployment", "ls").strip() == "No deployments."
        cli("deployment", "create", f"{flow_file}:etl", "-n", "daily", "--interval", "60")
        cli("deployment", "create", f"{flow_file}:etl", "-n", "adhoc")
        lines = cli("deployment", "ls").splitlines()
        assert lines[0].split() == [
            "NAME",
            "SCHEDULE",
            "ACTIVE",
            "WORK",
            "POOL",
            "WORK",
            "QUEUE",
            "ID",
        ]
        assert lines[1].split()[:2] == ["etl/adhoc", "-"]
        assert lines[2].split()[:6] == ["etl/daily", "every", "0:01:00", "(UTC)", "yes", "-"]
        assert cli("deployment", "ls", "--flow", "other").strip() == "No deployments."
        deployment_id = _deployment(client)["id"]
        assert f'"id": "{deployment_id}"' in cli("deployment", "inspect", "etl/daily")
        assert "Deleted deployment etl/daily." in cli("deployment", "delete", "etl/daily")
        assert _runs(client, deployment_id) == []
        for command in ("inspect", "delete", "run", "pause-schedule", "resume-schedule"):
            assert "Deployment 'etl/daily' not found." in cli(
                "deployment", command, "etl/daily", ok=False
            )

    def test_run_merges_parameters_and_starts_later(self, cli, client, flow_file):
        cli("deployment", "create", f"{flow_file}:etl", "-n", "adhoc", "-p", "n=1", "-t", "x")
        before = datetime.datetime.now(UTC)
        out = cli("deployment", "run", "etl/adhoc", "-p", "day=tue", "--start-in", "2h")
        run_id = out.split("(")[1].split(")")[0]
        run = client.get(f"/api/flow_runs/{run_id}").get_json()
        assert run["parameters"] == {"n": 1, "day": "tue"} and run["tags"] == ["x"]
        assert run["state"]["type"] == "SCHEDULED"
        start = datetime.datetime.fromisoformat(run["next_scheduled_start_time"])
        assert (
            before + datetime.timedelta(hours=2)
            <= start
            <= (datetime.datetime.now(UTC) + datetime.timedelta(hours=2))
        )
        now_run = cli("deployment", "run", "etl/adhoc", "-p", "day=wed").split("(")[1].split(")")[0]
        start = client.get(f"/api/flow_runs/{now_run}").get_json()["next_scheduled_start_time"]
        assert datetime.datetime.fromisoformat(start) <= datetime.datetime.now(UTC)
        assert "not a number of seconds" in cli(
            "deployment", "run", "etl/adhoc", "--start-in", "soon", ok=False
        )
        assert "not KEY=VALUE" in cli("deployment", "run", "etl/adhoc", "-p", "x", ok=False)

    def test_run_checks_parameters_against_the_schema_first(self, cli, client, flow_file):
        cli("deployment", "create", f"{flow_file}:etl", "-n", "adhoc", "-p", "n=1")
        deployment_id = _deployment(client, "etl/adhoc")["id"]
        refused = {
            ("-p", "day=mon", "-p", "n=three"): "Parameter 'n': 'three' is not of type 'integer'.",
            ("-p", "day=mon", "-p", "mode=c"): "Parameter 'mode': 'c' is not one of ['a', 'b']",
            ("-p", "day=mon", "-p", 'xs=[1, "two"]'): "Parameter 'xs' at [1]: 'two' is not of "
            "type 'integer'.",
            ("-p", "day=mon", "-p", "nn=2", "-p", "z=1"): (
                "Deployment has no parameter 'nn', 'z'; its parameters: day, mode, n, ratio, "
                "when, xs."
            ),
            (
                "-p",
                "n=2",
            ): "Parameter 'day' is required (give -p day=VALUE).",
        }
        for args, message in refused.items():
            assert f"Error: {message}" in cli("deployment", "run", "etl/adhoc", *args, ok=False)
        assert _runs(client, deployment_id, state={"type": {"any_": ["SCHEDULED"]}}) == []
        # A string parameter keeps the text as typed; None is allowed where the hint is
        # Optional; a value the schema accepts is sent as parsed.
        out = cli(
            "deployment",
            "run",
            "etl/adhoc",
            "-p",
            "day=1.0",
            "-p",
            "when=null",
            "-p",
            "ratio=2",
            "-p",
            "mode=b",
        )
        run_id = out.split("(")[1].split(")")[0]
        assert client.get(f"/api/flow_runs/{run_id}").get_json()["parameters"] == {
            "n": 1,
            "day": "1.0",
            "when": None,
            "ratio": 2,
            "mode": "b",
        }

    def test_run_takes_a_prefect_27_schema_and_none_at_all(self, cli, client):
        flow_id = client.post("/api/flows/", json={"name": "legacy"}).get_json()["id"]
        # pydantic v1 (Prefect 2.7) writes Optional[int] = None without "null".
        v1 = {
            "title": "Parameters",
            "type": "object",
            "required": ["day"],
            "properties": {
                "day": {"title": "day", "type": "string"},
                "count": {"title": "count", "type": "integer"},
            },
        }
        for name, schema in (("v1", v1), ("none", None)):
            response = client.post(
                "/api/deployments/",
                json={"name": name, "flow_id": flow_id, "parameter_openapi_schema": schema},
            )
            assert response.status_code in (200, 201), response.get_json()
        cli("deployment", "run", "legacy/v1", "-p", "day=mon", "-p", "count=null")
        assert "Parameter 'count': 'x' is not of type 'integer'." in cli(
            "deployment", "run", "legacy/v1", "-p", "day=mon", "-p", "count=x", ok=False
        )
        cli("deployment", "run", "legacy/none", "-p", "anything=x")

    def test_pause_and_resume_schedule(self, cli, client, flow_file):
        cli("deployment", "create", f"{flow_file}:etl", "-n", "daily", "--interval", "600")
        deployment_id = _deployment(client)["id"]
        scheduled = {"state": {"type": {"any_": ["SCHEDULED"]}}}
        assert len(_runs(client, deployment_id, **scheduled)) >= 3
        assert "Paused" in cli("deployment", "pause-schedule", "etl/daily")
        assert _deployment(client)["is_schedule_active"] is False
        assert _runs(client, deployment_id, **scheduled) == []
        assert "Resumed" in cli("deployment", "resume-schedule", "etl/daily")
        assert _deployment(client)["is_schedule_active"] is True
        assert len(_runs(client, deployment_id, **scheduled)) >= 3

    def test_backfill_every_slot_once(self, cli, client, flow_file):
        cli(
            "deployment",
            "create",
            f"{flow_file}:etl",
            "-n",
            "daily",
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "--paused",
        )
        deployment_id = _deployment(client)["id"]
        # 2026-01-01 .. 2026-12-31: 365 local days, across both daylight-saving switches,
        # more than one request's worth of runs (the progress bar advances per request).
        args = (
            "deployment",
            "backfill",
            "etl/daily",
            "--start",
            "2026-01-01T00:00:00+01:00",
            "--end",
            "2026-12-31T23:59:00+01:00",
        )
        out = cli(*args, "--dry-run")
        assert "Dry run: 365 slot(s) of etl/daily, 365 of them new" in out
        assert "2026-01-01 01:00:00 UTC" in out and "... and 345 more" in out
        assert _runs(client, deployment_id) == []
        assert "365 slot(s), 365 new run(s), 0 existed already" in cli(*args)
        assert "365 slot(s), 0 new run(s), 365 existed already" in cli(*args)
        body = {"deployments": {"id": {"any_": [deployment_id]}}}
        assert client.post("/api/flow_runs/count", json=body).get_json() == 365
        summer = _runs(
            client,
            deployment_id,
            expected_start_time={
                "after_": "2026-07-01T00:00:00Z",
                "before_": "2026-07-01T23:59:00Z",
            },
        )
        assert [r["expected_start_time"][11:19] for r in summer] == ["00:00:00"]
        assert "--end is before --start" in cli(
            "deployment",
            "backfill",
            "etl/daily",
            "--start",
            "2026-02-01",
            "--end",
            "2026-01-01",
            ok=False,
        )
        assert "not an ISO date" in cli(
            "deployment",
            "backfill",
            "etl/daily",
            "--start",
            "yesterday",
            "--end",
            "2026-01-01",
            ok=False,
        )
        cli("deployment", "create", f"{flow_file}:etl", "-n", "adhoc")
        assert "has no schedule" in cli(
            "deployment",
            "backfill",
            "etl/adhoc",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            ok=False,
        )

    def test_backfill_to_a_date_includes_that_whole_day(self, cli, client, flow_file):
        cli(
            "deployment",
            "create",
            f"{flow_file}:etl",
            "-n",
            "daily",
            "--cron",
            "0 23 * * *",
            "--paused",
        )
        out = cli(
            "deployment", "backfill", "etl/daily", "--start", "2026-03-01", "--end", "2026-03-03"
        )
        assert "3 slot(s), 3 new run(s)" in out
        times = [r["expected_start_time"] for r in _runs(client, _deployment(client)["id"])]
        assert [t[:16] for t in times] == [
            "2026-03-01T23:00",
            "2026-03-02T23:00",
            "2026-03-03T23:00",
        ]
        # A date and time ends where it says.
        assert "2 slot(s), 0 new run(s)" in cli(
            "deployment",
            "backfill",
            "etl/daily",
            "--start",
            "2026-03-01",
            "--end",
            "2026-03-03T00:00",
        )
        assert "Start 'x' is not an ISO date" in cli(
            "deployment", "backfill", "etl/daily", "--start", "x", "--end", "2026-03-03", ok=False
        )
        assert "End '2026-02-30' is not an ISO date" in cli(
            "deployment",
            "backfill",
            "etl/daily",
            "--start",
            "2026-03-01",
            "--end",
            "2026-02-30",
            ok=False,
        )

    def test_bad_input_is_one_error_line(self, cli, flow_file, tmp_path):
        entry = f"{flow_file}:etl"
        assert "Invalid cron expression 'bad'" in cli(
            "deployment", "create", entry, "-n", "x", "--cron", "bad", ok=False
        )
        assert "Unknown timezone 'Mars/Base'" in cli(
            "deployment",
            "create",
            entry,
            "-n",
            "x",
            "--cron",
            "0 * * * *",
            "--timezone",
            "Mars/Base",
            ok=False,
        )
        assert "at most one of --cron" in cli(
            "deployment",
            "create",
            entry,
            "-n",
            "x",
            "--cron",
            "0 * * * *",
            "--interval",
            "5",
            ok=False,
        )
        assert "No such file" in cli(
            "deployment", "create", str(tmp_path / "no.py:f"), "-n", "x", ok=False
        )
        assert "is not a @flow" in cli(
            "deployment", "create", f"{flow_file}:double", "-n", "x", ok=False
        )
        assert "must look like" in cli("deployment", "create", "etl", "-n", "x", ok=False)
        assert "is not FLOW/DEPLOYMENT" in cli("deployment", "inspect", "etl", ok=False)

    def test_storage_uploads_the_folder_the_agent_then_loads(
        self, cli, client, flow_file, tmp_path
    ):
        store = tmp_path / "store"
        url = f"file://{store}/etl"
        out = cli("deployment", "create", f"{flow_file}:etl", "-n", "stored", "--storage", url)
        assert "Uploaded 2 file(s)" in out
        assert sorted(os.listdir(store / "etl")) == ["etl.py", "etl_helpers.py"]
        deployment = _deployment(client, "etl/stored")
        assert deployment["path"] == url
        # What an agent's runner does with it: fetch the code, load the entrypoint, call it.
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        folder = fetch_code(deployment["path"], str(scratch))
        assert load_flow(folder, deployment["entrypoint"]).fn(day="mon", n=4) == 8
        cli(
            "deployment",
            "create",
            f"{flow_file}:etl",
            "-n",
            "one",
            "--storage",
            str(store / "one"),
            "--only-file",
        )
        assert os.listdir(store / "one") == ["etl.py"]
        assert "Could not upload" in cli(
            "deployment",
            "create",
            f"{flow_file}:etl",
            "-n",
            "bad",
            "--storage",
            "nosuchproto://x/y",
            ok=False,
        )


# -- the console script, in its own processes --------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    """A real ``orion start`` (embedded services) on the backend, stopped at the end."""
    options = {"workers": 1, "threads": 8}
    with module_server(tmp_path_factory, request.param, "deployment_cli", **options) as server:
        yield server


def _script_flow(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(
        textwrap.dedent("""
        from client import flow

        @flow
        def hello(name: str = "world"):
            return f"hello {name}"
    """)
    )
    return str(tmp_path / "flows" / "hello.py") + ":hello"


def test_the_console_script_against_a_server(server, tmp_path):
    env = {"ORION_API_URL": server.api_url}
    entry = _script_flow(tmp_path)
    created = orion_script(
        ["deployment", "create", entry, "-n", "hourly", "--cron", "0 * * * *", "-p", "name=you"],
        env,
        tmp_path,
    )
    assert created.returncode == 0, created.stderr
    with OrionClient(server.api_url) as api:
        deployment = api.read_deployment_by_name("hello/hourly")
        runs = api.read_flow_runs(deployment_filter={"id": {"any_": [deployment.id]}})
        assert len(runs) >= 3 and {r.parameters["name"] for r in runs} == {"you"}
    listed = orion_script(["deployment", "ls"], env, tmp_path)
    assert listed.stdout.splitlines()[1].startswith("hello/hourly")
    backfill = orion_script(
        [
            "deployment",
            "backfill",
            "hello/hourly",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-01T23:30",
        ],
        env,
        tmp_path,
    )
    assert "24 slot(s), 24 new run(s)" in backfill.stdout, backfill.stderr
    ran = orion_script(["deployment", "run", "hello/hourly", "-p", "name=me"], env, tmp_path)
    assert ran.returncode == 0 and "Created flow run" in ran.stdout
    deleted = orion_script(["deployment", "delete", "hello/hourly"], env, tmp_path)
    assert deleted.returncode == 0
    missing = orion_script(["deployment", "inspect", "hello/hourly"], env, tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: Deployment 'hello/hourly' not found."


def test_the_console_script_uses_the_ephemeral_api(tmp_path):
    entry = _script_flow(tmp_path)
    created = orion_script(["deployment", "create", entry, "-n", "manual"], {}, tmp_path)
    assert created.returncode == 0, created.stderr
    shown = orion_script(["deployment", "inspect", "hello/manual"], {}, tmp_path)
    assert '"entrypoint": "hello.py:hello"' in shown.stdout
    bad = orion_script(
        ["deployment", "create", entry, "-n", "x", "--rrule", "FREQ=NEVER"], {}, tmp_path
    )
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "rrule" in lines[0].lower()
