"""``orion work-queue``, ``concurrency-limit``, ``flow-run`` (logs too), ``variable`` and
``global-concurrency-limit``: the real commands, talking to
the test app through a real OrionClient (both backends), plus the console script over HTTP."""

import datetime
import subprocess
import uuid

from click.testing import CliRunner

from app.models import FlowRun
from orion_cli import orion_cli
from tests.support import ORION, free_port, orion_env

UTC = datetime.UTC


def scheduled_run(client, flow, queue="etl", in_seconds=60, **fields):
    when = (datetime.datetime.now(UTC) + datetime.timedelta(seconds=in_seconds)).isoformat()
    body = {
        "flow_id": flow["id"],
        "work_queue_name": queue,
        **fields,
        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": when}},
    }
    return client.post("/api/flow_runs/", json=body).get_json()


class TestWorkQueue:
    def test_create_ls_and_inspect(self, cli, client):
        assert "Created work queue 'etl'" in cli("work-queue", "create", "etl", "--limit", "3")
        cli("work-queue", "create", "legacy", "-t", "prod")
        lines = cli("work-queue", "ls").splitlines()
        assert lines[0].split() == [
            "NAME",
            "CONCURRENCY",
            "LIMIT",
            "PAUSED",
            "LAST",
            "POLLED",
            "ID",
        ]
        # After the agents' pool's "default" queue, made with the pool.
        assert lines[1].split()[:2] == ["default", "unlimited"]
        assert lines[2].split()[:4] == ["etl", "3", "no", "-"]
        assert lines[3].split()[:2] == ["legacy", "unlimited"]
        assert cli("work-queue", "ls", "--match", "leg").count("\n") == 2
        shown = cli("work-queue", "inspect", "legacy")
        assert '"tags": [\n      "prod"' in shown and '"healthy": false' in shown
        queue_id = client.get("/api/work_queues/name/etl").get_json()["id"]
        assert f'"id": "{queue_id}"' in cli("work-queue", "inspect", queue_id)

    def test_create_again_succeeds_when_the_queue_is_as_asked(self, cli, client):
        cli("work-queue", "create", "etl", "--limit", "3", "-d", "nightly")
        cli("work-queue", "create", "legacy", "-t", "prod", "-t", "eu")
        for args in (
            ["etl", "--limit", "3"],
            ["etl"],
            ["etl", "-d", "nightly"],
            ["legacy", "-t", "eu", "-t", "prod"],
        ):
            assert "exists already; left as it is" in cli("work-queue", "create", *args)
        assert (
            "Work queue 'etl' exists already with concurrency limit 3, not 5 "
            "(see set-concurrency-limit)."
            in cli("work-queue", "create", "etl", "--limit", "5", ok=False)
        )
        assert "tags none, not ['prod']" in cli(
            "work-queue", "create", "etl", "-t", "prod", ok=False
        )
        assert "tags ['eu', 'prod'], not none" in cli("work-queue", "create", "legacy", ok=False)
        assert "description 'nightly', not 'daily'" in cli(
            "work-queue", "create", "etl", "-d", "daily", ok=False
        )
        etl = client.get("/api/work_queues/name/etl").get_json()
        assert (etl["concurrency_limit"], etl["description"]) == (3, "nightly")
        names = [q["name"] for q in client.post("/api/work_queues/filter", json={}).get_json()]
        assert names == ["default", "etl", "legacy"]

    def test_pause_resume_and_limits(self, cli, client):
        cli("work-queue", "create", "etl")
        read = lambda: client.get("/api/work_queues/name/etl").get_json()  # noqa: E731
        cli("work-queue", "pause", "etl")
        assert read()["is_paused"] is True
        cli("work-queue", "resume", "etl")
        assert read()["is_paused"] is False
        cli("work-queue", "set-concurrency-limit", "etl", "4")
        assert read()["concurrency_limit"] == 4
        cli("work-queue", "clear-concurrency-limit", "etl")
        assert read()["concurrency_limit"] is None
        assert (
            "Error: Invalid value"
            in CliRunner()
            .invoke(orion_cli, ["work-queue", "set-concurrency-limit", "etl", "--", "-1"])
            .output
        )

    def test_preview_shows_due_runs_without_polling(self, cli, client, flow):
        cli("work-queue", "create", "etl")
        soon = scheduled_run(client, flow, in_seconds=60)
        scheduled_run(client, flow, in_seconds=3 * 3600)
        scheduled_run(client, flow, queue="other")
        lines = cli("work-queue", "preview", "etl").splitlines()
        assert len(lines) == 2 and lines[1].split()[-1] == soon["id"]
        assert len(cli("work-queue", "preview", "etl", "--hours", "4").splitlines()) == 3
        assert client.get("/api/work_queues/name/etl").get_json()["last_polled"] is None
        cli("work-queue", "pause", "etl")
        assert "is paused" in cli("work-queue", "preview", "etl")
        cli("work-queue", "create", "tagged", "-t", "vip")
        vip = scheduled_run(client, flow, queue=None, tags=["vip"])
        assert vip["id"] in cli("work-queue", "preview", "tagged")

    def test_delete_and_unknown_queues(self, cli):
        cli("work-queue", "create", "etl")
        assert "Deleted work queue 'etl'" in cli("work-queue", "delete", "etl")
        for command in (
            "inspect",
            "pause",
            "resume",
            "delete",
            "preview",
            "clear-concurrency-limit",
        ):
            assert "Work queue 'etl' not found." in cli("work-queue", command, "etl", ok=False)


class TestConcurrencyLimit:
    def test_create_ls_inspect_reset_delete(self, cli, client, flow_run):
        assert "set to 1" in cli("concurrency-limit", "create", "db", "1")
        client.post(
            f"/api/flow_runs/{flow_run['id']}/set_state", json={"state": {"type": "RUNNING"}}
        )
        task = client.post(
            "/api/task_runs/create_and_set_state",
            json={
                "flow_run_id": flow_run["id"],
                "task_key": "t",
                "dynamic_key": "0",
                "tags": ["db"],
                "proposed_state": {"type": "RUNNING"},
            },
        ).get_json()["task_run"]
        assert cli("concurrency-limit", "ls").splitlines()[1].split()[:3] == ["db", "1", "1"]
        assert task["id"] in cli("concurrency-limit", "inspect", "db")
        cli("concurrency-limit", "reset", "db")
        assert client.get("/api/concurrency_limits/tag/db").get_json()["active_slots"] == []
        cli("concurrency-limit", "delete", "db")
        assert cli("concurrency-limit", "ls").strip() == "No concurrency limits."
        for command in ("inspect", "reset", "delete"):
            assert "No concurrency limit on tag 'db'" in cli(
                "concurrency-limit", command, "db", ok=False
            )


class TestFlowRun:
    def test_ls_filters_by_state_type_or_name(self, cli, client, flow):
        pending = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
        late = client.post(
            "/api/flow_runs/",
            json={"flow_id": flow["id"], "state": {"type": "SCHEDULED", "name": "Late"}},
        ).get_json()
        everything = cli("flow-run", "ls")
        assert "etl" in everything and pending["id"] in everything and late["id"] in everything
        only_pending = cli("flow-run", "ls", "--state", "pending")
        assert pending["id"] in only_pending and late["id"] not in only_pending
        both = cli("flow-run", "ls", "--state", "Late", "--state", "PENDING")
        assert pending["id"] in both and late["id"] in both
        assert len(cli("flow-run", "ls", "--limit", "1").splitlines()) == 2
        assert cli("flow-run", "ls", "--state", "FAILED").strip() == "No flow runs."

    def test_inspect_and_delete(self, cli, flow_run):
        assert f'"id": "{flow_run["id"]}"' in cli("flow-run", "inspect", flow_run["id"])
        cli("flow-run", "delete", flow_run["id"])
        assert "not found" in cli("flow-run", "inspect", flow_run["id"], ok=False)
        assert "not found" in cli("flow-run", "delete", flow_run["id"], ok=False)
        assert "not a valid id" in cli("flow-run", "inspect", "nope", ok=False)

    def test_cancel(self, cli, client, flow):
        scheduled = scheduled_run(client, flow)
        assert "is cancelled" in cli("flow-run", "cancel", scheduled["id"])
        assert FlowRun.get_by_id(scheduled["id"]).state_type == "CANCELLED"
        running = client.post("/api/flow_runs/", json={"flow_id": flow["id"]}).get_json()
        client.post(
            f"/api/flow_runs/{running['id']}/set_state", json={"state": {"type": "RUNNING"}}
        )
        assert "is cancelling" in cli("flow-run", "cancel", running["id"])
        assert FlowRun.get_by_id(running["id"]).state_type == "CANCELLING"
        assert "was not cancelled: This run has already terminated" in cli(
            "flow-run", "cancel", scheduled["id"], ok=False
        )
        assert "not found" in cli("flow-run", "cancel", str(uuid.uuid4()), ok=False)

    def test_logs_print_every_record_named_by_its_run(self, cli, client, flow_run):
        task = client.post(
            "/api/task_runs/",
            json={
                "flow_run_id": flow_run["id"],
                "task_key": "t",
                "dynamic_key": "0",
                "name": "t-0",
            },
        ).get_json()
        start = datetime.datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        records = [
            {
                "name": "prefect.flow_runs",
                "level": 40 if i % 100 == 99 else 20,
                "message": f"line {i}",
                "timestamp": (start + datetime.timedelta(milliseconds=i)).isoformat(),
                "flow_run_id": flow_run["id"],
                "task_run_id": task["id"] if i % 2 else None,
            }
            for i in range(450)
        ]
        assert client.post("/api/logs/", json=records).status_code == 201
        lines = cli("flow-run", "logs", flow_run["id"]).splitlines()
        assert [line.rsplit(" - ", 1)[1] for line in lines] == [f"line {i}" for i in range(450)]
        assert lines[0] == (
            f"2026-12-01 08:00:00.000 | INFO    | Flow run {flow_run['name']!r} - line 0"
        )
        assert lines[1] == "2026-12-01 08:00:00.001 | INFO    | Task run 't-0' - line 1"
        errors = cli("flow-run", "logs", flow_run["id"], "--level", "error").splitlines()
        assert [line.rsplit(" - ", 1)[1] for line in errors] == [
            "line 99",
            "line 199",
            "line 299",
            "line 399",
        ]
        assert errors[0].split(" | ")[1].strip() == "ERROR"
        tail = cli("flow-run", "logs", flow_run["id"], "-n", "203").splitlines()
        assert [line.rsplit(" - ", 1)[1] for line in tail] == [f"line {i}" for i in range(247, 450)]

    def test_logs_of_a_run_without_any_and_of_unknown_runs(self, cli, flow_run):
        assert cli("flow-run", "logs", flow_run["id"]) == ""
        assert "not found" in cli("flow-run", "logs", str(uuid.uuid4()), ok=False)
        assert "not a valid id" in cli("flow-run", "logs", "nope", ok=False)


class TestVariable:
    def test_set_get_ls_overwrite_and_delete(self, cli, client):
        assert cli("variable", "ls").strip() == "No variables."
        assert "Set variable 'region'" in cli(
            "variable", "set", "region", "eu-west-1", "-t", "prod"
        )
        assert cli("variable", "get", "region") == "eu-west-1\n"
        stored = client.get("/api/variables/name/region").get_json()
        assert (stored["value"], stored["tags"]) == ("eu-west-1", ["prod"])
        assert "add --overwrite" in cli("variable", "set", "region", "us-east-1", ok=False)
        assert "Replaced" in cli("variable", "set", "region", "us-east-1", "--overwrite")
        assert client.get("/api/variables/name/region").get_json()["value"] == "us-east-1"
        assert cli("variable", "ls").splitlines()[1].split()[:3] == ["region", "us-east-1", "-"]
        assert '"value": "us-east-1"' in cli("variable", "inspect", "region")
        cli("variable", "delete", "region")
        assert client.get("/api/variables/name/region").status_code == 404
        for command in ("get", "inspect", "delete"):
            assert "Variable 'region' not found." in cli("variable", command, "region", ok=False)

    def test_refused_names_and_values_say_why(self, cli):
        assert "lowercase letters" in cli("variable", "set", "Bad Name", "x", ok=False)
        assert "5000" in cli("variable", "set", "big", "x" * 5001, ok=False).replace(",", "")


class TestGlobalConcurrencyLimit:
    def test_create_ls_update_disable_enable_and_delete(self, cli, client):
        group = "global-concurrency-limit"
        assert cli(group, "ls").strip() == "No global concurrency limits."
        assert "with 3 slots" in cli(group, "create", "warehouse", "--limit", "3")
        cli(group, "create", "github", "-l", "10", "--slot-decay-per-second", "0.5", "--disable")
        lines = cli(group, "ls").splitlines()
        assert lines[0].split()[:3] == ["NAME", "ACTIVE", "SLOTS"]
        assert lines[1].split()[:6] == ["github", "no", "0", "10", "0.5", lines[1].split()[5]]
        assert lines[2].split()[:5] == ["warehouse", "yes", "0", "3", "0.0"]
        cli(group, "update", "warehouse", "--active-slots", "2", "-l", "5")
        shown = client.get("/api/v2/concurrency_limits/warehouse").get_json()
        assert (shown["active_slots"], shown["limit"]) == (2, 5)
        assert '"active_slots": 2' in cli(group, "inspect", "warehouse")
        cli(group, "disable", "warehouse")
        assert client.get("/api/v2/concurrency_limits/warehouse").get_json()["active"] is False
        cli(group, "enable", "warehouse")
        assert client.get("/api/v2/concurrency_limits/warehouse").get_json()["active"] is True
        cli(group, "delete", "warehouse")
        assert client.get("/api/v2/concurrency_limits/warehouse").status_code == 404

    def test_errors_are_one_line_each(self, cli):
        group = "global-concurrency-limit"
        cli(group, "create", "db", "-l", "1")
        assert "exists already" in cli(group, "create", "db", "-l", "2", ok=False)
        assert "Nothing to change" in cli(group, "update", "db", ok=False)
        for command in ("inspect", "enable", "disable", "delete"):
            assert "'nope' not found" in cli(group, command, "nope", ok=False)
        assert "'nope' not found" in cli(group, "update", "nope", "-l", "1", ok=False)


def orion_script(args, env, tmp_path):
    return subprocess.run(
        [ORION, *args], env=orion_env(tmp_path, **env), capture_output=True, text=True, timeout=60
    )


def test_the_console_script_uses_the_ephemeral_api(tmp_path):
    created = orion_script(["work-queue", "create", "etl"], {}, tmp_path)
    assert created.returncode == 0, created.stderr
    listed = orion_script(["work-queue", "ls"], {}, tmp_path)
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["default", "etl"]
    again = orion_script(["work-queue", "create", "etl"], {}, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "exists already; left as it is" in again.stdout
    different = orion_script(["work-queue", "create", "etl", "--limit", "2"], {}, tmp_path)
    assert different.returncode == 1
    assert different.stderr.strip() == (
        "Error: Work queue 'etl' exists already with no "
        "concurrency limit, not 2 (see set-concurrency-limit)."
    )


def test_an_unreachable_server_is_one_error_line(tmp_path):
    port = free_port()
    result = orion_script(
        ["flow-run", "ls"],
        {"ORION_API_URL": f"http://127.0.0.1:{port}/api", "ORION_API_RETRIES": "0"},
        tmp_path,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "ConnectError" in lines[0]


def test_a_run_once_agent_fails_when_the_server_is_down(tmp_path):
    port = free_port()
    result = orion_script(
        ["agent", "start", "-q", "etl", "--run-once"],
        {"ORION_API_URL": f"http://127.0.0.1:{port}/api", "ORION_API_RETRIES": "0"},
        tmp_path,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"Error: The agent's poll failed: GET http://127.0.0.1:{port}/api/"
        "work_queues/name/etl failed after 1 attempt(s): ConnectError"
    ), last
