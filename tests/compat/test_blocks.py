"""Prefect's blocks against Orion: ``prefect block register`` of a block type with a secret
field, ``Secret`` and that type's documents saved by one process and loaded by another, and
``prefect block ls``; the server's side is read through its API."""

import pytest

from tests.compat.conftest import ok

BLOCKS = '''
from typing import Optional

from pydantic.v1 import SecretStr  # Prefect 2 blocks are pydantic v1 models, even on pydantic 2

from prefect.blocks.core import Block


class CompatConnection(Block):
    """A connection to somewhere, with a token that must stay secret."""

    _block_type_name = "Compat Connection {tag}"

    url: str
    token: SecretStr
    retries: Optional[int] = None
'''

SAVE = """
import sys

from prefect.blocks.system import Secret

from blocks import CompatConnection

tag = sys.argv[1]
Secret(value=f"s3cr3t-{tag}").save(f"secret-{tag}")
CompatConnection(url="https://example.org", token=f"t0ken-{tag}", retries=3).save(f"conn-{tag}")
"""

LOAD = """
import sys

from prefect.blocks.system import Secret

from blocks import CompatConnection

tag = sys.argv[1]
print("SECRET=" + Secret.load(f"secret-{tag}").get())
connection = CompatConnection.load(f"conn-{tag}")
print("TOKEN=" + connection.token.get_secret_value())
print(f"URL={connection.url} RETRIES={connection.retries}")
"""


@pytest.fixture(scope="module")
def blocks(prefect):
    """The block type's file, registered with ``prefect block register -f``; returns the
    registered type's slug."""
    path = prefect.workdir / "blocks.py"
    path.write_text(BLOCKS.format(tag=prefect.tag))
    output = prefect.run("block", "register", "-f", str(path))
    assert "Successfully registered 1 block" in output, output
    return f"compat-connection-{prefect.tag}"


@pytest.fixture(scope="module")
def saved(prefect, blocks):
    """A Secret and a CompatConnection saved by one client process."""
    prefect.script(SAVE, prefect.tag, cwd=prefect.workdir)


def obfuscated(value):
    """Whether ``value`` is an obfuscated secret: stars only (Prefect 2.7 sends eight)."""
    return isinstance(value, str) and len(value) >= 8 and set(value) == {"*"}


def test_block_register_creates_the_type_and_its_schema(blocks, api, prefect):
    block_type = ok(api.get(f"block_types/slug/{blocks}"))
    assert block_type["name"] == f"Compat Connection {prefect.tag}"
    assert block_type["is_protected"] is False
    [schema] = ok(
        api.post(
            "block_schemas/filter",
            json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}},
        )
    )
    assert set(schema["fields"]["properties"]) == {"url", "token", "retries"}
    assert schema["fields"]["secret_fields"] == ["token"]
    assert schema["fields"]["required"] == ["url", "token"]


def test_secret_is_obfuscated_on_read_unless_asked_for(saved, api, prefect):
    path = f"block_types/slug/secret/block_documents/name/secret-{prefect.tag}"
    assert obfuscated(ok(api.get(path))["data"]["value"])
    revealed = ok(api.get(path, params={"include_secrets": "true"}))
    assert revealed["data"] == {"value": f"s3cr3t-{prefect.tag}"}
    assert revealed["block_type"]["is_protected"] is True
    conn = ok(
        api.get(
            f"block_types/slug/compat-connection-{prefect.tag}/block_documents/name/"
            f"conn-{prefect.tag}"
        )
    )
    assert obfuscated(conn["data"].pop("token"))
    assert conn["data"] == {"url": "https://example.org", "retries": 3}


def test_saved_blocks_load_in_another_process(saved, prefect):
    output = prefect.script(LOAD, prefect.tag, cwd=prefect.workdir)
    assert f"SECRET=s3cr3t-{prefect.tag}" in output.splitlines()
    assert f"TOKEN=t0ken-{prefect.tag}" in output.splitlines()
    assert "URL=https://example.org RETRIES=3" in output.splitlines()


def test_block_ls_lists_what_the_server_has(saved, api, prefect):
    documents = ok(
        api.post(
            "block_documents/filter", json={"block_documents": {"is_anonymous": {"eq_": False}}}
        )
    )
    ours = {
        f"{d['block_type']['slug']}/{d['name']}"
        for d in documents
        if d["name"].endswith(prefect.tag)
    }
    assert ours == {
        f"secret/secret-{prefect.tag}",
        f"compat-connection-{prefect.tag}/conn-{prefect.tag}",
    }
    # Wide enough that rich prints every slug whole.
    output = prefect.run("block", "ls", COLUMNS=400)
    for slug in ours:
        assert slug in output, output


K8S_SAVE = """
import sys

from prefect.blocks.kubernetes import KubernetesClusterConfig
from prefect.infrastructure import KubernetesJob

tag = sys.argv[1]
config = {"apiVersion": "v1", "kind": "Config", "current-context": "kind",
          "clusters": [{"name": "kind", "cluster": {"server": "https://127.0.0.1:6443"}}],
          "contexts": [{"name": "kind", "context": {"cluster": "kind", "user": "me"}}],
          "users": [{"name": "me", "user": {"token": "t"}}]}
KubernetesJob(
    image="registry.local/flows:3",
    namespace="flows",
    labels={"team": "data"},
    finished_job_ttl=120,
    pod_watch_timeout_seconds=30,
    image_pull_policy="Never",
    customizations=[{"op": "add", "path": "/spec/template/spec/containers/0/resources",
                     "value": {"limits": {"memory": "256Mi"}}}],
    cluster_config=KubernetesClusterConfig(config=config, context_name="kind"),
).save(f"k8s-{tag}")
"""


def test_a_kubernetes_job_saved_by_prefect_loads_and_makes_a_valid_job(prefect):
    """Prefect's own ``KubernetesJob`` (and its cluster config) saved through Orion: this
    client loads it with every field, and its Job manifest validates (Kubernetes 1.37)."""
    import kubernetes_validate

    from client.api.client import OrionClient
    from client.infrastructure.kubernetes import KubernetesJob

    prefect.script(K8S_SAVE, prefect.tag, cwd=prefect.workdir)
    with OrionClient(prefect.api_url) as client:
        job = KubernetesJob.load(f"k8s-{prefect.tag}", client=client)
    assert job.image == "registry.local/flows:3" and job.namespace == "flows"
    assert job.finished_job_ttl == 120 and job.pod_watch_timeout_seconds == 30
    assert job.cluster_config.context_name == "kind"
    manifest = job.build_job("5f0c6a4e-2d3b-4f59-9d43-0c2b7c0e5a11")
    kubernetes_validate.validate(manifest, "1.37.0", strict=True)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"memory": "256Mi"}}
    assert container["imagePullPolicy"] == "Never"
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 120
