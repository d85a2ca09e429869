"""What the task runner tests share: their server, and a task run's record to compare."""

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from client import task
from tests.support import BACKENDS, module_server

# For the processes that run task runs (workers): send their logs quickly.
FLOW_ENV = {"ORION_LOGS_INTERVAL_SECONDS": 0.2}


@contextmanager
def run_server(tmp_path_factory, purpose):
    """An ``orion start`` on PostgreSQL (SQLite when the run is narrowed to it): the
    database does not matter to the runners, only that the workers reach the API."""
    backend = "postgres" if "postgres" in BACKENDS else BACKENDS[0]
    options = {"workers": 1, "threads": 8, "TASK_CONCURRENCY_SLOT_WAIT_SECONDS": 0.3}
    with module_server(tmp_path_factory, backend, f"runners_{purpose}", **options) as server:
        yield server


def recorded(orion, flow_run_id):
    """The task runs of a flow run as the API records them, by name, without ids and times:
    their states (type, name), final message, run count, tags, and inputs (a task run input
    by the name of that run)."""
    runs = orion.read_task_runs(flow_run_filter={"id": {"any_": [flow_run_id]}}, limit=200)
    names = {r["id"]: r["name"] for r in runs}

    def inputs(task_inputs):
        return {
            key: sorted(
                names.get(ref.get("id"), str(ref)) if ref["input_type"] == "task_run" else str(ref)
                for ref in refs
            )
            for key, refs in task_inputs.items()
        }

    return {
        r["name"]: {
            "states": [(s.type.value, s.name) for s in orion.read_task_run_states(r["id"])],
            "message": r["state"]["message"],
            "run_count": r["run_count"],
            "tags": sorted(r["tags"]),
            "inputs": inputs(r["task_inputs"]),
        }
        for r in runs
    }


def worker_of(orion, task_run):
    """The worker a task run's last Running state recorded (None if none did)."""
    details = [
        s.state_details for s in orion.read_task_run_states(task_run["id"]) if s.is_running()
    ]
    return details[-1].get("worker") if details else None


def all_logs(orion, flow_run_id):
    """The messages of every log line of a flow run."""
    messages, offset = [], 0
    while True:
        page = orion.read_logs({"flow_run_id": {"any_": [flow_run_id]}}, limit=200, offset=offset)
        if not page:
            return messages
        messages.extend(r["message"] for r in page)
        offset += len(page)


@task
def sleeps_on_first_attempt(path):
    """Writes its worker's pid to ``path`` and sleeps (to be killed); later attempts return."""
    if os.path.exists(path):
        return "second attempt"
    Path(path).write_text(str(os.getpid()))
    time.sleep(120)
    return "not killed"


def kill_when_written(path):
    """A thread that SIGKILLs the process whose pid appears in ``path`` (within 60 s)."""

    def kill():
        deadline = time.monotonic() + 60
        while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(int(path.read_text()), signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread
