"""Results storage: task and flow return values written to a folder on any fsspec filesystem.

A persisted result is one file, ``<storage>/<key>``, holding the serialised value. The run's
state does not carry the value, only a **reference** to it, stored as the state's ``data``::

    {"type": "reference", "serializer": "pickle", "storage": "/home/me/.orion/storage",
     "key": "6f1c0c8e2b0e4c7f9a3d5e7b1c2d4f60"}

``storage`` is the storage URL as configured (a local path or any fsspec URL such as
``s3://bucket/results``, which works once that filesystem's fsspec driver is installed);
``key`` is the file name under it; ``serializer`` names how the bytes were made. Whoever holds
a reference (another flow run hitting the same cache key, for example) reads the value back
with :func:`load_result`.

Storage: ``result_storage=`` on a flow or task, else ``ORION_RESULTS_STORAGE``, else
``$ORION_HOME/storage`` (``ORION_HOME`` defaults to ``~/.orion``). ``result_storage`` may also
be a file system block (:mod:`client.blocks.filesystems`; an unsaved one is saved as an
anonymous document on first use) or a ``"block-type-slug/name"`` string naming a saved one
(``"local-file-system/shared"``; a string is read so only when its first part is a known
block type slug). Results written through a block are referenced by the block document's id
(``{"type": "reference", "storage_block_id": ..., "key": ...}``), so the block's settings and
secrets stay on the server. Serialisation is pickle by
default (any picklable value; readable only by Python, and only load results you trust), or
``"json"`` for JSON-compatible values. fsspec is imported on the first write or read, so
``import client`` stays fast.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import threading
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.blocks.core import Block

REFERENCE_TYPE = "reference"


class ResultError(Exception):
    """A result could not be serialised, written, read back or recognised."""


class PickleSerializer:
    """Values as pickle bytes (the default: any picklable Python value)."""

    name = "pickle"

    @staticmethod
    def dumps(value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data: bytes) -> Any:
        return pickle.loads(data)


class JSONSerializer:
    """Values as UTF-8 JSON (only JSON-compatible values; readable by any language)."""

    name = "json"

    @staticmethod
    def dumps(value: Any) -> bytes:
        return json.dumps(value).encode()

    @staticmethod
    def loads(data: bytes | str) -> Any:
        return json.loads(data)


SERIALIZERS = {s.name: s for s in (PickleSerializer, JSONSerializer)}


def get_serializer(name: str) -> type[PickleSerializer] | type[JSONSerializer]:
    """The serializer called ``name`` ("pickle" or "json"); ResultError for any other."""
    try:
        return SERIALIZERS[name]
    except KeyError:
        raise ResultError(
            f"Unknown result serializer {name!r}; use one of {sorted(SERIALIZERS)}"
        ) from None


def default_storage_url() -> str:
    """``ORION_RESULTS_STORAGE``, else ``$ORION_HOME/storage`` (read now, not at import)."""
    url = os.environ.get("ORION_RESULTS_STORAGE")
    if url:
        return url
    home = os.environ.get("ORION_HOME") or "~/.orion"
    return os.path.join(os.path.abspath(os.path.expanduser(home)), "storage")


class ResultStorage:
    """A folder on an fsspec filesystem where results are written, one file per result.

    ``url`` is a local path (``~`` expanded, made absolute) or an fsspec URL. The folder is
    created on the first write. Instances are cheap and safe to share between threads.
    """

    def __init__(self, url: str) -> None:
        if "://" not in url:
            url = os.path.abspath(os.path.expanduser(url))
        self.url = url.rstrip("/") or "/"
        self._fs = None
        self._root = ""  # set with _fs
        self._lock = threading.Lock()
        self._folder_made = False

    def __repr__(self) -> str:
        return f"ResultStorage({self.url!r})"

    def _filesystem(self) -> Any:
        if self._fs is None:
            with self._lock:
                if self._fs is None:
                    from fsspec.core import url_to_fs

                    self._fs, self._root = url_to_fs(self.url)
        return self._fs

    def _path(self, key: str) -> str:
        self._filesystem()
        return f"{self._root.rstrip('/')}/{key}"

    def write(self, key: str, data: bytes) -> None:
        """Write the bytes ``data`` as the file ``key``."""
        fs = self._filesystem()
        if not self._folder_made:
            fs.makedirs(self._root, exist_ok=True)
            self._folder_made = True
        fs.pipe_file(self._path(key), data)

    def read(self, key: str) -> bytes:
        """The bytes of the file ``key``; ResultError naming the file if it is missing."""
        fs = self._filesystem()
        try:
            return fs.cat_file(self._path(key))
        except FileNotFoundError:
            raise ResultError(f"Result {key!r} is missing from storage {self.url!r}") from None


class BlockResultStorage:
    """Results written through a saved file system block (``read_path``/``write_path``)."""

    def __init__(self, block: Block) -> None:
        self.block: Any = block  # a saved block with read_path and write_path
        self.block_document_id: str | None = block._block_document_id
        name = block._block_document_name
        slug = block.get_block_type_slug()
        self.url = (
            f"block {slug}/{name}"
            if name and not block._is_anonymous
            else f"{slug} block document {self.block_document_id}"
        )

    def __repr__(self) -> str:
        return f"BlockResultStorage({self.block!r})"

    def write(self, key: str, data: bytes) -> None:
        """Write ``data`` as ``key`` through the block; ResultError naming the block and
        what its store answered when that fails (the store keeps nothing half-written:
        see :class:`client.blocks.filesystems.ObjectStorage`)."""
        try:
            self.block.write_path(key, data)
        except Exception as error:  # whatever the block's file system raises
            raise ResultError(
                f"Could not write result {key!r} to storage {self.url}: "
                f"{type(error).__name__}: {error}"
            ) from error

    def read(self, key: str) -> bytes:
        """The bytes of ``key``; ResultError naming the block when missing or unreadable."""
        try:
            return self.block.read_path(key)
        except FileNotFoundError:
            raise ResultError(f"Result {key!r} is missing from storage {self.url}") from None
        except Exception as error:
            raise ResultError(
                f"Could not read result {key!r} from storage {self.url}: "
                f"{type(error).__name__}: {error}"
            ) from error


# What get_storage gives: a storage URL's, or a file system block's.
Storage = ResultStorage | BlockResultStorage
# Keyed by URL, or by ("block", document id or "slug/name").
_storages: dict[str | tuple[str, str | None], Storage] = {}
_storages_lock = threading.Lock()
_anonymous_save_lock = threading.Lock()
# "block-type-slug/name" (a block to load), told apart from relative paths by the slug.
_BLOCK_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*/[^/]+$")


def _block_storage(
    block: Block | None = None, name: str | None = None, document_id: str | None = None
) -> Storage:
    from client.blocks.core import Block, BlockLoadError

    if block is not None and block._block_document_id is not None:
        document_id = block._block_document_id
    key = ("block", document_id or name)
    storage = _storages.get(key) if key[1] else None
    if storage is not None:
        return storage
    try:
        if name is not None:
            block = Block.load(name)
        elif document_id is not None:
            block = Block.load_by_id(document_id)
    except BlockLoadError as error:
        raise ResultError(f"Result storage: {error}") from None
    if block is None:
        raise TypeError("_block_storage needs a block, a block name or a document id")
    if not (hasattr(block, "read_path") and hasattr(block, "write_path")):
        raise ResultError(
            f"Result storage must be a file system block (with read_path and "
            f"write_path), not {type(block).__name__}"
        )
    with _anonymous_save_lock:  # tasks in threads sharing one unsaved block save it once
        if block._block_document_id is None:
            block.save(is_anonymous=True)
    storage = BlockResultStorage(block)
    with _storages_lock:
        storage = _storages.setdefault(("block", storage.block_document_id), storage)
        if name is not None:
            _storages[("block", name)] = storage
    return storage


def _names_block(value: str) -> bool:
    if not _BLOCK_NAME.match(value):
        return False
    from client.blocks.core import block_class_for_slug

    return block_class_for_slug(value.partition("/")[0]) is not None


def get_storage(url: str | os.PathLike[str] | Storage | Block | None = None) -> Storage:
    """The (shared) storage for ``url``, or for the default storage URL when None.

    A :class:`ResultStorage` passed in is returned as it is; a file system block or a
    ``"slug/name"`` of one gives a :class:`BlockResultStorage`.
    """
    if isinstance(url, (ResultStorage, BlockResultStorage)):
        return url
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if url is not None and not isinstance(url, str):
        return _block_storage(block=url)
    if url and _names_block(url):
        return _block_storage(name=url)
    url = url or default_storage_url()
    storage = _storages.get(url)
    if storage is None:
        with _storages_lock:
            storage = _storages.setdefault(url, ResultStorage(url))
    return storage


def persist_result(
    value: Any, storage: str | os.PathLike[str] | Storage | Block | None, serializer: str = "pickle"
) -> dict[str, Any]:
    """Serialise ``value`` into ``storage`` (a ResultStorage or URL); return its reference."""
    storage = get_storage(storage)
    codec = get_serializer(serializer)
    try:
        data = codec.dumps(value)
    except Exception as exc:
        raise ResultError(
            f"Could not serialise the result ({type(value).__name__}) with {codec.name}: {exc}"
        ) from exc
    key = uuid.uuid4().hex
    storage.write(key, data)
    if isinstance(storage, BlockResultStorage):
        return {
            "type": REFERENCE_TYPE,
            "serializer": codec.name,
            "storage_block_id": storage.block_document_id,
            "key": key,
        }
    return {"type": REFERENCE_TYPE, "serializer": codec.name, "storage": storage.url, "key": key}


def is_reference(data: Any) -> bool:
    """Whether a state's ``data`` is a result reference written by :func:`persist_result`."""
    return isinstance(data, dict) and data.get("type") == REFERENCE_TYPE and "key" in data


def load_result(reference: Any) -> Any:
    """The value a reference points at, read back from its storage."""
    if not is_reference(reference):
        raise ResultError(f"Not a result reference: {reference!r}")
    if reference.get("storage_block_id"):
        storage = _block_storage(document_id=reference["storage_block_id"])
    else:
        storage = get_storage(reference["storage"])
    data = storage.read(reference["key"])
    return get_serializer(reference.get("serializer", "pickle")).loads(data)
