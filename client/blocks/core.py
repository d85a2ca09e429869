"""``Block``: typed configuration kept on the server as a block document (pydantic v2 models).

A block class declares its fields as a pydantic model does; the server stores its **type**
(slug, name, description), its **schema** (the JSON schema of the fields, found by checksum)
and named **documents** (values of the fields)::

    class Warehouse(Block):
        host: str
        password: SecretStr

    Warehouse(host="db", password="s3cret").save("prod")      # a document named "prod"
    Warehouse.load("prod").password.get_secret_value()         # "s3cret"
    Block.load("warehouse/prod")                               # any type: "slug/name"

Interoperable with Prefect 2.7: the schema is written in pydantic 1's JSON schema dialect
(``definitions``, no ``null`` in optional fields, ``allOf`` around nested models) plus the
three keys Prefect adds (``block_type_slug``, ``secret_fields``, ``block_schema_references``),
and its checksum is computed as Prefect computes it (sha256 of the sorted JSON, without
``secret_fields`` and without the definitions of nested blocks), so the system blocks of
:mod:`client.blocks.system`, :mod:`client.blocks.filesystems` and
:mod:`client.infrastructure.process` find the schemas Prefect 2.7.12 registered, and documents
either side saves load on the other.

Secret fields (pydantic's ``SecretStr``/``SecretBytes``, anywhere in nested models or blocks)
print as ``**********``; only :meth:`Block.save` sends their values, and the server encrypts
them. Nested blocks are saved inline, or as a reference to their own document when they were
saved or loaded first; loading resolves both. ``save``, ``load`` and
``register_type_and_schema`` take ``client=`` (an OrionClient); by default they use the SDK's
client (the one flows use, configured by ``ORION_*`` variables).
"""

import abc
import enum
import hashlib
import inspect
import json
import re
import textwrap
import typing
from collections.abc import Callable, Mapping

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretBytes, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema, to_jsonable_python

from client.api.exceptions import ObjectAlreadyExists, ObjectNotFound

if typing.TYPE_CHECKING:
    from client.api.client import OrionClient

__all__ = [
    "Block",
    "BlockLoadError",
    "InvalidBlockRegistration",
    "SecretStr",
    "SecretBytes",
    "block_class_for_slug",
]

# Schema version of blocks that name none (Prefect's DEFAULT_BLOCK_SCHEMA_VERSION).
DEFAULT_SCHEMA_VERSION = "non-versioned"
# Prefect 2.7's docstring sections that end a block's description.
_SECTION = re.compile(
    r"^\s*(Args|Arguments|Attributes|Example|Examples|Returns|Raises|Note|"
    r"Notes|Warning)s?:\s*$"
)
_DEFINITIONS_REF = "#/definitions/"
# Block classes by type slug: what ``Block.load("slug/name")`` instantiates.
_REGISTRY: dict[str, type["Block"]] = {}


class InvalidBlockRegistration(Exception):
    """``register_type_and_schema`` (or ``save``) was called on an abstract block class."""


class BlockLoadError(Exception):
    """A block document could not be found or turned into a block; the message says why."""


def _import_builtin_blocks() -> None:
    """Import the blocks this package ships, so their slugs are known to ``load``."""
    import client.blocks.filesystems
    import client.blocks.system
    import client.infrastructure.docker
    import client.infrastructure.kubernetes
    import client.infrastructure.process  # noqa: F401


def block_class_for_slug(slug: str) -> type["Block"] | None:
    """The block class registered for ``slug`` (built-in or any imported subclass), or None."""
    if slug not in _REGISTRY:
        _import_builtin_blocks()
    return _REGISTRY.get(slug)


def slugify(name: str) -> str:
    """Prefect's slug of a block type name: lowercase words joined by "-"."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name) if name.isidentifier() else name
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# -- schema: pydantic 1's dialect, as Prefect 2.7 writes it -------------------------------------


class _PydanticV1Schema(GenerateJsonSchema):
    """Pydantic 2's JSON schema generator speaking pydantic 1's dialect where they differ:
    optional fields are their inner type (no ``anyOf`` with ``null``), a ``None`` default is
    left out, a literal is an ``enum`` with its type (no ``const``) and a dict of any values
    is a bare ``object`` (no ``additionalProperties: true``)."""

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        if json_schema.get("additionalProperties") is True:
            json_schema.pop("additionalProperties")
        return json_schema

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", 0) is None:
            json_schema.pop("default")
        return json_schema

    def enum_schema(self, schema: core_schema.EnumSchema) -> JsonSchemaValue:
        # pydantic 1: the enum's docstring (else "An enumeration.") and its values, with a
        # type only for an enum that is also a str, int or float
        cls = schema["cls"]
        result: JsonSchemaValue = {
            "title": cls.__name__,
            "description": inspect.cleandoc(cls.__doc__ or "An enumeration."),
            "enum": [to_jsonable_python(member.value) for member in schema["members"]],
        }
        for base, name in ((str, "string"), (int, "integer"), (float, "number")):
            if issubclass(cls, base):
                result["type"] = name
                break
        return result

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        values = [
            to_jsonable_python(v.value if hasattr(v, "value") else v) for v in schema["expected"]
        ]
        result: JsonSchemaValue = {"enum": values}
        kinds = {type(v) for v in values}
        names = {str: "string", bool: "boolean", int: "integer", float: "number"}
        if len(kinds) == 1 and next(iter(kinds)) in names:
            result["type"] = names[next(iter(kinds))]
        return result


def _annotation_types(annotation: typing.Any) -> list[typing.Any]:
    """The classes an annotation names at its top level (Optional/Union/Annotated unpacked)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _annotation_types(typing.get_args(annotation)[0])
    if origin is typing.Union or (origin is not None and origin.__name__ == "UnionType"):
        return [t for arg in typing.get_args(annotation) for t in _annotation_types(arg)]
    return [annotation]


def _is_block_class(value: typing.Any) -> bool:
    return inspect.isclass(value) and issubclass(value, Block)


def _secret_fields(name: str, annotation: typing.Any, found: list[str]) -> None:
    """Append to ``found`` the dotted names of the secret values under field ``name``."""
    for kind in _annotation_types(annotation):
        if kind in (SecretStr, SecretBytes):
            found.append(name)
        elif _is_block_class(kind):
            found.extend(f"{name}.{s}" for s in kind.model_json_schema_v1()["secret_fields"])
        elif inspect.isclass(kind) and issubclass(kind, BaseModel):
            for sub, field in kind.model_fields.items():
                _secret_fields(f"{name}.{sub}", field.annotation, found)


def _field_title(name: str, field: FieldInfo) -> str:
    return field.title or name.replace("_", " ").title()


def _block_schema_extra(schema: dict[str, typing.Any], cls: type["Block"]) -> None:
    """Prefect's additions to a block's schema (pydantic calls this for every block model,
    nested ones included)."""
    schema["block_type_slug"] = cls.get_block_type_slug()
    description = cls.get_description()
    if description:
        schema["description"] = description
    else:
        schema.pop("description", None)
    secrets: list[str] = []
    references: dict[str, typing.Any] = {}
    schema["secret_fields"] = secrets
    schema["block_schema_references"] = references
    for name, field in cls.model_fields.items():
        _secret_fields(name, field.annotation, secrets)
        blocks = [t for t in _annotation_types(field.annotation) if _is_block_class(t)]
        if blocks:
            refs = [t._schema_reference() for t in blocks]
            references[name] = refs[0] if len(refs) == 1 else refs
        prop = schema.get("properties", {}).get(name)
        if prop is not None and "$ref" in prop and (len(prop) > 1 or field.title):
            # pydantic 1 wrote a reference with a description, a default or an explicit title
            # as {"title", ..., "allOf": [$ref]}, leaving out the title of an enum unless it
            # was given; a bare reference stays bare.
            ref = prop.pop("$ref")
            enums = [
                t
                for t in _annotation_types(field.annotation)
                if inspect.isclass(t) and issubclass(t, enum.Enum)
            ]
            if field.title or not enums:
                prop["title"] = _field_title(name, field)
            prop["allOf"] = [{"$ref": ref}]


def _remove_key(value: typing.Any, key: str) -> typing.Any:
    if isinstance(value, dict):
        return {k: _remove_key(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_remove_key(v, key) for v in value]
    return value


def _references(value: typing.Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        for item in value.values():
            found.extend(_references(item))
        return found
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []


def _non_block_definitions(
    node: typing.Any, definitions: Mapping[str, typing.Any]
) -> dict[str, typing.Any]:
    """The definitions ``node`` reaches without going through a nested block's."""
    found: dict[str, typing.Any] = {}
    for ref in _references(node):
        key = ref.replace(_DEFINITIONS_REF, "")
        definition = definitions.get(key)
        if definition and definition.get("block_type_slug") is None and key not in found:
            found[key] = definition
            found.update(_non_block_definitions(definition, definitions))
    return found


def schema_checksum(fields: Mapping[str, typing.Any]) -> str:
    """Prefect's checksum of a block schema's ``fields``: ``sha256:<hex>`` of its sorted JSON,
    without ``secret_fields`` and without the definitions of nested blocks."""
    checked: dict[str, typing.Any] = _remove_key(fields, "secret_fields")
    if checked.get("definitions"):
        kept = _non_block_definitions(checked, checked["definitions"])
        if kept:
            checked["definitions"] = kept
        else:
            checked.pop("definitions")
    digest = hashlib.sha256(json.dumps([[checked], {}], sort_keys=True).encode())
    return f"sha256:{digest.hexdigest()}"


def _reveal(value: typing.Any) -> typing.Any:
    """``value`` with secrets in clear, as JSON-compatible data (for the API only)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode()
    if isinstance(value, Block):
        return value._document_data(inline=True)
    if isinstance(value, BaseModel):
        return {name: _reveal(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _reveal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_reveal(v) for v in value]
    return to_jsonable_python(value)


def _sdk_client(client: "OrionClient | None") -> "OrionClient":
    if client is not None:
        return client
    from client.sdk.engine import get_sdk_client

    return get_sdk_client()


# -- the base class ---------------------------------------------------------------------------


class Block(BaseModel, abc.ABC):
    """Base class of blocks (see the module docstring).

    Class attributes a subclass may set: ``_block_type_name`` (default: the class name),
    ``_block_type_slug`` (default: the name slugified), ``_description`` (default: the
    docstring up to its first section), ``_logo_url``, ``_documentation_url``,
    ``_code_example``, ``_block_schema_capabilities`` (inherited ones are added) and
    ``_block_schema_version`` (default ``non-versioned``).
    """

    model_config = ConfigDict(
        json_schema_extra=_block_schema_extra, extra="ignore", validate_assignment=True
    )

    _block_type_name: typing.ClassVar[str | None] = None
    _block_type_slug: typing.ClassVar[str | None] = None
    _description: typing.ClassVar[str | None] = None
    _logo_url: typing.ClassVar[str | None] = None
    _documentation_url: typing.ClassVar[str | None] = None
    _code_example: typing.ClassVar[str | None] = None
    _block_schema_capabilities: typing.ClassVar[list[str] | None] = None
    _block_schema_version: typing.ClassVar[str | None] = None
    # Ids the server gave this class's type and schema (set by register_type_and_schema).
    _block_type_id: typing.ClassVar[str | None] = None
    _block_schema_id: typing.ClassVar[str | None] = None

    _block_document_id: str | None = PrivateAttr(default=None)
    _block_document_name: str | None = PrivateAttr(default=None)
    _is_anonymous: bool = PrivateAttr(default=False)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: typing.Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._block_type_id = None
        cls._block_schema_id = None
        if not inspect.isabstract(cls) and abc.ABC not in cls.__bases__:
            _REGISTRY[cls.get_block_type_slug()] = cls

    @model_validator(mode="wrap")
    @classmethod
    def _dispatch(cls, data: typing.Any, handler: Callable[[typing.Any], typing.Any]) -> typing.Any:
        """Data naming a more specific block type (``block_type_slug``, as Prefect writes
        nested blocks) becomes an instance of that type's class."""
        if isinstance(data, dict) and isinstance(data.get("block_type_slug"), str):
            target = block_class_for_slug(data["block_type_slug"])
            if target is not None and target is not cls and issubclass(target, cls):
                return target.model_validate(data)
        return handler(data)

    def __str__(self) -> str:
        return repr(self)

    # -- type and schema --------------------------------------------------------------------

    @classmethod
    def get_block_type_name(cls) -> str:
        return cls._block_type_name or cls.__name__

    @classmethod
    def get_block_type_slug(cls) -> str:
        return slugify(cls._block_type_slug or cls.get_block_type_name())

    @classmethod
    def get_block_capabilities(cls) -> frozenset[str]:
        """The capabilities of this class and its bases (e.g. ``read-path``)."""
        return frozenset(
            c
            for base in cls.__mro__
            for c in getattr(base, "_block_schema_capabilities", None) or ()
        )

    @classmethod
    def get_block_schema_version(cls) -> str:
        return cls._block_schema_version or DEFAULT_SCHEMA_VERSION

    @classmethod
    def get_description(cls) -> str | None:
        """``_description``, else the class docstring's text before its first section."""
        if cls._description is not None:
            return cls._description
        doc = cls.__dict__.get("__doc__")
        if not doc:
            return None
        lines = textwrap.dedent("\n".join(doc.splitlines()[1:])).splitlines()
        text = [doc.splitlines()[0].strip(), *lines]
        for index, line in enumerate(text):
            if _SECTION.match(line):
                text = text[:index]
                break
        return "\n".join(text).strip() or None

    @classmethod
    def model_json_schema_v1(cls) -> dict[str, typing.Any]:
        """The block schema's ``fields``: its JSON schema as Prefect 2.7 writes it."""
        schema = cls.model_json_schema(
            ref_template=_DEFINITIONS_REF + "{model}", schema_generator=_PydanticV1Schema
        )
        if "$defs" in schema:
            schema["definitions"] = schema.pop("$defs")
        return schema

    @classmethod
    def schema_checksum(cls) -> str:
        return schema_checksum(cls.model_json_schema_v1())

    @classmethod
    def _schema_reference(cls) -> dict[str, str]:
        return {
            "block_type_slug": cls.get_block_type_slug(),
            "block_schema_checksum": cls.schema_checksum(),
        }

    @classmethod
    def _block_type_body(cls) -> dict[str, typing.Any]:
        body = {
            "name": cls.get_block_type_name(),
            "slug": cls.get_block_type_slug(),
            "logo_url": cls._logo_url,
            "documentation_url": cls._documentation_url,
            "description": cls.get_description(),
            "code_example": cls._code_example,
        }
        return {k: v for k, v in body.items() if v is not None or k in ("name", "slug")}

    @classmethod
    def _check_registrable(cls) -> None:
        if cls is Block or inspect.isabstract(cls) or abc.ABC in cls.__bases__:
            raise InvalidBlockRegistration(
                f"{cls.__name__} is an abstract block class: register or save a subclass."
            )

    @classmethod
    def register_type_and_schema(cls, client: "OrionClient | None" = None) -> str:
        """Make sure the server has this block's type (its display fields updated) and
        schema, nested blocks' first; idempotent. Returns the schema's id."""
        cls._check_registrable()
        orion = _sdk_client(client)
        for field in cls.model_fields.values():
            for kind in _annotation_types(field.annotation):
                if (
                    _is_block_class(kind)
                    and not inspect.isabstract(kind)
                    and abc.ABC not in kind.__bases__
                ):
                    kind.register_type_and_schema(client=orion)
        body = cls._block_type_body()
        try:
            block_type = orion.read_block_type_by_slug(body["slug"])
            if not block_type.get("is_protected"):
                orion.update_block_type(block_type.id, body)
        except ObjectNotFound:
            try:
                block_type = orion.create_block_type(body)
            except ObjectAlreadyExists:  # registered meanwhile by another process
                block_type = orion.read_block_type_by_slug(body["slug"])
        fields = cls.model_json_schema_v1()
        checksum, version = schema_checksum(fields), cls.get_block_schema_version()
        try:
            block_schema = orion.read_block_schema_by_checksum(checksum, version=version)
        except ObjectNotFound:
            block_schema = orion.create_block_schema(
                {
                    "fields": fields,
                    "block_type_id": block_type.id,
                    "capabilities": sorted(cls.get_block_capabilities()),
                    "version": version,
                }
            )
        cls._block_type_id = block_type.id
        cls._block_schema_id = block_schema.id
        return block_schema.id

    # -- documents --------------------------------------------------------------------------

    def _document_data(self, inline: bool = False) -> dict[str, typing.Any]:
        """The document's ``data``: field values with secrets in clear; a nested block with
        a document of its own as a reference to it, others inline (with their slug)."""
        data: dict[str, typing.Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            key = field.alias or name
            if isinstance(value, Block) and value._block_document_id is not None:
                data[key] = {"$ref": {"block_document_id": value._block_document_id}}
            else:
                data[key] = _reveal(value)
        if inline:
            data["block_type_slug"] = self.get_block_type_slug()
        return data

    def save(
        self,
        name: str | None = None,
        overwrite: bool = False,
        client: "OrionClient | None" = None,
        *,
        is_anonymous: bool = False,
    ) -> str:
        """Save the block's values as the document ``name`` of its type (registering the
        type and schema first); returns the document's id. A name already in use is a
        ValueError unless ``overwrite=True``, which replaces that document's values.
        ``is_anonymous=True`` saves a nameless document (for system use, e.g. results)."""
        if (name is None) == (not is_anonymous):
            raise ValueError("Give a block document either a name or is_anonymous=True.")
        orion = _sdk_client(client)
        type(self).register_type_and_schema(client=orion)
        body: dict[str, typing.Any] = {
            "data": self._document_data(),
            "block_schema_id": self._block_schema_id,
            "block_type_id": self._block_type_id,
            "is_anonymous": is_anonymous,
        }
        if name is not None:
            body["name"] = name
        try:
            document = orion.create_block_document(body)
        except ObjectAlreadyExists:
            if not overwrite or name is None:  # anonymous names are generated unique
                raise ValueError(
                    f"A {self.get_block_type_slug()!r} block named {name!r} already exists; "
                    "save with overwrite=True to replace its values."
                ) from None
            existing = orion.read_block_document_by_name(
                name, self.get_block_type_slug(), include_secrets=False
            )
            orion.update_block_document(
                existing.id,
                body["data"],
                block_schema_id=self._block_schema_id,
                merge_existing_data=False,
            )
            document = orion.read_block_document(existing.id, include_secrets=False)
        self._block_document_id = document.id
        self._block_document_name = document.get("name")
        self._is_anonymous = is_anonymous
        return document.id

    @classmethod
    def load(cls, name: str, client: "OrionClient | None" = None) -> typing.Self:
        """The block saved as ``name``: ``"slug/name"`` for any type, or a document name of
        this class's type. BlockLoadError when there is none or its data does not fit."""
        orion = _sdk_client(client)
        if "/" in name:
            slug, document_name = name.split("/", 1)
        elif cls is Block:
            raise BlockLoadError(f"Block name {name!r} is not 'block-type-slug/name'.")
        else:
            slug, document_name = cls.get_block_type_slug(), name
        try:
            document = orion.read_block_document_by_name(document_name, slug)
        except ObjectNotFound:
            raise BlockLoadError(f"No {slug!r} block document named {document_name!r}.") from None
        return cls._from_document(document)

    @classmethod
    def load_by_id(cls, block_document_id: str, client: "OrionClient | None" = None) -> typing.Self:
        """The block saved as the document with this id (see :meth:`load`)."""
        try:
            document = _sdk_client(client).read_block_document(block_document_id)
        except ObjectNotFound:
            raise BlockLoadError(f"No block document {block_document_id}.") from None
        return cls._from_document(document)

    @classmethod
    def _from_document(cls, document: typing.Any) -> typing.Self:
        slug = (document.get("block_type") or {}).get("slug") or (
            (document.get("block_schema") or {}).get("block_type") or {}
        ).get("slug")
        target = block_class_for_slug(slug) if slug else None
        if target is None or not issubclass(target, cls):
            if cls is Block or inspect.isabstract(cls):
                raise BlockLoadError(
                    f"Block document {document.get('name') or document.id!r} is of type "
                    f"{slug!r}, which no imported block class implements."
                )
            target = cls
        data = dict(document.get("data") or {})
        try:
            block = target.model_validate(data)
        except ValueError as error:
            raise BlockLoadError(
                f"Block document {document.get('name') or document.id!r} does not fit "
                f"{target.__name__}: {error}"
            ) from None
        block._block_document_id = document.id
        block._block_document_name = document.get("name")
        block._is_anonymous = bool(document.get("is_anonymous"))
        block._nested_metadata(document.get("block_document_references") or {})
        return block

    def _nested_metadata(self, references: Mapping[str, typing.Any]) -> None:
        """Give nested blocks loaded from references their document's id and name."""
        for field, reference in references.items():
            nested = getattr(self, field, None)
            info = (reference or {}).get("block_document") or {}
            if isinstance(nested, Block):
                nested._block_document_id = info.get("id")
                nested._block_document_name = info.get("name")
                nested._is_anonymous = bool(info.get("is_anonymous"))
                nested._nested_metadata(info.get("block_document_references") or {})
