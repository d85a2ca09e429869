"""Run one deployed flow run in this process: ``python -m client.agent.run FLOW_RUN_ID``.

This is what an agent starts for each run it claims. It reads the run and its deployment,
fetches the flow's code (through the deployment's storage block when it has one, from the
block's folder ``path``; else from ``path``: a local folder, or an fsspec URL such as
``s3://bucket/flows`` or ``file:///srv/flows``) into a temporary folder, loads the
deployment's ``entrypoint`` (``path/to/file.py:flow_function``, relative to that folder,
which becomes the working directory and joins ``sys.path``) and runs the flow in the existing
run with the run's parameters under the SDK engine (:func:`client.sdk.engine.run_flow_run`).

Exit status: 0 when the run ends Completed, 1 otherwise. When the code cannot be fetched or
loaded the run is proposed Failed with the reason before exiting 1, so the agent only has to
report Crashed for processes that die without a final state.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import tempfile
from typing import TYPE_CHECKING

from client import get_client
from client.api.states import Failed

if TYPE_CHECKING:
    from client.api.client import OrionClient
    from client.sdk.flows import Flow

log = logging.getLogger("orion.run")


class FlowLoadError(Exception):
    """The flow's code could not be fetched or loaded; the message says why."""


def fetch_code(
    path: str | None,
    into: str,
    storage_document_id: str | None = None,
    client: OrionClient | None = None,
) -> str:
    """The local folder holding the flow's code: with a storage block (the deployment's
    ``storage_document_id``), the block's folder ``path`` (None: its base path) downloaded
    into ``into``; else ``path`` itself when it is a local path (None: the working
    directory), or ``path`` (an fsspec URL) copied into ``into``."""
    if storage_document_id:
        return _fetch_through_block(storage_document_id, path, into, client)
    if not path:
        return os.getcwd()
    if "://" not in path:
        return os.path.abspath(path)
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(path)
        fs.get(root.rstrip("/") + "/", into.rstrip("/") + "/", recursive=True)
    except Exception as error:
        raise FlowLoadError(
            f"Could not fetch the flow's code from {path!r}: {type(error).__name__}: {error}"
        ) from error
    return into


def _fetch_through_block(
    document_id: str, path: str | None, into: str, client: OrionClient | None
) -> str:
    from client.blocks.core import Block, BlockLoadError

    try:
        storage = Block.load_by_id(document_id, client=client)
    except BlockLoadError as error:
        raise FlowLoadError(f"The deployment's storage block cannot be loaded: {error}") from None
    if not hasattr(storage, "get_directory"):
        raise FlowLoadError(
            f"The deployment's storage block ({storage.get_block_type_slug()})"
            " cannot download code: it has no get_directory."
        )
    try:
        storage.get_directory(from_path=path or None, local_path=into)
    except Exception as error:  # whatever the block's file system raises
        slug, name = storage.get_block_type_slug(), storage._block_document_name
        raise FlowLoadError(
            f"Could not fetch the flow's code through block "
            f"{f'{slug}/{name}' if name else f'{slug} {document_id}'}: "
            f"{type(error).__name__}: {error}"
        ) from error
    return into


def load_flow(folder: str, entrypoint: str | None) -> Flow:
    """The ``@flow`` object named by ``entrypoint`` (``file.py:name``) in ``folder``."""
    from client.sdk.flows import Flow

    if not entrypoint or ":" not in entrypoint:
        raise FlowLoadError(
            f"The deployment's entrypoint {entrypoint!r} is not 'path/to/file.py:flow_function'."
        )
    file_part, name = entrypoint.rsplit(":", 1)
    file_path = os.path.join(folder, file_part)
    if not os.path.isfile(file_path):
        raise FlowLoadError(f"The flow's file {file_part!r} is not in {folder!r}.")
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("__orion_flow__", file_path)
    if spec is None or spec.loader is None:
        raise FlowLoadError(f"The flow's file {file_part!r} cannot be imported.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise FlowLoadError(
            f"Importing {file_part!r} failed: {type(error).__name__}: {error}"
        ) from error
    found = getattr(module, name, None)
    if not isinstance(found, Flow):
        raise FlowLoadError(f"{entrypoint!r} is not a @flow.")
    return found


def run(flow_run_id: str) -> int:
    """Run the flow run; returns the process exit status (see the module docstring)."""
    from client.sdk.engine import run_flow_run

    orion = get_client()
    flow_run = orion.read_flow_run(flow_run_id)
    with tempfile.TemporaryDirectory(prefix="orion-flow-") as scratch:
        try:
            if flow_run.deployment_id is None:
                raise FlowLoadError("The flow run has no deployment to load its flow from.")
            deployment = orion.read_deployment(flow_run.deployment_id)
            folder = fetch_code(
                deployment.path, scratch, deployment.get("storage_document_id"), orion
            )
            os.chdir(folder)
            flow = load_flow(folder, deployment.entrypoint)
        except FlowLoadError as error:
            log.error("Flow run %s: %s", flow_run_id, error)
            orion.set_flow_run_state(flow_run_id, Failed(message=str(error)))
            return 1
        final = run_flow_run(flow, flow_run)
    return 0 if final is not None and final.is_completed() else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m client.agent.run FLOW_RUN_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request
    return run(argv[0])


if __name__ == "__main__":
    sys.exit(main())
