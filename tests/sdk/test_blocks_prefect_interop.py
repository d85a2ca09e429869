"""Blocks saved by our SDK load in the real Prefect 2.7.12 client and the other way round,
through a real ``orion start`` (SQLite and PostgreSQL).

Prefect 2.7.12 runs from the venv the compatibility tests use (``.venv-prefect-2.7``, built
by ``scripts/test``, or the one ``ORION_TEST_PREFECT_2_7`` names); a missing venv fails the
test. The permanent real-client suite lives with the compatibility tests; this one checks the
SDK's side of the contract.
"""

import datetime
import json
import os
import subprocess
import textwrap
import uuid

import pytest

from client import OrionClient
from client.api.settings import Settings
from client.blocks import JSON, Block, DateTime, LocalFileSystem, RemoteFileSystem, Secret, String
from client.infrastructure import Process
from tests.compat.conftest import prefect_venv
from tests.support import OrionServer, isolated_database_url

PREFECT_SIDE = """
import json, sys
from prefect.blocks.core import Block
from prefect.blocks.system import JSON, DateTime, Secret, String
from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect.infrastructure import Process

suffix = sys.argv[1]
loaded = {}
for slug in ("secret", "json", "string", "date-time", "local-file-system",
             "remote-file-system", "process"):
    block = Block.load(f"{slug}/ours-{suffix}")
    data = block.dict()
    if slug == "secret":
        data = {"value": block.get(), "printed": str(block)}
    loaded[slug] = json.loads(json.dumps(data, default=str))
Secret(value="from-prefect").save(f"theirs-{suffix}")
JSON(value={"k": [1, 2]}).save(f"theirs-{suffix}")
LocalFileSystem(basepath="/prefect/base").save(f"theirs-{suffix}")
Process(env={"P": "1"}).save(f"theirs-{suffix}")
print(json.dumps(loaded))
"""


@pytest.fixture(scope="module")
def server(backend, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp(f"interop-{backend}")
    orion = OrionServer(
        tmp_path,
        database_url=isolated_database_url(backend, tmp_path, "interop_server"),
        SCHEDULER_ENABLED="false",
    )
    try:
        orion.start()
        yield orion
    finally:
        orion.stop()


def test_blocks_cross_between_our_sdk_and_prefect_2_7_12(server, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    when = datetime.datetime(2026, 12, 4, 17, 30, tzinfo=datetime.UTC)
    with OrionClient(server.api_url, settings=Settings(api_retries=2)) as orion:
        ours = [
            Secret(value="from-orion"),
            JSON(value={"a": [1, None]}),
            String(value="s"),
            DateTime(value=when),
            LocalFileSystem(basepath="/orion/base"),
            RemoteFileSystem(basepath="memory://b/x", settings={"k": "v"}),
            Process(env={"O": "1"}, stream_output=False),
        ]
        for block in ours:
            block.save(f"ours-{suffix}", client=orion)
        schemas_before = len(orion.read_block_schemas())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORION_", "PREFECT_"))}
        env.update(PREFECT_API_URL=server.api_url, PREFECT_HOME=str(tmp_path / "prefect"))
        done = subprocess.run(
            [prefect_venv("2.7") / "bin" / "python", "-c", textwrap.dedent(PREFECT_SIDE), suffix],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        loaded = json.loads(done.stdout.strip().splitlines()[-1])
        assert loaded["secret"]["value"] == "from-orion"
        assert "from-orion" not in loaded["secret"]["printed"]
        assert loaded["json"]["value"] == {"a": [1, None]}
        assert loaded["string"]["value"] == "s"
        assert loaded["date-time"]["value"].startswith("2026-12-04")
        assert loaded["local-file-system"]["basepath"] == "/orion/base"
        assert loaded["remote-file-system"]["settings"] == {"k": "v"}
        assert loaded["process"]["env"] == {"O": "1"}
        assert loaded["process"]["stream_output"] is False
        # Prefect found our schemas by checksum: it registered none of its own.
        assert len(orion.read_block_schemas()) == schemas_before

        assert Secret.load(f"theirs-{suffix}", client=orion).get() == "from-prefect"
        assert JSON.load(f"theirs-{suffix}", client=orion).value == {"k": [1, 2]}
        assert (
            Block.load(f"local-file-system/theirs-{suffix}", client=orion).basepath
            == "/prefect/base"
        )
        process = Block.load(f"process/theirs-{suffix}", client=orion)
        assert isinstance(process, Process) and process.env == {"P": "1"}
