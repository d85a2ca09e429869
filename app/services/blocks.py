"""Blocks: block types, block schemas and block documents (Prefect 2.7's blocks API).

- **Types** are unique by name and by slug. Protected types (the system ones Prefect's server
  protects) cannot be deleted nor have their schemas deleted (Forbidden); their name and
  slug never change, their descriptive fields may (see :func:`update_block_type`).
- **Schemas** are JSON schemas (as pydantic v1 writes them for a Prefect ``Block``), unique by
  ``(checksum, version)``; creating one that exists returns it. The checksum is Prefect's
  (:func:`schema_checksum`), so clients find schemas by the checksum they compute. Fields are
  stored as given, ``definitions`` and ``block_schema_references`` included, and read back
  unchanged.
- **Documents** hold data valid against their schema (checked with ``jsonschema``; a field
  may be null when the schema does not require it, as pydantic v1 allows). A top-level value
  ``{"$ref": {"block_document_id": ...}}`` nests another document: it is stored as a
  reference row and resolved on every read (``block_document_references`` says where).
  Data is encrypted at rest (app.services.block_crypto). On read, secret fields read
  ``**********`` unless ``include_secrets``; on update, a secret field sent back as
  ``**********`` keeps its value. Secret fields are those the schema lists in
  ``secret_fields`` (``a.b``; ``a.*`` for everything under ``a``) plus any property marked
  ``writeOnly`` or ``format: password``, nested objects included.
- **System block types** are registered from ``app/data/system_blocks.json`` (dumped from
  Prefect by ``scripts/dump_system_blocks.py``) at every server start and on request.

Validation messages never quote a value, which may be a secret.
"""

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from peewee import SQL, fn

from app.db import database
from app.exceptions import (
    Conflict,
    Forbidden,
    InvalidData,
    ObjectAlreadyExists,
    ObjectNotFound,
)
from app.models import (
    BlockDocument,
    BlockDocumentReference,
    BlockSchema,
    BlockType,
    Deployment,
    Flow,
    utcnow,
)
from app.models.blocks import (
    documents_with_schemas,
    read_document_by_id,
    read_document_by_name,
)
from app.services import block_crypto
from app.services.common import Body, Id, get_or_raise
from app.services.filters import OPERATORS

OBFUSCATED = "**********"
DEFAULT_VERSION = "non-versioned"
SYSTEM_BLOCKS_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "system_blocks.json"
)
# Nesting deeper than this (in schemas walked for secrets, or documents) is not followed.
MAX_DEPTH = 16


# ---------------------------------------------------------------- checksums and secrets
def _without_key(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _without_key(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without_key(v, key) for v in value]
    return value


def _reference_strings(value: Any) -> list[str]:
    """Every ``$ref`` string anywhere in ``value``."""
    found: list[str] = []
    if isinstance(value, dict):
        if value.get("$ref"):
            found.append(value["$ref"])
        for item in value.values():
            found.extend(_reference_strings(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_reference_strings(item))
    return found


def _non_block_definitions(value: Any, definitions: Mapping[str, Any]) -> dict[str, Any]:
    """The definitions ``value`` refers to, transitively, that are not blocks."""
    kept: dict[str, Any] = {}
    for reference in _reference_strings(value):
        key = reference.replace("#/definitions/", "")
        definition = definitions.get(key)
        if definition and definition.get("block_type_slug") is None:
            kept = {**kept, key: definition, **_non_block_definitions(definition, definitions)}
    return kept


def schema_checksum(fields: Mapping[str, Any]) -> str:
    """Prefect's checksum of block schema ``fields``: ``sha256:`` + the SHA-256 of their
    sorted-key JSON, without ``secret_fields`` and without the definitions of nested blocks
    (``Block._calculate_schema_checksum`` of Prefect 2.7)."""
    checked: dict[str, Any] = _without_key(fields, "secret_fields")
    if checked.get("definitions"):
        kept = _non_block_definitions(checked, checked["definitions"])
        if kept:
            checked["definitions"] = kept
        else:
            checked.pop("definitions")
    payload = json.dumps([[checked], {}], sort_keys=True)
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` (or a single-item ``allOf`` of one) followed."""
    for _ in range(MAX_DEPTH):
        if "$ref" in schema and isinstance(schema["$ref"], str):
            target = schema["$ref"].replace("#/definitions/", "")
            schema = (root.get("definitions") or {}).get(target, {})
        elif isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            return schema
    return schema


def secret_paths(fields: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The secret fields of a block schema, as tuples of keys (``"*"`` = everything below)."""
    paths = {tuple(str(p).split(".")) for p in fields.get("secret_fields") or ()}

    def walk(properties: Any, prefix: tuple[str, ...], depth: int) -> None:
        if not isinstance(properties, dict) or depth > MAX_DEPTH:
            return
        for name, subschema in properties.items():
            if not isinstance(subschema, dict):
                continue
            resolved = _resolve(subschema, fields)
            if any(
                s.get("writeOnly") or s.get("format") == "password" for s in (subschema, resolved)
            ):
                paths.add(prefix + (name,))
            else:
                walk(resolved.get("properties"), prefix + (name,), depth + 1)

    walk(fields.get("properties"), (), 0)
    return sorted(paths)


def _obfuscate_all(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _obfuscate_all(v) for k, v in value.items()}
    return OBFUSCATED


def obfuscate(data: dict[str, Any], paths: Iterable[tuple[str, ...]]) -> None:
    """Replace the values at secret ``paths`` of ``data`` (in place) with ``**********``."""
    for path in paths:
        if "*" in path:
            prefix = path[: path.index("*")]
            parent, key = _walk_to(data, prefix[:-1]), prefix[-1] if prefix else None
            if key is None:
                data.update(_obfuscate_all(data))
            elif isinstance(parent, dict) and parent.get(key) is not None:
                parent[key] = _obfuscate_all(parent[key])
        else:
            parent = _walk_to(data, path[:-1])
            if isinstance(parent, dict) and parent.get(path[-1]) is not None:
                parent[path[-1]] = OBFUSCATED


def _walk_to(data: Any, keys: Iterable[str]) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _keep_unchanged_secrets(
    new: dict[str, Any], current: Mapping[str, Any], paths: Iterable[tuple[str, ...]]
) -> None:
    """Where ``new`` holds ``**********`` at a secret path, put back ``current``'s value (a
    client posting back what it read means "unchanged")."""

    def restore(new_value: Any, current_value: Any) -> Any:
        if isinstance(new_value, dict) and isinstance(current_value, dict):
            return {k: restore(v, current_value.get(k)) for k, v in new_value.items()}
        if new_value == OBFUSCATED and current_value is not None:
            return current_value
        return new_value

    for path in paths:
        prefix = path[: path.index("*")] if "*" in path else path
        if not prefix:
            new.update(restore(new, current))
            continue
        parent = _walk_to(new, prefix[:-1])
        if isinstance(parent, dict) and prefix[-1] in parent:
            parent[prefix[-1]] = restore(parent[prefix[-1]], _walk_to(current, prefix))


# ---------------------------------------------------------------- validation
def _properties(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    """JSON Schema ``properties``, except that a property the schema does not require may be
    null: pydantic v1 writes ``Optional[str] = None`` as ``{"type": "string"}``; and a JSON
    6902 patch (``format: rfc6902``, Prefect's ``kubernetes-job`` ``customizations``) need only
    be a list: Prefect's schema says its operations' values are strings, yet they are any JSON
    (``{"op": "add", "path": ".../resources", "value": {...}}``), and Prefect saves them."""
    if not validator.is_type(instance, "object"):
        return
    required = set(schema.get("required") or ())
    for name, subschema in properties.items():
        if name in instance and not (instance[name] is None and name not in required):
            if subschema.get("format") == "rfc6902":
                subschema = {"type": "array", "items": {"type": "object"}}
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)


@cache
def _validator_class() -> Any:
    """Draft 7 with :func:`_properties`; jsonschema is imported here, when first needed, as
    its import takes a third of a second that a server start need not spend."""
    from jsonschema import Draft7Validator, validators

    return validators.extend(Draft7Validator, {"properties": _properties})


def _error_message(error: Any) -> str:
    if error.validator == "required":
        return "field required"
    if error.validator == "type":
        return f"value is not of type {error.validator_value!r}"
    if error.validator == "enum":
        return f"value is not one of {error.validator_value!r}"
    if error.validator == "additionalProperties":
        return "extra fields not permitted"
    return f"value does not satisfy {error.validator!r}: {error.validator_value!r}"


def validate_data(fields: Mapping[str, Any] | None, data: Mapping[str, Any]) -> None:
    """Raise InvalidData naming the first field of ``data`` that ``fields`` (a block schema)
    refuses; the message describes the rule, never the value."""
    if not fields:
        return
    error = next(
        iter(
            sorted(
                _validator_class()(fields).iter_errors(data),
                key=lambda e: list(map(str, e.absolute_path)),
            )
        ),
        None,
    )
    if error is None:
        return
    loc = ["body", "data", *error.absolute_path]
    if error.validator == "required":
        missing = [
            name
            for name in error.validator_value
            if isinstance(error.instance, dict) and name not in error.instance
        ]
        loc += missing[:1]
    where = ".".join(map(str, loc[2:])) or "data"
    raise InvalidData(
        f"Block data does not match its schema: {where}: {_error_message(error)}.", loc
    )


# ---------------------------------------------------------------- block types
def create_block_type(values: Body) -> BlockType:
    """Create a block type; Conflict if the name or slug is taken, Forbidden for a name
    starting with "Prefect" (reserved, as in Prefect)."""
    if values["name"].lower().startswith("prefect"):
        raise Forbidden("Block type names beginning with 'Prefect' are reserved.")
    with database.atomic():
        taken = (
            BlockType.select(BlockType.name, BlockType.slug)
            .where((BlockType.name == values["name"]) | (BlockType.slug == values["slug"]))
            .first()
        )
        if taken is not None:
            what = "name" if taken.name == values["name"] else "slug"
            raise ObjectAlreadyExists(f'Block type with {what} "{values[what]}" already exists.')
        return BlockType.create(**values)


def read_block_type(block_type_id: Id) -> BlockType:
    """The block type with this id; ObjectNotFound if none."""
    return get_or_raise(
        BlockType.select().where(BlockType.id == block_type_id), "Block type", block_type_id
    )


def read_block_type_by_slug(slug: str) -> BlockType:
    """The block type with this slug; ObjectNotFound if none."""
    return get_or_raise(BlockType.select().where(BlockType.slug == slug), "Block type", slug)


def read_block_types(body: Body) -> list[BlockType]:
    """Block types matching the filter body, by name, paged."""
    query = BlockType.select().where(_block_type_where(body.get("block_types")))
    if body.get("block_schemas"):
        query = query.where(
            fn.EXISTS(
                BlockSchema.select(BlockSchema.id).where(
                    (BlockSchema.block_type == BlockType.id)
                    & _block_schema_where(body["block_schemas"])
                )
            )
        )
    return list(query.order_by(BlockType.name).limit(body["limit"]).offset(body["offset"]))


def update_block_type(block_type_id: Id, changes: Body) -> None:
    """Change a block type's descriptive fields (logo, documentation URL, description, code
    example); ObjectNotFound if it does not exist.

    Protected types take these changes too, as on Prefect's own server: every Prefect client
    registering its ``Block`` class sends its version's description and logo (2.20's differ
    from 2.7's), and refusing them would stop that client saving a ``Secret``. What
    protection keeps is the type's identity (name, slug, which no update can change), its
    schemas and its existence.
    """
    with database.atomic():
        read_block_type(block_type_id)
        if changes:
            (
                BlockType.update(updated=utcnow(), **changes)
                .where(BlockType.id == block_type_id)
                .execute()
            )


def delete_block_type(block_type_id: Id) -> None:
    """Delete a block type with its schemas and documents; Forbidden if protected, Conflict
    if a deployment uses one of its documents."""
    with database.atomic():
        block_type = read_block_type(block_type_id)
        if block_type.is_protected:
            raise Forbidden(f"Block type {block_type.slug!r} is protected and cannot be deleted.")
        _refuse_if_deployed(
            BlockDocument.select(BlockDocument.id).where(BlockDocument.block_type == block_type_id)
        )
        BlockType.delete().where(BlockType.id == block_type_id).execute()


def _block_type_where(criteria: Body | None) -> Any:
    conditions: list[Any] = []
    criteria = criteria or {}
    if "like_" in criteria.get("name", {}):
        conditions.append(OPERATORS["like_"](BlockType.name, criteria["name"]["like_"]))
    if "any_" in criteria.get("slug", {}):
        conditions.append(BlockType.slug.in_(criteria["slug"]["any_"]))
    return _and(conditions)


def _and(conditions: list[Any], operator: str = "and_") -> Any:
    if not conditions:
        return SQL("1 = 1")
    result = conditions[0]
    for condition in conditions[1:]:
        result = (result | condition) if operator == "or_" else (result & condition)
    return result


# ---------------------------------------------------------------- block schemas
def create_block_schema(values: Body) -> tuple[BlockSchema, BlockType, bool]:
    """Create a block schema, or find the one with the same checksum and version.

    Returns ``(schema, block_type, created)``; ObjectNotFound if the block type does not
    exist. Concurrent creates of one schema leave one row.
    """
    block_type = read_block_type(values["block_type_id"])
    checksum = schema_checksum(values["fields"])
    version = values.get("version") or DEFAULT_VERSION
    new_id = uuid.uuid4()
    now = utcnow()
    with database.atomic():
        (
            BlockSchema.insert(
                id=new_id,
                checksum=checksum,
                version=version,
                fields=values["fields"],
                capabilities=values["capabilities"],
                block_type=block_type.id,
                created=now,
                updated=now,
            )
            .on_conflict_ignore()
            .execute()
        )
        schema = BlockSchema.get(
            (BlockSchema.checksum == checksum) & (BlockSchema.version == version)
        )
    if schema.block_type_id != block_type.id:
        block_type = read_block_type(schema.block_type_id)
    return schema, block_type, schema.id == new_id


def _schemas_with_types() -> Any:
    return BlockSchema.select(BlockSchema, BlockType).join(BlockType)


def read_block_schema(block_schema_id: Id) -> tuple[BlockSchema, BlockType]:
    """``(schema, block_type)`` for this id; ObjectNotFound if none."""
    schema = get_or_raise(
        _schemas_with_types().where(BlockSchema.id == block_schema_id),
        "Block schema",
        block_schema_id,
    )
    return schema, schema.block_type


def read_block_schema_by_checksum(
    checksum: str, version: str | None = None
) -> tuple[BlockSchema, BlockType]:
    """``(schema, block_type)`` with this checksum (and version; the newest if not given)."""
    query = _schemas_with_types().where(BlockSchema.checksum == checksum)
    if version is not None:
        query = query.where(BlockSchema.version == version)
    schema = get_or_raise(query.order_by(BlockSchema.created.desc()), "Block schema", checksum)
    return schema, schema.block_type


def latest_block_schema(block_type_id: Id) -> BlockSchema:
    """The newest schema of a block type; ObjectNotFound if it has none."""
    return get_or_raise(
        BlockSchema.select()
        .where(BlockSchema.block_type == block_type_id)
        .order_by(BlockSchema.created.desc(), BlockSchema.id),
        "Block schema of block type",
        block_type_id,
    )


def latest_block_schemas(block_type_ids: list[Any]) -> dict[Any, BlockSchema]:
    """The newest schema of each of these block types (types without one left out)."""
    newest: dict[Any, BlockSchema] = {}
    for schema in (
        BlockSchema.select()
        .where(BlockSchema.block_type.in_(block_type_ids))
        .order_by(BlockSchema.created.desc(), BlockSchema.id)
    ):
        newest.setdefault(schema.block_type_id, schema)
    return newest


def read_block_schemas(body: Body) -> list[tuple[BlockSchema, BlockType]]:
    """``[(schema, block_type)]`` matching the filter body, newest first, paged."""
    query = (
        _schemas_with_types()
        .where(_block_schema_where(body.get("block_schemas")))
        .order_by(BlockSchema.created.desc(), BlockSchema.id)
        .limit(body["limit"])
        .offset(body["offset"])
    )
    return [(schema, schema.block_type) for schema in query]


def delete_block_schema(block_schema_id: Id) -> None:
    """Delete a block schema and its documents; Forbidden for a protected type's schema,
    Conflict if a deployment uses one of its documents."""
    with database.atomic():
        _schema, block_type = read_block_schema(block_schema_id)
        if block_type.is_protected:
            raise Forbidden(
                f"Block schemas of protected block types cannot be deleted ({block_type.slug!r})."
            )
        _refuse_if_deployed(
            BlockDocument.select(BlockDocument.id).where(
                BlockDocument.block_schema == block_schema_id
            )
        )
        BlockSchema.delete().where(BlockSchema.id == block_schema_id).execute()


def read_block_capabilities() -> list[str]:
    """Every capability some block schema has, sorted."""
    capabilities: set[str] = set()
    for (values,) in BlockSchema.select(BlockSchema.capabilities).distinct().tuples():
        capabilities.update(values or ())
    return sorted(capabilities)


def _block_schema_where(criteria: Body | None) -> Any:
    criteria = criteria or {}
    conditions: list[Any] = []
    if "any_" in criteria.get("id", {}):
        conditions.append(BlockSchema.id.in_(criteria["id"]["any_"]))
    if "any_" in criteria.get("block_type_id", {}):
        conditions.append(BlockSchema.block_type.in_(criteria["block_type_id"]["any_"]))
    if "all_" in criteria.get("block_capabilities", {}):
        conditions.append(
            OPERATORS["all_"](BlockSchema.capabilities, criteria["block_capabilities"]["all_"])
        )
    if "any_" in criteria.get("version", {}):
        conditions.append(BlockSchema.version.in_(criteria["version"]["any_"]))
    return _and(conditions, criteria.get("operator", "and_"))


# ---------------------------------------------------------------- block documents
@dataclass
class ResolvedReference:
    """A document nested in a field of another: the document, its type and its own nests."""

    document: BlockDocument
    block_type: BlockType
    references: dict[str, "ResolvedReference"] = field(default_factory=dict)


@dataclass
class ResolvedDocument:
    """A block document as read: data decrypted, nested documents in place, secrets
    obfuscated unless asked for; ``references`` maps field -> ResolvedReference."""

    document: BlockDocument
    block_schema: BlockSchema
    block_type: BlockType
    data: dict[str, Any]
    references: dict[str, ResolvedReference]


def _split_references(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, uuid.UUID]]:
    """``(plain data, {field: referenced document id})`` of document data as sent."""
    plain: dict[str, Any] = {}
    references: dict[str, uuid.UUID] = {}
    for key, value in data.items():
        if isinstance(value, dict) and "$ref" in value:
            target = (
                value["$ref"].get("block_document_id") if isinstance(value["$ref"], dict) else None
            )
            try:
                references[key] = uuid.UUID(str(target))
            except ValueError:
                raise InvalidData(
                    f"Block reference in field {key!r} needs a valid block_document_id.",
                    ["body", "data", key],
                ) from None
        else:
            plain[key] = value
    return plain, references


def _with_nested_data(
    plain: Mapping[str, Any], references: Mapping[str, uuid.UUID]
) -> dict[str, Any]:
    """``plain`` with each referenced document's full data (secrets included) in place;
    InvalidData naming the field if a referenced document does not exist."""
    full = dict(plain)
    if not references:
        return full
    rows = {
        row.id: row
        for row in documents_with_schemas().where(BlockDocument.id.in_(list(references.values())))
    }
    loaded = _load(list(rows.values()), include_secrets=True)
    by_id = {resolved.document.id: resolved for resolved in loaded}
    for key, target in references.items():
        if target not in by_id:
            raise InvalidData(
                f"Block document {target} referenced by field {key!r} does not exist.",
                ["body", "data", key],
            )
        full[key] = by_id[target].data
    return full


def create_block_document(values: Body) -> ResolvedDocument:
    """Create a block document; returns it resolved (secrets obfuscated).

    ObjectNotFound for an unknown type or schema; InvalidData if the schema is not of the
    type or the data does not match it; Conflict if the type has a document of that name.
    Anonymous documents without a name get ``anonymous-<uuid>``.
    """
    name = values.get("name")
    if values["is_anonymous"] and not name:
        name = f"anonymous-{uuid.uuid4()}"
    plain, references = _split_references(values["data"])
    with database.atomic():
        block_type = read_block_type(values["block_type_id"])
        schema, _ = read_block_schema(values["block_schema_id"])
        if schema.block_type_id != block_type.id:
            raise InvalidData(
                f"Block schema {schema.id} is not a schema of block type {block_type.slug!r}.",
                ["body", "block_schema_id"],
            )
        validate_data(schema.fields, _with_nested_data(plain, references))
        exists = (
            BlockDocument.select(BlockDocument.id)
            .where((BlockDocument.block_type == block_type.id) & (BlockDocument.name == name))
            .exists()
        )
        if exists:
            raise ObjectAlreadyExists(
                f"Block already exists: a {block_type.slug!r} block document named {name!r}."
            )
        block_crypto.guard_write()
        document = BlockDocument.create(
            name=name,
            data=block_crypto.encrypt(plain),
            is_anonymous=values["is_anonymous"],
            block_schema=schema.id,
            block_type=block_type.id,
        )
        _insert_references(document.id, references)
    return read_block_document(document.id)


def _insert_references(parent_id: Id, references: Mapping[str, uuid.UUID]) -> None:
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "name": key,
            "parent": parent_id,
            "reference": target,
            "created": now,
            "updated": now,
        }
        for key, target in references.items()
    ]
    if rows:
        BlockDocumentReference.insert_many(rows).execute()


def _load(rows: list[BlockDocument], include_secrets: bool) -> list[ResolvedDocument]:
    """Resolve documents ``rows`` (selected with their schema and type): decrypt, nest the
    documents they reference (recursively), obfuscate secrets unless asked not to."""
    if not rows:
        return []
    documents = {row.id: row for row in rows}
    children: dict[uuid.UUID, list[tuple[str, uuid.UUID]]] = {}  # parent -> [(field, child)]
    frontier = set(documents)
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        links = BlockDocumentReference.links_of(frontier)
        for parent_id, name, child_id in links:
            children.setdefault(_uuid(parent_id), []).append((name, _uuid(child_id)))
        missing = {_uuid(child) for _, _, child in links} - set(documents)
        if len(missing) == 1:
            row = read_document_by_id(next(iter(missing)))
            documents.update({row.id: row} if row is not None else {})
        elif missing:
            for row in documents_with_schemas().where(BlockDocument.id.in_(list(missing))):
                documents[row.id] = row
        frontier = missing

    def resolve(
        document_id: uuid.UUID, depth: int
    ) -> tuple[dict[str, Any], dict[str, ResolvedReference]]:
        row = documents[document_id]
        data = block_crypto.decrypt(row.data)
        references: dict[str, ResolvedReference] = {}
        for name, child_id in sorted(children.get(document_id, ())):
            if child_id not in documents or depth >= MAX_DEPTH:
                continue
            child_data, child_refs = resolve(child_id, depth + 1)
            child = documents[child_id]
            data[name] = child_data
            references[name] = ResolvedReference(child, child.block_type, child_refs)
        if not include_secrets:
            obfuscate(data, secret_paths(row.block_schema.fields))
        return data, references

    resolved = []
    for row in rows:
        data, references = resolve(row.id, 0)
        resolved.append(ResolvedDocument(row, row.block_schema, row.block_type, data, references))
    return resolved


def _uuid(value: Id) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def read_block_document(document_id: Id, include_secrets: bool = False) -> ResolvedDocument:
    """The resolved document with this id (anonymous or not); ObjectNotFound if none."""
    document = read_document_by_id(document_id)
    if document is None:
        raise ObjectNotFound(f"Block document {document_id} not found.")
    return _load([document], include_secrets)[0]


def read_block_document_by_name(
    slug: str, name: str, include_secrets: bool = False
) -> ResolvedDocument:
    """The resolved document of type ``slug`` named ``name``; ObjectNotFound if none."""
    document = read_document_by_name(slug, name)
    if document is None:
        raise ObjectNotFound(f"Block document {slug}/{name} not found.")
    return _load([document], include_secrets)[0]


def _document_query(body: Body) -> Any:
    """Documents matching a filter body; without a ``block_documents`` filter, or without
    its ``is_anonymous``, anonymous documents are left out (as in Prefect)."""
    criteria = body.get("block_documents") or {}
    conditions: list[Any] = []
    if "any_" in criteria.get("id", {}):
        conditions.append(BlockDocument.id.in_(criteria["id"]["any_"]))
    if "any_" in criteria.get("block_type_id", {}):
        conditions.append(BlockDocument.block_type.in_(criteria["block_type_id"]["any_"]))
    if "any_" in criteria.get("name", {}):
        conditions.append(BlockDocument.name.in_(criteria["name"]["any_"]))
    if "like_" in criteria.get("name", {}):
        conditions.append(OPERATORS["like_"](BlockDocument.name, criteria["name"]["like_"]))
    anonymous = criteria.get("is_anonymous", {"eq_": False}).get("eq_")
    if anonymous is not None:
        conditions.append(BlockDocument.is_anonymous == anonymous)
    where = _and(conditions, criteria.get("operator", "and_"))
    if body.get("block_types"):
        where &= _block_type_where(body["block_types"])
    if body.get("block_schemas"):
        where &= _block_schema_where(body["block_schemas"])
    return documents_with_schemas().where(where)


# A filter body's ``sort``: the order of its page (ids last, so that pages never overlap).
_DOCUMENT_ORDER = {
    "NAME_ASC": (BlockDocument.name, BlockDocument.id),
    "NAME_DESC": (BlockDocument.name.desc(), BlockDocument.id.desc()),
    "BLOCK_TYPE_AND_NAME_ASC": (BlockType.name, BlockDocument.name, BlockDocument.id),
}


def read_block_documents(body: Body, include_secrets: bool = False) -> list[ResolvedDocument]:
    """Resolved documents matching the filter body, in its ``sort`` (default by name),
    paged."""
    rows = list(
        _document_query(body)
        .order_by(*_DOCUMENT_ORDER[body.get("sort", "NAME_ASC")])
        .limit(body["limit"])
        .offset(body["offset"])
    )
    return _load(rows, include_secrets)


def count_block_documents(body: Body) -> int:
    """How many documents match the filter body."""
    return _document_query(body).count()


def update_block_document(document_id: Id, values: Body) -> None:
    """Update a document's data (merged into the current data unless
    ``merge_existing_data`` is false) and/or move it to another schema of its type.

    Secret fields sent as ``**********`` keep their value. With merging, nested documents in
    fields the update does not mention stay. The result must match the (new) schema
    (InvalidData naming the field). ObjectNotFound if the document does not exist.
    """
    with database.atomic():
        rows = list(documents_with_schemas().where(BlockDocument.id == document_id))
        if not rows:
            raise ObjectNotFound(f"Block document {document_id} not found.")
        row = rows[0]
        schema = row.block_schema
        if values.get("block_schema_id") and values["block_schema_id"] != schema.id:
            schema, _ = read_block_schema(values["block_schema_id"])
            if schema.block_type_id != row.block_type.id:
                raise InvalidData(
                    "Must migrate block document to a block schema of the same block type.",
                    ["body", "block_schema_id"],
                )
        current = block_crypto.decrypt(row.data)
        current_refs = {
            name: _uuid(target)
            for name, target in BlockDocumentReference.select(
                BlockDocumentReference.name, BlockDocumentReference.reference
            )
            .where(BlockDocumentReference.parent == document_id)
            .tuples()
        }
        if "data" in values:
            plain, references = _split_references(values["data"])
            _keep_unchanged_secrets(plain, current, secret_paths(schema.fields))
            if values["merge_existing_data"]:
                references = {
                    **{k: v for k, v in current_refs.items() if k not in plain},
                    **references,
                }
                plain = {**{k: v for k, v in current.items() if k not in references}, **plain}
        else:
            plain, references = current, current_refs
        validate_data(schema.fields, _with_nested_data(plain, references))
        block_crypto.guard_write()
        (
            BlockDocument.update(
                data=block_crypto.encrypt(plain), block_schema=schema.id, updated=utcnow()
            )
            .where(BlockDocument.id == document_id)
            .execute()
        )
        if references != current_refs:
            (
                BlockDocumentReference.delete()
                .where(BlockDocumentReference.parent == document_id)
                .execute()
            )
            _insert_references(document_id, references)


def delete_block_document(document_id: Id) -> None:
    """Delete a document; Conflict naming the deployments that use it as storage or
    infrastructure; ObjectNotFound if it does not exist."""
    with database.atomic():
        _refuse_if_deployed([document_id])
        deleted = BlockDocument.delete().where(BlockDocument.id == document_id).execute()
    if not deleted:
        raise ObjectNotFound(f"Block document {document_id} not found.")


def describe_document(document_id: Id | None) -> dict[str, Any] | None:
    """``{"id", "name", "is_anonymous", "type_name", "type_slug"}`` of a block document,
    without reading its data; None if there is no such document (or no id)."""
    if document_id is None:
        return None
    return (
        BlockDocument.select(
            BlockDocument.id,
            BlockDocument.name,
            BlockDocument.is_anonymous,
            BlockType.name.alias("type_name"),
            BlockType.slug.alias("type_slug"),
        )
        .join(BlockType, on=(BlockDocument.block_type == BlockType.id))
        .where(BlockDocument.id == document_id)
        .dicts()
        .first()
    )


def deployments_using(document_ids: Any, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` deployments (``id``, ``name``, ``flow_name``, by flow and name) whose
    storage or infrastructure is one of ``document_ids`` (a list or a sub-query)."""
    return list(
        Deployment.select(Deployment.id, Deployment.name, Flow.name.alias("flow_name"))
        .join(Flow)
        .where(
            Deployment.storage_document_id.in_(document_ids)
            | Deployment.infrastructure_document_id.in_(document_ids)
        )
        .order_by(Flow.name, Deployment.name)
        .limit(limit)
        .dicts()
    )


def _refuse_if_deployed(document_ids: Any) -> None:
    """Conflict naming the deployments whose storage or infrastructure is one of
    ``document_ids`` (a list or a sub-query)."""
    users = deployments_using(document_ids, 6)
    if users:
        names = ", ".join(f"{u['flow_name']}/{u['name']}" for u in users[:5])
        more = " and others" if len(users) > 5 else ""
        raise Conflict(
            f"Block document is used by deployment {names}{more}; change or "
            "delete the deployment first."
        )


# ---------------------------------------------------------------- system block types
def _system_blocks() -> list[dict[str, Any]]:
    with open(SYSTEM_BLOCKS_FILE) as f:
        return json.load(f)


def _system_blocks_installed(entries: list[dict[str, Any]]) -> bool:
    """True if every entry's type exists with its protection and its schema exists: the
    usual case at a start, checked with two queries instead of three statements a type."""
    types = dict(
        BlockType.select(BlockType.slug, BlockType.is_protected)
        .where(BlockType.slug.in_([e["block_type"]["slug"] for e in entries]))
        .tuples()
    )
    checksums = {e["block_schema"]["checksum"] for e in entries}
    found = {
        checksum
        for (checksum,) in BlockSchema.select(BlockSchema.checksum)
        .where(BlockSchema.checksum.in_(list(checksums)))
        .tuples()
    }
    return found == checksums and all(
        types.get(e["block_type"]["slug"]) == e["block_type"]["is_protected"] for e in entries
    )


def install_system_block_types() -> int:
    """Register the system block types and their schemas (app/data/system_blocks.json):
    create the missing ones and mark the types protected as Prefect does. The descriptive
    fields of a type that exists are left as they are (a client may have synced its own).
    Idempotent and safe to run concurrently; returns how many rows were created or changed.
    """
    entries = _system_blocks()
    if _system_blocks_installed(entries):
        return 0
    changed = 0
    now = utcnow()
    with database.atomic():
        for entry in entries:
            spec = entry["block_type"]
            changed += (
                BlockType.insert(id=uuid.uuid4(), created=now, updated=now, **spec)
                .on_conflict_ignore()
                .as_rowcount()
                .execute()
            ) or 0
            block_type = BlockType.get(BlockType.slug == spec["slug"])
            if block_type.is_protected != spec["is_protected"]:
                (
                    BlockType.update(updated=now, is_protected=spec["is_protected"])
                    .where(BlockType.id == block_type.id)
                    .execute()
                )
                changed += 1
            schema = entry["block_schema"]
            changed += (
                BlockSchema.insert(
                    id=uuid.uuid4(),
                    created=now,
                    updated=now,
                    checksum=schema["checksum"],
                    version=schema["version"],
                    fields=schema["fields"],
                    capabilities=schema["capabilities"],
                    block_type=block_type.id,
                )
                .on_conflict_ignore()
                .as_rowcount()
                .execute()
            ) or 0
    return changed
