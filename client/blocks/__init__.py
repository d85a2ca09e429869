"""Blocks: typed, named configuration saved on the Orion server (see :mod:`client.blocks.core`).

    from client.blocks import Secret, LocalFileSystem

    Secret(value="s3cret").save("db-password")
    LocalFileSystem(basepath="/srv/shared").save("shared")
    storage = Block.load("local-file-system/shared")

Blocks are pydantic (v2) models; this package imports pydantic only when one of its names is
first used, so ``import client`` stays fast. :mod:`client.blocks.api` holds the client's block
endpoint methods; infrastructure blocks (``Process``) are in :mod:`client.infrastructure`.
"""

import importlib
from typing import Any

_NAMES = {
    "Block": "client.blocks.core",
    "BlockLoadError": "client.blocks.core",
    "SecretStr": "client.blocks.core",
    "SecretBytes": "client.blocks.core",
    "Secret": "client.blocks.system",
    "JSON": "client.blocks.system",
    "String": "client.blocks.system",
    "DateTime": "client.blocks.system",
    "LocalFileSystem": "client.blocks.filesystems",
    "RemoteFileSystem": "client.blocks.filesystems",
    "S3": "client.blocks.filesystems",
    "GCS": "client.blocks.filesystems",
    "Azure": "client.blocks.filesystems",
    "SMB": "client.blocks.filesystems",
    "WritableFileSystem": "client.blocks.filesystems",
    "WritableDeploymentStorage": "client.blocks.filesystems",
}

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'client.blocks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
