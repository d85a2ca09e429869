"""Block document encryption: where the key comes from, the fingerprint check at start,
``orion block rotate-key``, and secrets kept out of responses and logs."""

import logging
import os
import stat
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.cli import server_cli
from app.exceptions import EncryptionKeyMismatch, OrionError
from app.models import BlockDocument, EncryptionKey
from app.services import block_crypto
from tests.api.test_blocks import make_document, make_schema, make_type


@pytest.fixture
def document(client):
    """A document of a type whose ``token`` is secret, with token "s3cr3t"."""
    return make_document(client, make_schema(client, make_type(client)))


def read_secret(client, document):
    return client.get(
        f"/api/block_documents/{document['id']}", query_string={"include_secrets": True}
    ).get_json()["data"]["token"]


def test_key_file_is_generated_once_with_mode_0600(tmp_path):
    config = {"HOME": str(tmp_path / "home"), "ENCRYPTION_KEY": None}
    key = block_crypto.load_key(config)
    path = block_crypto.key_file_path(config["HOME"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert block_crypto.load_key(config) == key
    Fernet(key)


def test_setting_wins_over_the_key_file_and_a_bad_key_is_refused(tmp_path):
    chosen = Fernet.generate_key()
    config = {"HOME": str(tmp_path), "ENCRYPTION_KEY": chosen.decode()}
    assert block_crypto.load_key(config) == chosen
    assert not os.path.exists(block_crypto.key_file_path(str(tmp_path)))
    with pytest.raises(OrionError, match="ORION_ENCRYPTION_KEY is not a Fernet key"):
        block_crypto.load_key({**config, "ENCRYPTION_KEY": "not-a-key"})


def test_database_keeps_only_the_fingerprint(client, document, app):
    key = block_crypto.load_key(app.config)
    rows = list(EncryptionKey.select())
    assert [r.fingerprint for r in rows] == [block_crypto.fingerprint(key)]
    assert key.decode() not in rows[0].fingerprint


def test_server_with_another_key_refuses_to_start(client, document, make_app):
    with pytest.raises(EncryptionKeyMismatch, match="not the key the database"):
        make_app(ENCRYPTION_KEY=Fernet.generate_key().decode())


def test_rotate_key_reencrypts_every_document(client, document, app):
    home_key_file = block_crypto.key_file_path(app.config["HOME"])
    old_key = Path(home_key_file).read_bytes().strip()
    old_raw = BlockDocument.get_by_id(uuid.UUID(document["id"])).data
    with app.app_context():
        result = app.test_cli_runner().invoke(server_cli, ["block", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 block document(s)" in result.output
    new_key = Path(home_key_file).read_bytes().strip()
    assert new_key != old_key
    assert stat.S_IMODE(os.stat(home_key_file).st_mode) == 0o600
    raw = BlockDocument.get_by_id(uuid.UUID(document["id"])).data
    assert raw != old_raw and "s3cr3t" not in raw
    assert Fernet(new_key).decrypt(raw.encode())
    assert EncryptionKey.get().fingerprint == block_crypto.fingerprint(new_key)
    assert read_secret(client, document) == "s3cr3t"
    # A server still holding the old key says so instead of failing obscurely.
    block_crypto.configure(old_key)
    try:
        response = client.get(f"/api/block_documents/{document['id']}")
        assert response.status_code == 503
        assert "rotated" in response.get_json()["detail"]
    finally:
        block_crypto.configure(new_key)


def test_rotate_key_with_the_setting_needs_the_new_key(client, document, make_app, request):
    first = Fernet.generate_key()
    second = Fernet.generate_key()
    # The database's fingerprint is the shared app's key; start over with ``first``.
    EncryptionKey.delete().execute()
    BlockDocument.delete().execute()
    other = make_app(ENCRYPTION_KEY=first.decode())
    runner = other.test_cli_runner()
    context = other.app_context()
    context.push()
    request.addfinalizer(context.pop)
    refused = runner.invoke(server_cli, ["block", "rotate-key"])
    assert refused.exit_code != 0 and "--new-key" in refused.output
    with other.test_client() as other_client:
        doc = make_document(
            other_client, make_schema(other_client, make_type(other_client, "other"))
        )
        result = runner.invoke(server_cli, ["block", "rotate-key", "--new-key", second.decode()])
        assert result.exit_code == 0, result.output
        assert read_secret(other_client, doc) == "s3cr3t"
    assert EncryptionKey.get().fingerprint == block_crypto.fingerprint(second)
    bad = runner.invoke(server_cli, ["block", "rotate-key", "--new-key", "nope"])
    assert bad.exit_code != 0 and "not a Fernet key" in bad.output
    assert "nope" not in bad.output.replace("--new-key", "")


def test_secrets_stay_out_of_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    schema = make_schema(client, make_type(client))
    document = make_document(client, schema)
    client.post(
        "/api/block_documents/",
        json={
            "name": "main",
            "block_schema_id": schema["id"],
            "block_type_id": schema["block_type_id"],
            "data": {"url": "u", "token": "s3cr3t"},
        },
    )
    client.patch(f"/api/block_documents/{document['id']}", json={"data": {"port": "s3cr3t"}})
    client.get(f"/api/block_documents/{document['id']}")
    assert "s3cr3t" not in caplog.text
