"""A Prefect client's flow against Orion: tasks, retries, caching, persisted results on local
storage, a subflow, logs (a burst of them in one batch among them), a task run named from a
long parameter and a tag concurrency limit, all in one flow run per client and backend; each
test reads one part of it back through Orion's API."""

import base64
import json
import pickle
from datetime import datetime
from pathlib import Path

import pytest

from tests.compat.conftest import flow_runs, log_messages, ok, state_history, task_runs

FLOW = """
import json
import sys
import time

from prefect import flow, get_run_logger, task
from prefect.context import get_run_context
from prefect.filesystems import LocalFileSystem

TAG, STORAGE, LIMIT_TAG = sys.argv[1:4]
BURST = int(sys.argv[4])
# A task run's name made from a parameter longer than other names may be.
LONG_PATH = "s3://bucket/" + "k" * 600
attempts = []


@task
def extract():
    return [1, 2, 3]


@task
def transform(rows):
    get_run_logger().info("transform got %s rows", len(rows))
    return [row * 10 for row in rows]


@task(retries=2, retry_delay_seconds=0)
def flaky():
    attempts.append(1)
    if len(attempts) < 3:
        raise RuntimeError(f"flaky attempt {len(attempts)} fails")
    return len(attempts)


@task(cache_key_fn=lambda context, parameters: f"compat-{TAG}-{parameters['x']}",
      persist_result=True)
def cached(x):
    return x * 2


@task(task_run_name="named-{path}")
def named(path):
    return len(path)


@task(tags=[LIMIT_TAG])
def limited(i):
    time.sleep(1)
    return i


@flow(name="compat-child")
def child(n):
    get_run_logger().info("child flow %s got %s", TAG, n)
    return n + 1


@flow(name="compat-parent", persist_result=True,
      result_storage=LocalFileSystem(basepath=STORAGE))
def parent():
    print("FLOW_RUN_ID=" + str(get_run_context().flow_run.id), flush=True)
    get_run_logger().info("compat log marker %s", TAG)
    # Binary data decoded into a log line, in the same batch as the burst.
    get_run_logger().info("raw bytes %s", "a\\x00b")
    for i in range(BURST):
        get_run_logger().info("burst %s", i)
    rows = transform(extract())
    retried = flaky()
    first, second = cached(21), cached(21)
    futures = [limited.submit(i) for i in range(3)]
    return {"rows": rows, "retried": retried, "cached": [first, second],
            "limited": [future.result() for future in futures], "sub": child(41),
            "named": named(LONG_PATH)}


if __name__ == "__main__":
    print("RESULT=" + json.dumps(parent()), flush=True)
"""

# Log lines the flow writes at once: the client sends them in one batch (Prefect bounds a
# batch in bytes, 4 MB by default, not in records).
BURST = 3000

LONG_PATH = "s3://bucket/" + "k" * 600
EXPECTED = {
    "rows": [10, 20, 30],
    "retried": 3,
    "cached": [42, 42],
    "limited": [0, 1, 2],
    "sub": 42,
    "named": len(LONG_PATH),
}


@pytest.fixture(scope="module")
def run(prefect, api):
    """The parent flow run, once per client and backend: (flow run as the API returns it,
    its task runs by name prefix, the results folder, the concurrency limit's tag)."""
    storage = prefect.workdir / "results"
    limit_tag = f"compat-limit-{prefect.tag}"
    ok(api.post("concurrency_limits/", json={"tag": limit_tag, "concurrency_limit": 1}))
    output = prefect.script(FLOW, prefect.tag, str(storage), limit_tag, str(BURST), timeout=180)
    [flow_run_id] = [
        line.split("=", 1)[1] for line in output.splitlines() if line.startswith("FLOW_RUN_ID=")
    ]
    [result] = [
        json.loads(line.split("=", 1)[1])
        for line in output.splitlines()
        if line.startswith("RESULT=")
    ]
    assert result == EXPECTED, output
    flow_run = ok(api.get(f"flow_runs/{flow_run_id}"))
    runs = task_runs(api, flow_run_id)
    # A subflow's run hangs off a task run of its own in the parent (named after the subflow run).
    children = flow_runs(api, parent_task_run_id={"any_": [t["id"] for t in runs]})
    parents = {child["parent_task_run_id"] for child in children}
    by_name = {}
    for task_run in runs:
        name = "subflow" if task_run["id"] in parents else task_run["name"].rsplit("-", 1)[0]
        by_name.setdefault(name, []).append(task_run)
    return {
        "flow_run": flow_run,
        "tasks": by_name,
        "children": children,
        "storage": storage,
        "limit_tag": limit_tag,
        "output": output,
    }


def test_flow_with_tasks_completes(run):
    assert run["flow_run"]["state"]["type"] == "COMPLETED"
    tasks = run["tasks"]
    assert {name: len(runs) for name, runs in tasks.items()} == {
        "extract": 1,
        "transform": 1,
        "flaky": 1,
        "cached": 2,
        "limited": 3,
        "subflow": 1,
        "named": 1,
    }
    assert all(t["state"]["type"] == "COMPLETED" for runs in tasks.values() for t in runs)
    # transform's input is extract's result: the client reported the dependency.
    [extract], [transform] = tasks["extract"], tasks["transform"]
    assert transform["task_inputs"]["rows"] == [{"input_type": "task_run", "id": extract["id"]}]


def test_a_task_run_named_from_a_long_parameter_keeps_its_whole_name(run):
    [named] = run["tasks"]["named"]
    assert named["name"] == f"named-{LONG_PATH}"


def test_retried_task_ran_three_times(run, api):
    [flaky] = run["tasks"]["flaky"]
    assert flaky["run_count"] == 3
    history = state_history(api, task_run_id=flaky["id"])
    assert [name for _, name in history].count("AwaitingRetry") == 2, history
    assert history[-1] == ("COMPLETED", "Completed")


def test_cached_task_second_call_is_cached(run, api):
    first, second = sorted(run["tasks"]["cached"], key=lambda t: t["expected_start_time"])
    assert first["state"]["name"] == "Completed"
    assert second["state"]["type"] == "COMPLETED"
    assert second["state"]["name"] == "Cached"
    assert second["run_count"] == 0  # never ran: the server answered from the cache


def test_result_persisted_on_local_storage(run, api):
    """The flow's result is a reference to a file written through a LocalFileSystem block
    (saved anonymously by the client); the file holds the flow's return value."""
    data = run["flow_run"]["state"]["data"]
    assert data["type"] == "reference", data
    block = ok(api.get(f"block_documents/{data['storage_block_id']}"))
    assert block["block_type"]["slug"] == "local-file-system"
    assert block["is_anonymous"] is True
    assert Path(block["data"]["basepath"]) == run["storage"]
    blob = json.loads((run["storage"] / data["storage_key"]).read_text())
    assert pickle.loads(base64.b64decode(blob["data"])) == EXPECTED


def test_subflow_is_a_child_of_its_task_run(run, api, prefect):
    [child_task] = run["tasks"]["subflow"]
    [child] = run["children"]
    assert child["parent_task_run_id"] == child_task["id"]
    assert child["state"]["type"] == "COMPLETED"
    flow = ok(api.get(f"flows/{child['flow_id']}"))
    assert flow["name"] == "compat-child"
    assert any(
        message == f"child flow {prefect.tag} got 41" for message in log_messages(api, child["id"])
    )


def test_logs_reach_the_server(run, api, prefect):
    messages = log_messages(api, run["flow_run"]["id"])
    assert f"compat log marker {prefect.tag}" in messages
    assert "transform got 3 rows" in messages
    burst = [message for message in messages if message.startswith("burst ")]
    assert burst == [f"burst {i}" for i in range(BURST)]
    assert "raw bytes a\ufffdb" in messages  # the NUL replaced, not the batch refused
    assert "Error logging to API" not in run["output"]


def test_tag_concurrency_limit_runs_one_at_a_time(run, api):
    """Three one-second task runs under a limit of 1 take three seconds or more, start to end.

    (Start and end times are the client's state timestamps, taken before the server decides,
    so consecutive runs can seem to overlap by a millisecond; their total span cannot lie.)
    """
    limited = run["tasks"]["limited"]
    assert all(t["tags"] == [run["limit_tag"]] for t in limited)
    start = min(datetime.fromisoformat(t["start_time"]) for t in limited)
    end = max(datetime.fromisoformat(t["end_time"]) for t in limited)
    assert (end - start).total_seconds() >= 3, [(t["start_time"], t["end_time"]) for t in limited]
    limit = ok(api.get(f"concurrency_limits/tag/{run['limit_tag']}"))
    assert limit["active_slots"] == []


LONG_MESSAGE_FLOW = """
import json

from prefect import flow, task
from prefect.context import get_run_context

attempts = []


@task(retries=1, retry_delay_seconds=0)
def load_rows():
    attempts.append(1)
    if len(attempts) == 1:
        # A validation error listing every bad row: longer than a state message is kept.
        raise ValueError("bad rows: " + "row 1 has no id; " * 150_000)
    return len(attempts)


@flow(name="compat-long-message")
def rows():
    print("FLOW_RUN_ID=" + str(get_run_context().flow_run.id), flush=True)
    return load_rows()


if __name__ == "__main__":
    print("RESULT=" + json.dumps(rows()), flush=True)
"""


def test_a_task_failing_with_a_huge_message_fails_and_is_retried(prefect, api):
    """The exception's message (2.55 million characters) becomes the Failed state's message;
    Orion stores its first million characters instead of refusing the state, so the task run
    is retried as its policy says rather than crashing."""
    output = prefect.script(LONG_MESSAGE_FLOW, timeout=120)
    assert "RESULT=2" in output, output[-3000:]
    [flow_run_id] = [
        line.split("=", 1)[1] for line in output.splitlines() if line.startswith("FLOW_RUN_ID=")
    ]
    [task_run] = task_runs(api, flow_run_id)
    assert task_run["run_count"] == 2
    states = ok(api.get("task_run_states/", params={"task_run_id": task_run["id"]}))
    states.sort(key=lambda s: s["timestamp"])
    assert [s["name"] for s in states] == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]
    retry_message = states[2]["message"]
    assert len(retry_message) == 1_000_000
    assert "ValueError: bad rows: row 1 has no id; " in retry_message
    assert retry_message.endswith(" characters in all]")
