"""The key block document data is encrypted with at rest (Fernet), and its fingerprint.

Unlike Prefect 2, which keeps its Fernet key in the same database as the data, the key lives
outside the database: the ``ENCRYPTION_KEY`` setting (``ORION_ENCRYPTION_KEY``), else a key
file generated once in ``HOME`` (``block-encryption.key``, mode 0600). The database keeps
only the key's fingerprint (``encryption_key`` table). The first server to start on a
database records its key's fingerprint; a server whose key does not match refuses to start
(:func:`check_key`), so two processes with different keys never write documents the other
cannot read. Writes check the fingerprint again in their transaction (:func:`guard_write`),
which also re-records it on a database that was emptied since start.

:func:`configure` sets the process-wide key (``app.bind_process_state`` calls it), as the
database binding is process-wide. :func:`rotate_key` re-encrypts every document with a new
key in one transaction.
"""

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from app.db import database, for_update
from app.exceptions import EncryptionKeyMismatch, OrionError
from app.models import BlockDocument, EncryptionKey, utcnow

KEY_FILE_NAME = "block-encryption.key"
PURPOSE = "block_documents"

# The process's Fernet and its key's fingerprint (None until configure).
_state: dict[str, Any] = {"fernet": None, "fingerprint": None}


def key_file_path(home: str) -> str:
    """Where the generated key is kept under ``home``."""
    return os.path.join(home, KEY_FILE_NAME)


def load_key(config: Mapping[str, Any]) -> bytes:
    """The encryption key from the settings: ``ENCRYPTION_KEY``, else the key file in
    ``HOME``, generated (mode 0600) if missing. Raises OrionError for a malformed key."""
    key = config.get("ENCRYPTION_KEY")
    source = "ORION_ENCRYPTION_KEY"
    if not key:
        path = key_file_path(config["HOME"])
        source = path
        key = _read_or_create_key_file(path)
    return parse_key(key, source)


def parse_key(key: str | bytes, source: str) -> bytes:
    """``key`` (text or bytes) as Fernet key bytes; OrionError naming ``source`` (where the
    key came from, never the key) if it is not one."""
    key = key.strip().encode() if isinstance(key, str) else key.strip()
    try:
        Fernet(key)
    except ValueError:
        raise OrionError(
            f"The encryption key in {source} is not a Fernet key (32 url-safe "
            "base64-encoded bytes); generate one with `orion block "
            "generate-key`."
        ) from None
    return key


def generate_key() -> bytes:
    """A new random key."""
    return Fernet.generate_key()


def _read_or_create_key_file(path: str) -> bytes:
    """The key in ``path``, creating the file with a new key if it does not exist.

    Created with O_EXCL, so of two processes starting at once one writes the key and the
    other reads it.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, "rb") as f:
            return f.read()
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def write_key_file(path: str, key: bytes) -> None:
    """Replace the key file at ``path`` with ``key`` (mode 0600), atomically."""
    temporary = path + ".new"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    os.replace(temporary, path)


def fingerprint(key: bytes) -> str:
    """A public identifier of ``key``: a SHA-256 of it, which reveals nothing of the key."""
    return "sha256:" + hashlib.sha256(b"orion block encryption key\0" + key).hexdigest()


def configure(key: bytes) -> None:
    """Make ``key`` the process's encryption key."""
    _state["fernet"] = Fernet(key)
    _state["fingerprint"] = fingerprint(key)


def _mismatch(recorded: str) -> EncryptionKeyMismatch:
    return EncryptionKeyMismatch(
        f"This server's encryption key (fingerprint {_state['fingerprint'][:19]}...) is not "
        f"the key the database's block documents are encrypted with (fingerprint "
        f"{recorded[:19]}...). Start it with the same ORION_ENCRYPTION_KEY or key file "
        f"({KEY_FILE_NAME} in ORION_HOME) as the other servers of this database."
    )


def _record_or_compare() -> None:
    """Record the key's fingerprint if the database has none; raise if it has another."""
    (
        EncryptionKey.insert(
            purpose=PURPOSE, fingerprint=_state["fingerprint"], created=utcnow(), updated=utcnow()
        )
        .on_conflict_ignore()
        .execute()
    )
    recorded = (
        EncryptionKey.select(EncryptionKey.fingerprint)
        .where(EncryptionKey.purpose == PURPOSE)
        .scalar()
    )
    if recorded != _state["fingerprint"]:
        raise _mismatch(recorded)


def check_key() -> None:
    """At start: record this server's key fingerprint, or refuse a different one
    (EncryptionKeyMismatch)."""
    with database.atomic():
        _record_or_compare()


def guard_write() -> None:
    """Inside a write transaction: fail unless the database's fingerprint is this key's."""
    _record_or_compare()


def encrypt(data: Any) -> str:
    """The Fernet token (text) of the JSON of ``data``."""
    plain = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return _state["fernet"].encrypt(plain).decode()


def decrypt(token: str) -> Any:
    """The data a token of :func:`encrypt` holds; EncryptionKeyMismatch if this key did not
    write it (the key was rotated while this server ran)."""
    try:
        return json.loads(_state["fernet"].decrypt(token.encode()))
    except InvalidToken:
        raise EncryptionKeyMismatch(
            "A block document cannot be decrypted with this server's encryption key; the key "
            "was probably rotated. Restart the server with the current key."
        ) from None


def rotate_key(new_key: bytes) -> int:
    """Re-encrypt every block document with ``new_key`` and record its fingerprint, in one
    transaction; then make it the process's key. Returns how many documents were
    re-encrypted. The caller stores the new key (key file or setting) once this returns."""
    new = Fernet(new_key)
    with database.atomic():
        for_update(EncryptionKey.select().where(EncryptionKey.purpose == PURPOSE)).first()
        _record_or_compare()
        count = 0
        for document_id, token in for_update(
            BlockDocument.select(BlockDocument.id, BlockDocument.data)
        ).tuples():
            plain = _state["fernet"].decrypt(token.encode())
            (
                BlockDocument.update(data=new.encrypt(plain).decode())
                .where(BlockDocument.id == document_id)
                .execute()
            )
            count += 1
        (
            EncryptionKey.update(fingerprint=fingerprint(new_key), updated=utcnow())
            .where(EncryptionKey.purpose == PURPOSE)
            .execute()
        )
    configure(new_key)
    return count
