"""Prefect 2.7.12 persists results to S3 (moto's server, a real process on 127.0.0.1) through
an ``S3`` block it saved itself in Orion, and Orion's own ``S3`` block reads them back: the
block documents, schemas and objects of the two clients are interchangeable.

Then ``prefect deployment build -sb s3/NAME --apply`` uploads a flow's code through an S3
block Orion's client saved, and Prefect's own agent downloads and runs it.

Prefect 2.7's S3 block has no endpoint field, so its process reaches moto the way boto does,
through ``AWS_ENDPOINT_URL``. The server's database does not matter here (one block document,
one flow run): one ``orion start`` on SQLite; the blocks API runs on both databases in
tests/compat/test_blocks.py.
"""

import base64
import json
import os
import pickle
import shutil
import signal
import uuid

import httpx
import pytest

from client import OrionClient
from client.blocks import S3, Block
from tests.compat.conftest import Prefect, ok, prefect_venv, wait_for
from tests.storage.emulators import s3_with_bucket
from tests.support import OrionServer

FLOW = """
import sys

from prefect import flow, task
from prefect.filesystems import S3

BLOCK, BUCKET_PATH, KEY, SECRET, FLOW_NAME = sys.argv[1:6]
S3(bucket_path=BUCKET_PATH, aws_access_key_id=KEY, aws_secret_access_key=SECRET).save(BLOCK)


@task(persist_result=True)
def rows():
    return [1, 2, 3]


@flow(name=FLOW_NAME, persist_result=True, result_storage=f"s3/{BLOCK}")
def stored():
    return {"rows": rows(), "text": "from prefect"}


state = stored(return_state=True)
print("RESULT", state.result())
"""


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    yield from s3_with_bucket(tmp_path_factory.mktemp("moto"), "prefect")


@pytest.fixture(scope="module")
def prefect27(tmp_path_factory):
    venv = prefect_venv("2.7")
    folder = tmp_path_factory.mktemp("compat-s3")
    with OrionServer(folder, SCHEDULER_ENABLED="false") as server:
        yield Prefect("2.7", venv, server.api_url, "sqlite", folder)


def test_prefect_persists_results_to_s3_through_a_block_it_saved(prefect27, moto, monkeypatch):
    tag = prefect27.tag
    name, flow_name = f"prod-{tag}", f"s3-results-{tag}"
    folder = f"prefect/results-{uuid.uuid4().hex[:6]}"
    script = FLOW.replace("sys.argv[1:6]", repr([name, folder, moto.key, moto.secret, flow_name]))
    out = prefect27.script(script, AWS_ENDPOINT_URL=moto.endpoint, AWS_DEFAULT_REGION="us-east-1")
    assert "RESULT {'rows': [1, 2, 3], 'text': 'from prefect'}" in out, out

    with httpx.Client(base_url=prefect27.api_url + "/", timeout=30) as api:
        [run] = ok(api.post("flow_runs/filter", json={"flows": {"name": {"any_": [flow_name]}}}))
        document = ok(api.get(f"block_documents/{run['state']['data']['storage_block_id']}"))
    assert run["state"]["type"] == "COMPLETED"
    reference = run["state"]["data"]
    assert reference["type"] == "reference" and document["name"] == name
    assert document["block_type"]["slug"] == "s3"
    assert document["data"]["aws_secret_access_key"] == "**********"  # obfuscated on read

    # Orion's S3 block loads the document Prefect saved (its secrets included) and reads the
    # object Prefect wrote: Prefect's result blob, a base64 pickle.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    with OrionClient(prefect27.api_url) as orion:
        block = Block.load(f"s3/{name}", client=orion)
    assert isinstance(block, S3) and block.bucket_path == folder
    assert block.aws_secret_access_key.get_secret_value() == moto.secret
    blob = json.loads(block.read_path(reference["storage_key"]))
    assert pickle.loads(base64.b64decode(blob["data"])) == {
        "rows": [1, 2, 3],
        "text": "from prefect",
    }
    # The task's result is there too: two objects, both whole.
    assert len(block.filesystem.ls(folder)) == 2


DEPLOYED = """
from prefect import flow


@flow(name="compat-s3-deployed")
def deployed(marker: str = "none"):
    with open("data.txt") as handle:
        return f"{marker}:{handle.read()}"
"""


def test_prefect_builds_a_deployment_on_s3_and_its_agent_runs_it(prefect27, moto, tmp_path):
    """``prefect deployment build -sb s3/NAME --apply`` uploads the code through an S3 block
    saved by Orion's client; Prefect's agent downloads it from moto and runs the flow."""
    tag = prefect27.tag
    name, queue = f"code-{tag}", f"s3-{tag}"
    folder = f"prefect/code-{uuid.uuid4().hex[:6]}"
    with OrionClient(prefect27.api_url) as orion:
        S3(bucket_path=folder, aws_access_key_id=moto.key, aws_secret_access_key=moto.secret).save(
            name, client=orion
        )
    project = tmp_path / "project"
    project.mkdir()
    (project / "deployed.py").write_text(DEPLOYED)
    (project / "data.txt").write_text("from-s3")
    aws = {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    prefect27.run(
        "deployment",
        "build",
        "deployed.py:deployed",
        "-n",
        f"on-s3-{tag}",
        "-q",
        queue,
        "-sb",
        f"s3/{name}",
        "--apply",
        cwd=project,
        **aws,
    )
    uploaded = S3(
        bucket_path=folder,
        aws_access_key_id=moto.key,
        aws_secret_access_key=moto.secret,
        endpoint_url=moto.endpoint,
    ).filesystem.ls(folder)
    assert {path.rsplit("/", 1)[1] for path in uploaded} >= {"deployed.py", "data.txt"}
    shutil.rmtree(project)  # the agent can only have the code from S3

    with httpx.Client(base_url=prefect27.api_url + "/", timeout=30) as api:
        [deployment] = ok(
            api.post(
                "deployments/filter", json={"deployments": {"name": {"any_": [f"on-s3-{tag}"]}}}
            )
        )
        run = ok(
            api.post(
                f"deployments/{deployment['id']}/create_flow_run",
                json={"parameters": {"marker": "m"}, "state": {"type": "SCHEDULED"}},
            )
        )
        process, log_path = prefect27.start("agent", "start", "-q", queue, log_name="agent", **aws)
        try:
            final = wait_for(
                lambda: (
                    state
                    if (state := ok(api.get(f"flow_runs/{run['id']}"))["state"])["type"]
                    in ("COMPLETED", "FAILED", "CRASHED")
                    else None
                ),
                150,
                lambda: f"the run; agent said:\n{log_path.read_text()[-3000:]}",
            )
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    assert final["type"] == "COMPLETED", (final, log_path.read_text()[-3000:])
