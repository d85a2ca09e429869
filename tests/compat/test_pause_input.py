"""A Prefect 2.20 flow paused for input and resumed with it through the 2.20 client, against
Orion (``pause_flow_run(wait_for_input=...)``, ``resume_flow_run(id, run_input=...)``): the
flow stores its input's schema, a resume with input the schema refuses is rejected and the
flow keeps waiting, and the input of the resume that is accepted reaches the flow. The server's
side is read through its API. (Prefect 2.7 has no flow run input.)"""

import json
import subprocess

from tests.compat.conftest import ok, prefect_220_only, wait_for

FLOW = """
import sys

from prefect import flow, pause_flow_run
from prefect.input import RunInput


class Approval(RunInput):
    approved: bool
    note: str = ""


@flow(name=sys.argv[1])
def gated():
    answer = pause_flow_run(wait_for_input=Approval, timeout=120, poll_interval=1)
    print(f"ANSWER={answer.approved}/{answer.note}", flush=True)
    return answer.note


gated()
"""

RESUME = """
import asyncio
import json
import sys

from prefect.client.orchestration import get_client


async def main():
    async with get_client() as client:
        result = await client.resume_flow_run(sys.argv[1], run_input=json.loads(sys.argv[2]))
        print("STATUS=" + result.status.value)
        print("REASON=" + str(getattr(result.details, "reason", "")))


asyncio.run(main())
"""


prefect = prefect_220_only("prefect-2.20")


def test_a_flow_paused_for_input_receives_the_input_it_is_resumed_with(prefect, api):
    name = "gated-" + prefect.tag
    script = prefect.workdir / "gated.py"
    script.write_text(FLOW)
    home = prefect.workdir / "home-gated"
    home.mkdir()
    flow = subprocess.Popen(
        [prefect.python, str(script), name],
        cwd=str(prefect.workdir),
        env=prefect.env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        paused = {
            "flows": {"name": {"any_": [name]}},
            "flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}},
        }
        (run,) = wait_for(
            lambda: ok(api.post("flow_runs/filter", json=paused)), 60, f"flow {name} to pause"
        )
        keyset = run["state"]["state_details"]["run_input_keyset"]
        schema_path = f"flow_runs/{run['id']}/input/{keyset['schema']}"
        schema = wait_for(
            lambda: api.get(schema_path).is_success and api.get(schema_path).json(),
            30,
            "the flow to store its input's schema",
            interval=0.2,
        )
        assert schema["properties"]["approved"]["type"] == "boolean"

        refused = prefect.script(RESUME, run["id"], json.dumps({"approved": "maybe"}))
        assert "STATUS=REJECT" in refused and "approved" in refused, refused
        assert ok(api.get(f"flow_runs/{run['id']}"))["state_type"] == "PAUSED"

        accepted = prefect.script(RESUME, run["id"], json.dumps({"approved": True, "note": "go"}))
        assert "STATUS=ACCEPT" in accepted, accepted
        output, _ = flow.communicate(timeout=90)
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.communicate()
    assert flow.returncode == 0, output[-6000:]
    assert "ANSWER=True/go" in output, output[-6000:]
    final = ok(api.get(f"flow_runs/{run['id']}"))
    assert final["state_type"] == "COMPLETED"
    stored = api.get(f"flow_runs/{run['id']}/input/{keyset['response']}")
    assert json.loads(stored.text) == {"approved": True, "note": "go"}
