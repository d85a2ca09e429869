"""The block endpoints of the Orion API, as methods of :class:`client.api.client.OrionClient`.

Same names and arguments as Prefect 2.7's ``OrionClient`` block methods, taking and returning
plain JSON (:class:`client.api.objects.APIObject`): block types (``/block_types``), block schemas
(``/block_schemas``, found by checksum) and block documents (``/block_documents``, read by id
or by type slug and name). Documents are read with their secret values unless
``include_secrets=False`` (the server then sends ``**********``). This module imports nothing
heavy: the :class:`client.blocks.Block` classes that use these methods live in
:mod:`client.blocks.core`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from client.api.objects import APIObject

__all__ = ["BlocksAPI"]

Id = str | uuid.UUID

# Block type fields a client may change (Prefect's BlockTypeUpdate).
_BLOCK_TYPE_UPDATABLE = ("logo_url", "documentation_url", "description", "code_example")


def _q(value: object) -> str:
    return quote(str(value), safe="")


class BlocksAPI:
    """Mixin of :class:`client.api.client.OrionClient`: the block endpoints (see the module
    docstring). Relies on the client's ``_call(method, path, body=None, params=None)``."""

    if TYPE_CHECKING:

        def _call(
            self,
            method: str,
            path: str,
            body: Any = None,
            params: Mapping[str, Any] | None = None,
            **options: Any,
        ) -> Any: ...

    # -- block types ------------------------------------------------------------------------

    def create_block_type(self, block_type: Mapping[str, Any]) -> APIObject:
        """Create a block type from a dict (``name``, ``slug``, optional ``logo_url``,
        ``documentation_url``, ``description``, ``code_example``); ObjectAlreadyExists if
        the slug is taken."""
        return self._call("POST", "block_types/", dict(block_type))

    def read_block_type(self, block_type_id: Id) -> APIObject:
        return self._call("GET", f"block_types/{block_type_id}")

    def read_block_type_by_slug(self, slug: str) -> APIObject:
        return self._call("GET", f"block_types/slug/{_q(slug)}")

    def read_block_types(self) -> list[APIObject]:
        return self._call("POST", "block_types/filter", {})

    def update_block_type(self, block_type_id: Id, block_type: Mapping[str, Any]) -> None:
        """Change the display fields of a block type (others in ``block_type`` are left out:
        a block type's name and slug never change)."""
        body = {k: block_type[k] for k in _BLOCK_TYPE_UPDATABLE if k in block_type}
        self._call("PATCH", f"block_types/{block_type_id}", body)

    def delete_block_type(self, block_type_id: Id) -> None:
        self._call("DELETE", f"block_types/{block_type_id}", missing_ok_on_retry=True)

    # -- block schemas ----------------------------------------------------------------------

    def create_block_schema(self, block_schema: Mapping[str, Any]) -> APIObject:
        """Create a block schema from a dict (``fields``, ``block_type_id``,
        ``capabilities``, ``version``); the server computes its checksum."""
        return self._call("POST", "block_schemas/", dict(block_schema))

    def read_block_schema_by_checksum(self, checksum: str, version: str | None = None) -> APIObject:
        params = {"version": version} if version is not None else None
        return self._call("GET", f"block_schemas/checksum/{_q(checksum)}", params=params)

    def read_block_schemas(self) -> list[APIObject]:
        return self._call("POST", "block_schemas/filter", {})

    # -- block documents --------------------------------------------------------------------

    def create_block_document(self, block_document: Mapping[str, Any]) -> APIObject:
        """Create a block document from a dict (``name`` or ``is_anonymous``, ``data``,
        ``block_schema_id``, ``block_type_id``); ObjectAlreadyExists if its type already has
        a document of that name. Nested documents are ``{"$ref": {"block_document_id": id}}``
        values in ``data``."""
        return self._call("POST", "block_documents/", dict(block_document))

    def read_block_document(self, block_document_id: Id, include_secrets: bool = True) -> APIObject:
        return self._call(
            "GET",
            f"block_documents/{block_document_id}",
            params={"include_secrets": str(include_secrets).lower()},
        )

    def read_block_document_by_name(
        self, name: str, block_type_slug: str, include_secrets: bool = True
    ) -> APIObject:
        return self._call(
            "GET",
            f"block_types/slug/{_q(block_type_slug)}/block_documents/name/{_q(name)}",
            params={"include_secrets": str(include_secrets).lower()},
        )

    def read_block_documents(
        self,
        block_schema_type: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        include_secrets: bool = True,
    ) -> list[APIObject]:
        body: dict[str, Any] = {"include_secrets": include_secrets}
        if block_schema_type is not None:
            body["block_schema_type"] = block_schema_type
        if offset is not None:
            body["offset"] = offset
        if limit is not None:
            body["limit"] = limit
        return self._call("POST", "block_documents/filter", body)

    def update_block_document(
        self,
        block_document_id: Id,
        data: Mapping[str, Any] | None = None,
        *,
        block_schema_id: Id | None = None,
        merge_existing_data: bool = True,
    ) -> None:
        """Change a document's ``data`` (merged into what it has unless
        ``merge_existing_data=False``) and/or its ``block_schema_id``."""
        body: dict[str, Any] = {"merge_existing_data": merge_existing_data}
        if data is not None:
            body["data"] = data
        if block_schema_id is not None:
            body["block_schema_id"] = block_schema_id
        self._call("PATCH", f"block_documents/{block_document_id}", body)

    def delete_block_document(self, block_document_id: Id) -> None:
        self._call("DELETE", f"block_documents/{block_document_id}", missing_ok_on_retry=True)
