"""Building a deployment from a flow's code: its entrypoint, parameter schema and storage.

``orion deployment create path/to/file.py:flow_function`` loads the flow with the loader the
agent's runner uses (:func:`client.agent.run.load_flow`), so what is deployed is exactly what will
run. The parameter schema (:func:`parameter_schema`, from :mod:`client.sdk.validation`) is the
JSON schema of the pydantic model runs are validated with, shaped as Prefect 2's
``parameter_openapi_schema`` (``{"title": "Parameters", "type": "object", "properties": {...},
"required": [...]}``, each property with its ``title``, ``position``, type and JSON default;
models and dataclasses under ``$defs``). Code goes to an fsspec URL (:func:`upload_code`) or
through a saved storage block (:func:`upload_through_block`). The flow runs on a saved
infrastructure block (:func:`infrastructure_document_id`) or on a new one of a given type
(:func:`save_infrastructure`, as ``--infra docker-container`` does), with the deployment's
``infra_overrides`` (:func:`parse_overrides`, checked against the block).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from client.agent.run import FlowLoadError, load_flow

# Re-exported: the schema a deployment is created with.
from client.sdk.validation import parameter_schema as parameter_schema

if TYPE_CHECKING:
    from client.api.client import OrionClient
    from client.infrastructure.base import Infrastructure
    from client.sdk.flows import Flow


def load_entrypoint(entrypoint: str) -> tuple[Flow, str, str]:
    """``(flow, folder, relative_entrypoint)`` for ``path/to/file.py:flow_function``: the
    @flow object, the folder holding the file and the entrypoint relative to it. Raises
    FlowLoadError saying what is wrong."""
    file_part, sep, name = entrypoint.rpartition(":")
    if not sep or not file_part.endswith(".py") or not name.isidentifier():
        raise FlowLoadError(
            f"Entrypoint {entrypoint!r} must look like 'path/to/file.py:flow_function'."
        )
    path = os.path.abspath(file_part)
    if not os.path.isfile(path):
        raise FlowLoadError(f"No such file: {file_part!r}.")
    folder = os.path.dirname(path)
    relative = f"{os.path.basename(path)}:{name}"
    return load_flow(folder, relative), folder, relative


def upload_code(folder: str, entrypoint: str, storage: str, whole_folder: bool = True) -> int:
    """Copy the flow's code to ``storage`` (an fsspec URL or a local path): the whole
    ``folder`` (caches and virtual environments left out), or with ``whole_folder=False`` only
    the entrypoint's file. Returns the number of files written."""
    import fsspec

    from client.blocks.filesystems import code_files

    fs, root = fsspec.core.url_to_fs(storage)
    root = root.rstrip("/")
    if whole_folder:
        files = [os.path.join(folder, *relative.split("/")) for relative in code_files(folder)]
    else:
        files = [os.path.join(folder, entrypoint.rpartition(":")[0])]
    for local in files:
        target = f"{root}/{os.path.relpath(local, folder).replace(os.sep, '/')}"
        fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        fs.put_file(local, target)
    return len(files)


def upload_through_block(
    reference: str, folder: str, client: OrionClient | None
) -> tuple[str | None, str | None, int]:
    """Upload ``folder`` through the saved storage block ``reference``
    (``slug/name[/sub/folder]``); returns ``(block document id, folder in the block or None,
    files written)``. ValueError saying what is wrong (no such block, not a storage block, the
    store's error). Every file is uploaded again, so a changed file never leaves a stale copy."""
    from client.blocks.core import Block, BlockLoadError

    slug, _, rest = reference.partition("/")
    name, _, sub_path = rest.partition("/")
    if not slug or not name:
        raise ValueError(f"Storage block {reference!r} is not SLUG/NAME[/FOLDER].")
    try:
        block = Block.load(f"{slug}/{name}", client=client)
    except BlockLoadError as error:
        raise ValueError(f"Storage block {reference!r}: {error}") from None
    if not hasattr(block, "put_directory"):
        raise ValueError(
            f"Block {slug}/{name} cannot store flow code (it has no "
            "put_directory): use a file system block."
        )
    ignore = os.path.join(folder, ".prefectignore")
    try:
        count = block.put_directory(local_path=folder, to_path=sub_path or None, ignore_file=ignore)
    except Exception as error:  # whatever the block's file system raises
        raise ValueError(
            f"Could not upload the flow's code through block {slug}/{name}: "
            f"{type(error).__name__}: {error}"
        ) from error
    return block._block_document_id, sub_path or None, count


def load_infrastructure(reference: str, client: OrionClient | None) -> Infrastructure:
    """The saved infrastructure block ``reference`` (``slug/name``); ValueError if there is
    none or it is not an infrastructure block."""
    from client.blocks.core import Block, BlockLoadError
    from client.infrastructure.base import Infrastructure

    if reference.count("/") != 1:
        raise ValueError(f"Infrastructure block {reference!r} is not SLUG/NAME.")
    try:
        block = Block.load(reference, client=client)
    except BlockLoadError as error:
        raise ValueError(f"Infrastructure block {reference!r}: {error}") from None
    if not isinstance(block, Infrastructure):
        raise ValueError(
            f"Block {reference} is a {block.get_block_type_slug()!r} block, not "
            "an infrastructure block (process, docker-container ...)."
        )
    return block


def infrastructure_document_id(reference: str, client: OrionClient | None) -> str | None:
    """The document id of the saved infrastructure block ``reference`` (``slug/name``);
    ValueError if there is none or it is not an infrastructure block."""
    return load_infrastructure(reference, client)._block_document_id


def parse_overrides(values: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` options (``image=flows:2``, ``env.FOO=bar``) as a deployment's
    ``infra_overrides``. Values stay text, as Prefect 2.7 stores them, except a JSON list or
    object (``volumes=["/srv:/srv"]``), stored as such. ValueError naming a malformed one."""
    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
            raise ValueError(f"Override {item!r} is not KEY=VALUE (e.g. image=flows:2).")
        parsed: Any = value
        if value.lstrip().startswith(("[", "{")):
            try:
                parsed = json.loads(value)
            except ValueError:
                raise ValueError(f"Override {item!r}: its value is not valid JSON.") from None
        overrides[key.strip()] = parsed
    return overrides


def save_infrastructure(
    kind: str | None,
    reference: str | None,
    overrides: Mapping[str, Any],
    client: OrionClient | None,
) -> str | None:
    """The document id of the deployment's infrastructure block: the saved block
    ``reference`` (``slug/name``), or a new anonymous block of type ``kind`` (e.g.
    ``docker-container``) with its defaults, or, with overrides but neither, a new anonymous
    ``process`` block; None when there is nothing to name. The overrides are checked against
    the block first. ValueError saying what is wrong."""
    from client.blocks.core import block_class_for_slug
    from client.infrastructure.base import Infrastructure

    if kind and reference:
        raise ValueError("Give --infra or --infra-block, not both.")
    block: Infrastructure
    if reference:
        block = load_infrastructure(reference, client)
    elif kind or overrides:
        cls = block_class_for_slug(kind or "process")
        if cls is None or not issubclass(cls, Infrastructure):
            raise ValueError(
                f"Infrastructure type {kind!r} is not one this client implements "
                "(process, docker-container, kubernetes-job)."
            )
        block = cls.model_validate({})
    else:
        return None
    block.with_overrides(overrides)  # ValueError naming the override that does not fit
    if block._block_document_id is None:
        return block.save(is_anonymous=True, client=client)
    return block._block_document_id
