"""Collection views (``/api/collections/views/{view}``), served from a file in the package.

Prefect's server fetches these views from its collection registry on GitHub and falls back to
copies shipped in its wheel. Orion never calls out: ``app/data/collection_views.json`` holds
the views it serves, keyed by view name. Today that is ``aggregate-worker-metadata`` (the
worker types of Prefect's integrations, copied once from the file Prefect 2.20 ships in
``prefect/server/api/collections_data/views/``). The other views Prefect knows
(:data:`KNOWN_VIEWS`: block and flow metadata, demo flows) describe its integrations'
packages, which this server has no copy of: asking for one is a 404 saying its content is
missing, as Prefect answers when the registry lacks a view's file.
"""

import functools
import json
import os
from typing import Any

from app.exceptions import ObjectNotFound

VIEWS_FILE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "data", "collection_views.json"
)
KNOWN_VIEWS = (
    "aggregate-block-metadata",
    "aggregate-flow-metadata",
    "aggregate-worker-metadata",
    "demo-flows",
)


@functools.lru_cache(maxsize=1)
def _views() -> dict[str, Any]:
    with open(VIEWS_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def read_view(view: str) -> Any:
    """The content of ``view``; ObjectNotFound if it is unknown or has no content here."""
    if view not in KNOWN_VIEWS:
        raise ObjectNotFound(f"View {view} not found in registry")
    views = _views()
    if view not in views:
        raise ObjectNotFound(f"Requested content missing for view {view}")
    return views[view]
