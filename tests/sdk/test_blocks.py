"""The SDK's blocks against the real app (both backends): schemas as Prefect 2.7.12 writes
them, save/load of every built-in block, secrets that never print, nested blocks, and results
stored through blocks."""

import datetime
import enum
import json
import logging
import os
import uuid

import pytest
from pydantic import BaseModel, Field, SecretStr

from client import flow, task
from client.blocks import (
    GCS,
    JSON,
    S3,
    SMB,
    Azure,
    Block,
    BlockLoadError,
    DateTime,
    LocalFileSystem,
    RemoteFileSystem,
    Secret,
    String,
)
from client.blocks.core import InvalidBlockRegistration, schema_checksum
from client.infrastructure import (
    DockerContainer,
    DockerRegistry,
    KubernetesClusterConfig,
    KubernetesJob,
    Process,
)
from client.sdk.results import load_result

SYSTEM_BLOCKS = os.path.join(
    os.path.dirname(__file__), "..", "..", "app", "data", "system_blocks.json"
)
OURS = [
    LocalFileSystem,
    RemoteFileSystem,
    GCS,
    Azure,
    SMB,
    Secret,
    JSON,
    String,
    DateTime,
    Process,
    DockerContainer,
    DockerRegistry,
    KubernetesJob,
    KubernetesClusterConfig,
]


class Safe(Block):
    """A made-up service with a secret and a nested block.

    Args:
        url: where it is
    """

    url: str
    token: SecretStr = Field(description="The token.")
    storage: LocalFileSystem | None = None
    password: Secret | None = None


class NoSecrets(Block):
    value: int = 1


@pytest.fixture
def system(orion):
    """The server's system block types, registered as at its start."""
    orion.request("POST", "block_types/install_system_block_types")
    return orion


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("cls", OURS, ids=lambda c: c.get_block_type_slug())
def test_built_in_schemas_are_prefect_2_7_12s(cls):
    with open(SYSTEM_BLOCKS) as handle:
        entries = {e["block_type"]["slug"]: e for e in json.load(handle)}
    expected = entries[cls.get_block_type_slug()]
    assert cls.model_json_schema_v1() == expected["block_schema"]["fields"]
    assert cls.schema_checksum() == expected["block_schema"]["checksum"]
    assert sorted(cls.get_block_capabilities()) == sorted(expected["block_schema"]["capabilities"])
    assert cls.get_block_schema_version() == expected["block_schema"]["version"]
    assert cls.get_block_type_name() == expected["block_type"]["name"]


def test_s3_is_prefect_2_7_12s_s3_plus_an_endpoint_url():
    """Its own schema (one more field, so another checksum), the same type: documents
    either side saves load on the other (tests/compat/test_s3_storage.py)."""
    with open(SYSTEM_BLOCKS) as handle:
        [expected] = [e for e in json.load(handle) if e["block_type"]["slug"] == "s3"]
    fields = S3.model_json_schema_v1()
    endpoint = fields["properties"].pop("endpoint_url")
    assert endpoint["type"] == "string" and "endpoint_url" not in fields["required"]
    assert fields == expected["block_schema"]["fields"]
    assert S3._block_type_body() == {
        k: v for k, v in expected["block_type"].items() if k != "is_protected"
    }
    assert sorted(S3.get_block_capabilities()) == expected["block_schema"]["capabilities"]


def test_a_block_schema_has_prefects_block_keys():
    fields = Safe.model_json_schema_v1()
    assert fields["block_type_slug"] == "safe"
    assert fields["description"] == "A made-up service with a secret and a nested block."
    assert fields["secret_fields"] == ["token", "password.value"]
    assert fields["block_schema_references"] == {
        "storage": {
            "block_type_slug": "local-file-system",
            "block_schema_checksum": LocalFileSystem.schema_checksum(),
        },
        "password": {
            "block_type_slug": "secret",
            "block_schema_checksum": Secret.schema_checksum(),
        },
    }
    assert fields["properties"]["storage"] == {"$ref": "#/definitions/LocalFileSystem"}
    assert fields["properties"]["token"]["format"] == "password"
    # Nested blocks' definitions stay out of the checksum, as in Prefect.
    assert schema_checksum(fields) == schema_checksum(
        {k: v for k, v in fields.items() if k != "definitions"}
    )


class C(enum.Enum):
    A = "a"


class Inner(BaseModel):
    n: int = 1


class Mixed(Block):
    """Fields of every kind pydantic 1 and 2 describe differently.

    Args:
        url: where it is
    """

    url: str
    storage: LocalFileSystem | None = None
    password: Secret | None = None
    inner: Inner = Inner()
    inner2: Inner | None = None
    c: C = C.A
    lst: list = []  # noqa: RUF012 (a pydantic field: each instance gets a copy)


def test_a_custom_blocks_checksum_is_the_one_prefect_2_7_12_computes():
    # Prefect 2.7.12 (pydantic 1) computed this for the same class, named "Vault".
    class Vault(Mixed):
        """A made-up service with a secret and a nested block.

        Args:
            url: where it is
        """

    assert (
        Vault.schema_checksum()
        == "sha256:f754c90af06a262ae63d21e9a79aea162f61000d8a78cab355ae3041842dad7a"
    )
    fields = Vault.model_json_schema_v1()
    assert fields["properties"]["inner"] == {
        "title": "Inner",
        "default": {"n": 1},
        "allOf": [{"$ref": "#/definitions/Inner"}],
    }
    assert fields["properties"]["c"] == {"default": "a", "allOf": [{"$ref": "#/definitions/C"}]}
    assert fields["definitions"]["C"] == {
        "title": "C",
        "description": "An enumeration.",
        "enum": ["a"],
    }


@pytest.mark.parametrize(
    "block, check",
    [
        (Secret(value="hunter2"), lambda b: b.get() == "hunter2"),
        (JSON(value={"a": [1, 2, {"b": None}]}), lambda b: b.value == {"a": [1, 2, {"b": None}]}),
        (String(value="hello"), lambda b: b.value == "hello"),
        (
            DateTime(value=datetime.datetime(2026, 12, 4, 17, 0, tzinfo=datetime.UTC)),
            lambda b: b.value == datetime.datetime(2026, 12, 4, 17, 0, tzinfo=datetime.UTC),
        ),
        (LocalFileSystem(basepath="/srv/shared"), lambda b: b.basepath == "/srv/shared"),
        (
            RemoteFileSystem(basepath="memory://bucket/x", settings={"skip_instance_cache": True}),
            lambda b: (
                b.basepath == "memory://bucket/x" and b.settings == {"skip_instance_cache": True}
            ),
        ),
        (
            Process(env={"A": "1"}, stream_output=False),
            lambda b: b.env == {"A": "1"} and b.stream_output is False and b.type == "process",
        ),
        (
            DockerContainer(
                image="flows:1",
                image_pull_policy="NEVER",
                image_registry=DockerRegistry(
                    username="u", password="pw", registry_url="registry.example"
                ),
                labels={"example.com/team": "data"},
                mem_limit="256m",
                volumes=["/srv:/srv"],
            ),
            lambda b: (
                b.image == "flows:1"
                and b.image_pull_policy.value == "NEVER"
                and b.image_registry.password.get_secret_value() == "pw"
                and b.labels == {"com.example.team": "data"}
                and b.mem_limit == "256m"
                and b.volumes == ["/srv:/srv"]
            ),
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Block) else "",
)
def test_each_built_in_block_saves_and_loads(system, block, check):
    name = unique("b")
    document_id = block.save(name)
    slug = block.get_block_type_slug()
    by_class = type(block).load(name)
    by_slug = Block.load(f"{slug}/{name}")
    for loaded in (by_class, by_slug):
        assert type(loaded) is type(block) and check(loaded)
        assert loaded._block_document_id == document_id
    # It was saved under the system type and its 2.7.12 schema, not new ones.
    document = system.read_block_document(document_id)
    assert document.block_schema.checksum == type(block).schema_checksum()
    assert document.block_schema.version == "2.7.12"
    assert [
        s.id for s in system.read_block_schemas() if s.block_type_id == document.block_type_id
    ] == [document.block_schema_id]


def test_saving_a_taken_name_needs_overwrite(orion):
    name = unique("s")
    first = String(value="one").save(name)
    with pytest.raises(ValueError, match="already exists; save with overwrite=True"):
        String(value="two").save(name)
    assert String(value="two").save(name, overwrite=True) == first
    assert String.load(name).value == "two"


def test_loading_what_is_not_there_says_so(orion):
    with pytest.raises(BlockLoadError, match="No 'string' block document named 'nope'"):
        String.load("nope")
    with pytest.raises(BlockLoadError, match="not 'block-type-slug/name'"):
        Block.load("nope")


def test_abstract_blocks_cannot_be_registered(orion):
    from client.blocks import WritableFileSystem

    with pytest.raises(InvalidBlockRegistration):
        WritableFileSystem.register_type_and_schema()


def test_registration_is_idempotent(orion):
    first = NoSecrets.register_type_and_schema()
    assert NoSecrets.register_type_and_schema() == first
    assert orion.read_block_type_by_slug("no-secrets").name == "NoSecrets"


def test_secrets_never_print_and_are_obfuscated_on_read(orion, caplog):
    vault = Safe(url="https://vault", token="t0ps3cret", password=Secret(value="pa55"))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("vault: %s %r", vault, vault)
        document_id = vault.save(unique("v"))
    shown = [str(vault), repr(vault), vault.model_dump_json(), str(vault.model_dump()), caplog.text]
    for text in shown:
        assert "t0ps3cret" not in text and "pa55" not in text
    assert "**********" in str(vault)
    hidden = orion.read_block_document(document_id, include_secrets=False)
    assert hidden.data["token"] == "**********"
    assert hidden.data["password"]["value"] == "**********"
    loaded = Safe.load_by_id(document_id)
    assert loaded.token.get_secret_value() == "t0ps3cret" and loaded.password.get() == "pa55"
    assert "t0ps3cret" not in repr(loaded)


def test_nested_blocks_inline_or_by_reference(orion):
    inline = Safe(url="u", token="x", storage=LocalFileSystem(basepath="/a"))
    Safe.load_by_id(inline.save(unique("inline")))  # nested data saved in the document
    loaded = Safe.load_by_id(inline._block_document_id)
    assert isinstance(loaded.storage, LocalFileSystem) and loaded.storage.basepath == "/a"
    assert loaded.storage._block_document_id is None

    shared = LocalFileSystem(basepath="/shared")
    shared_id = shared.save(unique("shared"))
    referring = Safe(url="u", token="x", storage=shared)
    document = orion.read_block_document(referring.save(unique("ref")))
    assert document.block_document_references["storage"]["block_document"]["id"] == shared_id
    loaded = Safe.load_by_id(document.id)
    assert loaded.storage.basepath == "/shared"
    assert loaded.storage._block_document_id == shared_id
    # Changing the shared block changes what the referring one loads.
    LocalFileSystem(basepath="/moved").save(shared._block_document_name, overwrite=True)
    assert Safe.load_by_id(document.id).storage.basepath == "/moved"


def test_bad_block_data_is_refused_before_it_is_sent(orion):
    with pytest.raises(ValueError, match="basepath"):
        RemoteFileSystem(basepath="no-scheme")
    with pytest.raises(ValueError, match="process"):
        Process(type="docker")


def test_file_system_blocks_read_write_and_copy_folders(tmp_path):
    local = LocalFileSystem(basepath=str(tmp_path / "base"))
    local.write_path("a/b.txt", b"hi")
    assert local.read_path("a/b.txt") == b"hi"
    with pytest.raises(ValueError, match="outside of the base path"):
        local.read_path("../escape")
    source = tmp_path / "code"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "flow.py").write_text("x = 1")
    (source / "pkg" / "mod.py").write_text("y = 2")
    (source / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"")
    (source / "secret.env").write_text("no")
    (source / ".prefectignore").write_text("# comment\n*.env\n")
    remote = RemoteFileSystem(basepath=f"memory://{uuid.uuid4().hex}/flows")
    assert (
        remote.put_directory(str(source), "v1", ignore_file=str(source / ".prefectignore")) == 3
    )  # flow.py, pkg/mod.py, .prefectignore
    target = tmp_path / "fetched"
    remote.get_directory("v1", str(target))
    assert (target / "flow.py").read_text() == "x = 1"
    assert (target / "pkg" / "mod.py").read_text() == "y = 2"
    assert not (target / "secret.env").exists() and not (target / "pkg" / "__pycache__").exists()
    with pytest.raises(ValueError, match="outside of the base path"):
        remote.read_path("../x")


@pytest.mark.parametrize("how", ["block", "unsaved block", "slug/name", "url"])
def test_result_storage_by_block_string_or_url(system, tmp_path, how):
    folder = tmp_path / how.replace(" ", "-").replace("/", "-")
    storage = LocalFileSystem(basepath=str(folder))
    if how == "block":
        storage.save(unique("results"))
        option = storage
    elif how == "unsaved block":
        option = storage
    elif how == "slug/name":
        name = unique("results")
        storage.save(name)
        option = f"local-file-system/{name}"
    else:
        option = folder.as_uri()

    @task(persist_result=True, result_storage=option)
    def double(x):
        return 2 * x

    @flow(persist_result=True, result_storage=option)
    def doubling(x):
        return double(x)

    state = doubling(21, return_state=True)
    assert state.is_completed()
    [task_run] = system.read_task_runs(
        flow_run_filter={"id": {"any_": [state.state_details["flow_run_id"]]}}
    )
    for data in (state.data, task_run.state.data):
        assert load_result(data) == 42
        if how == "url":
            assert data["storage"] == folder.as_uri()
        else:
            assert "storage" not in data
            document = system.read_block_document(data["storage_block_id"])
            assert document.block_type.slug == "local-file-system"
            assert document.data["basepath"] == str(folder)
            assert document.is_anonymous is (how == "unsaved block")
    assert len(list(folder.iterdir())) == 2


def test_result_storage_must_be_a_file_system(orion):
    from client.sdk.results import ResultError, get_storage

    with pytest.raises(ResultError, match="must be a file system block"):
        get_storage(String(value="x"))
    with pytest.raises(ResultError, match="No 'local-file-system' block document named"):
        get_storage("local-file-system/missing-one")


def test_the_clients_block_methods(system):
    from client.api.exceptions import ObjectNotFound

    schema_id = NoSecrets.register_type_and_schema()
    block_type = system.read_block_type_by_slug("no-secrets")
    assert system.read_block_type(block_type.id).slug == "no-secrets"
    assert "no-secrets" in [t.slug for t in system.read_block_types()]
    system.update_block_type(block_type.id, {"description": "Changed.", "name": "ignored"})
    assert system.read_block_type(block_type.id).description == "Changed."
    assert system.read_block_schema_by_checksum(NoSecrets.schema_checksum()).id == schema_id

    document = system.create_block_document(
        {
            "name": "doc",
            "data": {"value": 1},
            "block_schema_id": schema_id,
            "block_type_id": block_type.id,
        }
    )
    system.update_block_document(document.id, {"value": 2})
    assert system.read_block_document(document.id).data == {"value": 2}
    assert [d.id for d in system.read_block_documents() if d.block_type_id == block_type.id] == [
        document.id
    ]
    system.delete_block_document(document.id)
    with pytest.raises(ObjectNotFound):
        system.read_block_document(document.id)
    system.delete_block_type(block_type.id)
    with pytest.raises(ObjectNotFound):
        system.read_block_type_by_slug("no-secrets")
