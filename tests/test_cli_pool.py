"""``orion pool`` (and ``orion deployment create --pool``): the real commands, talking to the
test app through a real OrionClient (both backends), plus the console script on the
ephemeral API for ``orion agent start --pool``'s refusals."""

import json

import pytest
from click.testing import CliRunner

from orion_cli import orion_cli
from tests.test_cli_api import orion_script


@pytest.fixture
def flow_file(tmp_path):
    """A flow file, ``etl.py``, with the flow ``etl``."""
    path = tmp_path / "etl.py"
    path.write_text(
        "from client import flow\n\n\n@flow(name='etl')\ndef etl(n: int = 1):\n    return n\n"
    )
    return path


def read_pool(client, name="P"):
    return client.get(f"/api/work_pools/{name}").get_json()


class TestPool:
    def test_create_ls_and_inspect(self, cli, client):
        assert "Created work pool 'P' of type 'process'" in cli(
            "pool", "create", "P", "--concurrency-limit", "3", "-d", "nightly"
        )
        cli("pool", "create", "K", "--type", "kubernetes", "--paused")
        lines = cli("pool", "ls").splitlines()
        assert lines[0].split() == [
            "NAME",
            "TYPE",
            "STATUS",
            "CONCURRENCY",
            "LIMIT",
            "PAUSED",
            "ID",
        ]
        assert lines[1].split()[:5] == ["K", "kubernetes", "PAUSED", "unlimited", "yes"]
        assert lines[2].split()[:5] == ["P", "process", "NOT_READY", "3", "no"]
        client.post("/api/work_pools/P/workers/heartbeat", json={"name": "w1"})
        shown = json.loads(cli("pool", "inspect", "P"))
        assert (shown["name"], shown["description"], shown["status"]) == ("P", "nightly", "READY")
        assert [q["name"] for q in shown["queues"]] == ["default"]
        assert [w["name"] for w in shown["workers"]] == ["w1"]

    def test_create_again_succeeds_when_the_pool_is_as_asked(self, cli, client):
        cli("pool", "create", "P", "--concurrency-limit", "3", "-d", "nightly")
        for args in (["P"], ["P", "-l", "3"], ["P", "--type", "process", "-d", "nightly"]):
            assert "exists already; left as it is" in cli("pool", "create", *args)
        assert (
            "Work pool 'P' exists already with type 'process', not 'docker'; "
            "concurrency limit 3, not 5 (see set-concurrency-limit); not paused (see pause)."
            in cli("pool", "create", "P", "-t", "docker", "-l", "5", "--paused", ok=False)
        )
        pool = read_pool(client)
        assert (pool["type"], pool["concurrency_limit"], pool["is_paused"]) == ("process", 3, False)

    def test_pause_resume_and_limits(self, cli, client):
        cli("pool", "create", "P")
        assert "Paused work pool 'P'." in cli("pool", "pause", "P")
        assert read_pool(client)["status"] == "PAUSED"
        cli("pool", "resume", "P")
        assert read_pool(client)["is_paused"] is False
        cli("pool", "set-concurrency-limit", "P", "4")
        assert read_pool(client)["concurrency_limit"] == 4
        cli("pool", "clear-concurrency-limit", "P")
        assert read_pool(client)["concurrency_limit"] is None

    def test_queues(self, cli, client):
        cli("pool", "create", "P")
        assert "Created queue 'urgent' in work pool 'P' (priority 1" in cli(
            "pool", "queue", "create", "P", "urgent", "--priority", "1", "--limit", "2"
        )
        cli("pool", "queue", "create", "P", "later")
        lines = cli("pool", "queue", "ls", "P").splitlines()
        assert [line.split()[:4] for line in lines[1:]] == [
            ["1", "urgent", "2", "no"],
            ["2", "default", "unlimited", "no"],
            ["3", "later", "unlimited", "no"],
        ]
        assert "Work pool 'P' has a queue 'later' already." in cli(
            "pool", "queue", "create", "P", "later", ok=False
        )
        assert "Work pool 'Q' not found." in cli("pool", "queue", "ls", "Q", ok=False)

    def test_delete_is_refused_while_deployments_use_the_pool(self, cli, client, flow_file):
        cli("pool", "create", "P")
        created = cli("deployment", "create", f"{flow_file}:etl", "-n", "daily", "--pool", "P")
        assert "Deployment 'etl/daily'" in created
        deployment = client.get("/api/deployments/name/etl/daily").get_json()
        assert (deployment["work_pool_name"], deployment["work_queue_name"]) == ("P", "default")
        assert cli("deployment", "ls").splitlines()[1].split()[3:5] == ["P", "default"]
        refused = cli("pool", "delete", "P", ok=False)
        assert refused.strip() == (
            "Error: Work pool 'P' was not deleted: Work pool 'P' has deployments: etl/daily. "
            "Delete them or move them to another pool first."
        )
        assert read_pool(client)["name"] == "P"
        cli("deployment", "delete", "etl/daily")
        assert "Deleted work pool 'P'." in cli("pool", "delete", "P")
        for command in ("inspect", "pause", "resume", "delete", "clear-concurrency-limit"):
            assert "Work pool 'P' not found." in cli("pool", command, "P", ok=False)

    def test_a_deployment_in_an_unknown_pool_is_refused(self, cli, flow_file):
        refused = cli(
            "deployment", "create", f"{flow_file}:etl", "-n", "daily", "--pool", "nope", ok=False
        )
        assert "Work pool 'nope' not found" in refused


def test_an_agent_needs_a_queue_or_a_pool():
    result = CliRunner().invoke(orion_cli, ["agent", "start"])
    assert result.exit_code == 2
    assert "Give a work queue (-q) or a work pool (--pool)." in result.output


def test_an_agent_refuses_a_pool_it_cannot_serve(tmp_path):
    """On the ephemeral API: one Error line and exit status 1, at once, for a pool that does
    not exist, a pool of a type the agent does not run, and a queue the pool lacks."""
    missing = orion_script(["agent", "start", "--pool", "P"], {}, tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        "Error: Work pool 'P' not found; create it with `orion pool create P --type process`."
    )
    assert orion_script(["pool", "create", "K", "-t", "kubernetes"], {}, tmp_path).returncode == 0
    wrong_type = orion_script(["agent", "start", "--pool", "K"], {}, tmp_path)
    assert wrong_type.returncode == 1
    assert "Error: Work pool 'K' is of type 'kubernetes'" in wrong_type.stderr
    assert orion_script(["pool", "create", "P"], {}, tmp_path).returncode == 0
    no_queue = orion_script(["agent", "start", "--pool", "P", "-q", "x"], {}, tmp_path)
    assert no_queue.returncode == 1
    assert no_queue.stderr.strip().splitlines()[-1] == (
        "Error: Work pool 'P' has no queue named 'x'; its queues: default."
    )
