"""Remote storage blocks against real stores: S3 (moto's server), Azure Blob Storage
(azurite), Google Cloud Storage (gcp-storage-emulator) and an SMB share (Samba's smbd), each a
process on 127.0.0.1 (tests/storage/emulators.py).

For each store: a flow persists its results there through a saved block and they are read
back; a deployment whose code lives there (``orion deployment build --storage-block``) runs on
a real agent, which downloads the code for every run, and a changed file is uploaded again.
Failures (wrong credentials, a missing bucket, a store that does not answer: nothing listens
on its port, or a listener takes the request and stays silent) fail the run with a message
naming the block and the store's error, within the blocks' bound, and leave nothing written.
How many tries the blocks make, and how long each waits, is in tests/storage/test_store_bounds.py.

The server's database does not matter here (blocks and runs are plain rows): one ``orion
start`` on SQLite serves the module; the blocks API itself is tested on both databases in
tests/api/test_blocks.py.
"""

import json
import shutil
import subprocess
import time
import uuid

import pytest

from client.blocks import S3, Azure
from client.sdk.results import load_result
from tests.sdk.servers import run_script
from tests.storage.emulators import AZURITE_KEY, EMULATORS, SilentListener
from tests.support import ORION, Agents, OrionServer, due_runs, free_port, orion_env, wait_for

STORES = list(EMULATORS)


# What each store answers (as its driver words it), by failure. Not shown: wrong credentials
# on the GCS emulator (it takes none). "not answering": nothing listens on the store's port;
# "silent": a listener takes the connection and the request, and never answers. Not shown: a
# silent S3 store on a write (botocore sends PutObject with "Expect: 100-continue", and that
# wait is not bounded by the read timeout: see tests/storage/test_store_bounds.py).
EXPECTED_ERRORS = {
    "s3": {
        "wrong credentials": "PermissionError",
        "missing bucket": "The specified bucket does not exist",
        "not answering": "Could not connect to the endpoint URL",
    },
    "azure": {
        "wrong credentials": "Server failed to authenticate the request",
        "missing bucket": "ContainerNotFound",
        "not answering": "Cannot connect to host",
        "silent": "Timeout on reading data from socket",
    },
    "gcs": {
        "missing bucket": "FileNotFoundError",
        "not answering": "Cannot connect to host",
        "silent": "SocketTimeoutError: Timeout on reading data from socket",
    },
    "smb": {
        "wrong credentials": "STATUS_LOGON_FAILURE",
        "missing bucket": "STATUS_NOT_FOUND",
        "not answering": "Connection refused",
        "silent": "timeout",
    },
}
FAILURES = [(kind, failure) for kind, errors in EXPECTED_ERRORS.items() for failure in errors]
each_store = pytest.mark.parametrize("store", STORES, indirect=True)


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    """The module's running emulators by kind, each started on first use, stopped at the end."""
    running = {}
    yield running
    for emulator in running.values():
        emulator.stop()


@pytest.fixture
def store(request, emulators, tmp_path_factory):
    """A running emulator of the store ``request.param`` names, with a bucket "orion"."""
    kind = request.param
    if kind not in emulators:
        emulator = EMULATORS[kind](tmp_path_factory.mktemp(f"store-{kind}"))
        emulator.start()
        emulators[kind] = emulator
        emulator.make_bucket("orion")
    return emulators[kind]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with OrionServer(tmp_path_factory.mktemp("storage-server"), SCHEDULER_ENABLED="false") as s:
        yield s


def saved(orion, block, prefix):
    """Save ``block`` under a fresh name; returns its ``slug/name``."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    block.save(name, client=orion)
    return f"{block.get_block_type_slug()}/{name}"


def objects(store, folder):
    """The object names under ``orion/<folder>`` in the store, as the test user sees them."""
    block = store.block("orion")
    fs = block.filesystem
    fs.invalidate_cache()
    found = fs.find(f"{block.basepath}/{folder}")
    return sorted(p.split(f"orion/{folder}/", 1)[1] for p in found)


RESULTS_FLOW = """
import json
import sys

from client.sdk.flows import flow
from client.sdk.results import load_result
from client.sdk.tasks import task

BLOCK = sys.argv[1]


@task(persist_result=True)
def double(x):
    return x * 2


@flow(persist_result=True, result_storage=BLOCK)
def stored(n):
    return {"payload": "x" * n, "doubled": double(n)}


state = stored(300_000, return_state=True)
print("STATE", json.dumps({"type": state.type, "message": state.message, "data": state.data}))
if state.type == "COMPLETED":
    value = load_result(state.data)
    print("VALUE", len(value["payload"]), value["doubled"])
"""


def run_flow(tmp_path, server, store, block):
    """Run RESULTS_FLOW on ``block``; returns (its final state as a dict, its output)."""
    env = orion_env(tmp_path / "home", ORION_API_URL=server.api_url, **store.env)
    _, out = run_script(tmp_path, "stored", RESULTS_FLOW.replace("sys.argv[1]", repr(block)), env)
    lines = [line for line in out.splitlines() if line.startswith("STATE ")]
    assert lines, out
    return json.loads(lines[-1].removeprefix("STATE ")), out


@each_store
def test_a_flow_persists_its_results_in_the_store_and_reads_them_back(
    store, server, orion, tmp_path
):
    folder = f"results-{uuid.uuid4().hex[:6]}"
    block = saved(orion, store.block(f"orion/{folder}"), "results")
    state, out = run_flow(tmp_path, server, store, block)
    assert state["type"] == "COMPLETED", out
    assert "VALUE 300000 600000" in out
    reference = state["data"]
    assert reference["storage_block_id"] and reference["key"]
    # Both results (the task's and the flow's) are objects in the bucket, nothing else.
    keys = objects(store, folder)
    assert reference["key"] in keys and len(keys) == 2
    # Read back here too, through the block document the reference names.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ORION_API_URL", server.api_url)
        assert load_result(reference)["payload"] == "x" * 300_000


FLOW_CODE = """
from client.sdk.flows import flow


@flow(persist_result=True, result_storage={block!r})
def shipped(x: int = 1):
    with open("data.txt") as handle:
        return {{"x": x, "data": handle.read()}}
"""


def build(server, store, cwd, *args):
    done = subprocess.run(
        [ORION, "deployment", "build", *args],
        env=orion_env(cwd / "home", ORION_API_URL=server.api_url, **store.env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


class StoreAgents(Agents):
    def __init__(self, server, tmp_path, store):
        super().__init__(server, tmp_path)
        self.store = store

    def env(self, **extra):
        return super().env(**self.store.env, **extra)


def run_deployment(orion, agents, deployment, queue, x):
    [run_id] = due_runs(orion, deployment, 1, parameters={"x": x})
    wait_for(
        lambda: orion.read_flow_run(run_id).state_type in ("COMPLETED", "FAILED", "CRASHED"),
        90,
        "the run",
    )
    return orion.read_flow_run(run_id)


@each_store
def test_a_deployment_whose_code_is_in_the_store_runs_on_an_agent(store, server, orion, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    results = saved(orion, store.block(f"orion/results-{suffix}"), "results")
    code_block = saved(orion, store.block(f"orion/code-{suffix}"), "code")
    code = tmp_path / "code"

    def write_code(data):
        code.mkdir(exist_ok=True)
        (code / "shipped.py").write_text(FLOW_CODE.format(block=results))
        (code / "data.txt").write_text(data)

    queue = f"store-{suffix}"
    args = [f"{code / 'shipped.py'}:shipped", "-n", "in-store", "-q", queue]
    write_code("first")
    status, out = build(server, store, tmp_path, *args, "--storage-block", f"{code_block}/v1")
    assert status == 0, out
    assert f"Uploaded 2 file(s) through block {code_block}/v1" in out
    assert objects(store, f"code-{suffix}") == ["v1/data.txt", "v1/shipped.py"]
    deployment = orion.read_deployment_by_name("shipped/in-store")
    shutil.rmtree(code)  # the agent can only have the code from the store

    agents = StoreAgents(server, tmp_path, store)
    try:
        agents.start("-q", queue)
        run = run_deployment(orion, agents, deployment, queue, 5)
        assert run.state_type == "COMPLETED", (
            run.state.message,
            agents.output(agents.processes[0]),
        )
        with pytest.MonkeyPatch.context() as env:
            env.setenv("ORION_API_URL", server.api_url)
            assert load_result(run.state.data) == {"x": 5, "data": "first"}

            # A changed file is uploaded again; the next run downloads it, not a stale copy.
            write_code("second")
            status, out = build(
                server, store, tmp_path, *args, "--storage-block", f"{code_block}/v1"
            )
            assert status == 0, out
            run = run_deployment(orion, agents, deployment, queue, 6)
            assert run.state_type == "COMPLETED", run.state.message
            assert load_result(run.state.data) == {"x": 6, "data": "second"}
    finally:
        agents.kill_all()


def closed_port_url():
    """An http URL on which nothing listens (a port of this worker, not bound)."""
    return f"http://127.0.0.1:{free_port()}"


def unreachable(store, block_path, endpoint):
    """A block of ``store`` for ``block_path`` whose store is at ``endpoint`` (an http URL),
    and the environment variables that point there (GCS's endpoint is not a block field)."""
    if store.kind == "s3":
        return store.block(block_path, endpoint_url=endpoint), {}
    if store.kind == "azure":
        wrong = store.connection_string(endpoint=endpoint)
        return store.block(block_path, azure_storage_connection_string=wrong), {}
    if store.kind == "smb":
        return store.block(block_path, smb_port=int(endpoint.rpartition(":")[2])), {}
    return store.block(block_path), {"STORAGE_EMULATOR_HOST": endpoint}


def failing_block(store, failure, folder, silent):
    """A block of ``store`` that fails as ``failure`` says (see EXPECTED_ERRORS), and the
    environment variables the run needs for it; ``silent``: a SilentListener."""
    path = f"orion/{folder}"
    if failure == "missing bucket":
        return store.block(f"no-such-bucket-{uuid.uuid4().hex[:6]}/x"), {}
    if failure == "wrong credentials" and store.kind == "s3":
        return store.block(path, aws_secret_access_key="not-the-secret"), {}
    if failure == "wrong credentials" and store.kind == "smb":
        return store.block(path, smb_password="not-the-password"), {}
    if failure == "wrong credentials":
        wrong = store.connection_string(AZURITE_KEY[:-8] + "AAAAAA==")
        return store.block(path, azure_storage_connection_string=wrong), {}
    if failure == "silent":
        return unreachable(store, path, silent.endpoint)
    return unreachable(store, path, closed_port_url())


@pytest.mark.parametrize("store, failure", FAILURES, indirect=["store"])
def test_a_store_that_fails_fails_the_run_naming_the_block_and_leaves_nothing(
    store, server, orion, tmp_path, failure
):
    folder = f"failing-{uuid.uuid4().hex[:6]}"
    with SilentListener() as silent:
        block, env = failing_block(store, failure, folder, silent)
        name = saved(orion, block, "failing")
        started = time.monotonic()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(store, "env", {**store.env, **env})
            state, out = run_flow(tmp_path, server, store, name)
        took = time.monotonic() - started
    assert state["type"] == "FAILED", out
    message = state["message"]
    assert f"storage block {name}: " in message, message
    assert EXPECTED_ERRORS[store.kind][failure] in message, message
    # A store that does not answer is given up on within the blocks' bound (one write: the
    # task's result), plus the run's own start.
    assert took < 45, took
    assert objects(store, folder) == []  # not a byte written


# How each store's driver names a refused connection, as the agent reports it.
REFUSED = {
    "s3": "EndpointConnectionError",
    "gcs": "ClientConnectorError",
    "azure": "ServiceRequestError",
    "smb": "ValueError",
}


@each_store
def test_an_agent_whose_code_store_does_not_answer_fails_the_run_naming_the_block(
    store, server, orion, tmp_path
):
    """The agent's side of a store that does not answer (a refused connection)."""
    suffix = uuid.uuid4().hex[:6]
    results = saved(orion, store.block(f"orion/results-{suffix}"), "results")
    name = f"code-{suffix}"
    store.block(f"orion/{name}").save(name, client=orion)
    slug = store.block("orion").get_block_type_slug()
    code = tmp_path / "code"
    code.mkdir()
    (code / "shipped.py").write_text(FLOW_CODE.format(block=results))
    (code / "data.txt").write_text("first")
    queue = f"dead-{suffix}"
    status, out = build(
        server,
        store,
        tmp_path,
        f"{code / 'shipped.py'}:shipped",
        "-n",
        "dead-store",
        "-q",
        queue,
        "--storage-block",
        f"{slug}/{name}",
    )
    assert status == 0, out
    block, env = unreachable(store, f"orion/{name}", closed_port_url())
    block.save(name, client=orion, overwrite=True)
    deployment = orion.read_deployment_by_name("shipped/dead-store")
    agents = StoreAgents(server, tmp_path, store)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(store, "env", {**store.env, **env})
            agents.start("-q", queue)
        started = time.monotonic()
        run = run_deployment(orion, agents, deployment, queue, 1)
        took = time.monotonic() - started
    finally:
        agents.kill_all()
    assert run.state_type == "FAILED"
    assert run.state.message.startswith(
        f"Could not fetch the flow's code through block {slug}/{name}: {REFUSED[store.kind]}"
    ), run.state.message
    assert took < 45, took


@pytest.mark.parametrize("store", ["s3", "azure"], indirect=True)
def test_credentials_come_from_the_environment_when_the_block_has_none(
    store, server, orion, tmp_path
):
    folder = f"from-env-{uuid.uuid4().hex[:6]}"
    if store.kind == "s3":
        block = S3(bucket_path=f"orion/{folder}")
        env = {
            "AWS_ACCESS_KEY_ID": store.key,
            "AWS_SECRET_ACCESS_KEY": store.secret,
            "AWS_ENDPOINT_URL": store.endpoint,
        }
    else:
        block = Azure(bucket_path=f"orion/{folder}")
        env = {"AZURE_STORAGE_CONNECTION_STRING": store.connection_string()}
    name = saved(orion, block, "from-env")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "env", {**store.env, **env})
        state, out = run_flow(tmp_path, server, store, name)
    assert state["type"] == "COMPLETED", out
    assert len(objects(store, folder)) == 2
    # Without them the same block is refused: the credentials did come from the environment.
    # (S3 keeps its endpoint, so nothing tries to reach AWS.)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            store, "env", {**store.env, **{k: v for k, v in env.items() if "ENDPOINT" in k}}
        )
        state, out = run_flow(tmp_path, server, store, name)
    assert state["type"] == "FAILED" and f"storage block {name}: " in state["message"], out
