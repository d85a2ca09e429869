"""A flow of 10,000 tasks (issue 21 part 5): when the flow call returns, every task run,
every state and every task's log line is in the database.

Ephemeral mode (the API in the flow's process, on SQLite in ORION_HOME), in a Python process
of its own, as a user runs it; the tasks go one after the other, as a plain loop of task
calls does. Right after the call returns, the script counts the rows in the database file
itself. bench/bench_sdk.py measures the per-task cost through servers too.
"""

import pytest

from tests.sdk.servers import run_script
from tests.support import BACKENDS, orion_env

TASKS = 10_000

SCRIPT = f"""
import sqlite3, time
from client import flow, task

@task
def square(x):
    return x * x

@flow
def big():
    return sum(square(i) for i in range(TASKS))

TASKS = {TASKS}
started = time.perf_counter()
result = big()
elapsed = time.perf_counter() - started
db = sqlite3.connect("home/orion.db")
def rows(query):
    return db.execute(query).fetchall()
print("RESULT", result == sum(i * i for i in range(TASKS)))
print("FLOW", rows("SELECT state_type FROM flow_run"))
print("TASK_RUNS", rows("SELECT state_type, COUNT(*), COUNT(DISTINCT dynamic_key) "
                        "FROM task_run GROUP BY state_type"))
print("STATES", rows("SELECT type, COUNT(*) FROM task_run_state GROUP BY type ORDER BY type"))
print("TASK_LOGS", rows("SELECT COUNT(*) FROM log WHERE task_run_id IS NOT NULL"))
print(f"TIME {{elapsed:.1f}} s, {{elapsed / TASKS * 1000:.2f}} ms a task")
"""


@pytest.mark.skipif("sqlite" not in BACKENDS, reason="ephemeral mode runs on SQLite")
def test_a_flow_of_10000_tasks_is_all_recorded_when_it_returns(tmp_path):
    env = orion_env(tmp_path / "home")
    code, out = run_script(tmp_path, "big", SCRIPT, env, timeout=300)
    assert code == 0, out[-3000:]
    print("\n" + next(line for line in out.splitlines() if line.startswith("TIME")))
    assert "RESULT True" in out
    assert "FLOW [('COMPLETED',)]" in out
    assert f"TASK_RUNS [('COMPLETED', {TASKS}, {TASKS})]" in out
    assert f"STATES [('COMPLETED', {TASKS}), ('RUNNING', {TASKS})]" in out
    # Each task run's "Finished in state Completed()" line, flushed before the call returned.
    assert f"TASK_LOGS [({TASKS},)]" in out
