"""Base model and column types shared by every Orion table."""

import datetime
import uuid

from peewee import (
    DateTimeField,
    Metadata,
    Model,
    ModelIndex,
    Proxy,
    SchemaManager,
    SqliteDatabase,
    UUIDField,
)

from app.clock import UTC, utcnow
from app.db import database


class UTCDateTimeField(DateTimeField):
    """A timestamp stored as naive UTC and returned timezone-aware.

    Values are written as fixed-width ``YYYY-MM-DD HH:MM:SS.ffffff`` strings, so SQLite (which
    stores text) sorts and compares them correctly; PostgreSQL casts the same literal to its
    ``TIMESTAMP`` column. Aware values in any zone are converted to UTC; naive values are taken
    to be UTC already; ISO-8601 strings are parsed first.
    """

    def db_value(self, value):
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if not isinstance(value, datetime.datetime):
            return value
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")

    def python_value(self, value):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _backend(db):
    """ "sqlite" or "postgres" for a peewee database or a proxy bound to one."""
    db = db.obj if isinstance(db, Proxy) else db
    return "sqlite" if isinstance(db, SqliteDatabase) else "postgres"


class BackendIndex(ModelIndex):
    """An index that only some database backends get, such as PostgreSQL's trigram GIN index.

    ``backends`` names them ("sqlite", "postgres"); ``requires`` are statements to run first
    on those backends (``CREATE EXTENSION IF NOT EXISTS ...``). The models' schema, like the
    migrations', has the index on those backends only, so the two still compare equal.
    """

    def __init__(self, model, fields, backends, requires=(), **kwargs):
        super().__init__(model, fields, **kwargs)
        self.backends = frozenset(backends)
        self.requires = tuple(requires)


class BackendSchema:
    """Schema objects a table has on some backends beside its columns and indexes, such as
    SQLite's full-text index of run names and the triggers keeping it in step.

    ``create`` statements run after the table is created (``IF NOT EXISTS`` forms, as tables
    are created ``safe``), ``drop`` statements before it is dropped, on ``backends`` only;
    ``tables`` names the tables ``create`` makes (a full-text index's own and its shadow
    tables), for whoever counts a schema's tables. Name it in the model's ``Meta.backend_schema``.
    """

    def __init__(self, backends, create, drop, tables):
        self.backends = frozenset(backends)
        self.create = tuple(create)
        self.drop = tuple(drop)
        self.tables = tuple(tables)


class _Metadata(Metadata):
    """Model metadata whose indexes leave out :class:`BackendIndex`es of other backends."""

    def fields_to_index(self):
        backend = _backend(self.database)
        return [
            index
            for index in super().fields_to_index()
            if not isinstance(index, BackendIndex) or backend in index.backends
        ]


class _SchemaManager(SchemaManager):
    """Runs a :class:`BackendIndex`'s ``requires`` statements before creating indexes, and
    the model's :class:`BackendSchema` (``Meta.backend_schema``) with its table."""

    def _backend_schema(self):
        extra = getattr(self.model._meta, "backend_schema", None)
        if extra is not None and _backend(self.database) in extra.backends:
            return extra
        return None

    def create_table(self, safe=True, **options):
        super().create_table(safe=safe, **options)
        extra = self._backend_schema()
        for statement in extra.create if extra else ():
            self.database.execute_sql(statement)

    def drop_table(self, safe=True, **options):
        extra = self._backend_schema()
        for statement in extra.drop if extra else ():
            self.database.execute_sql(statement)
        super().drop_table(safe=safe, **options)

    def create_indexes(self, safe=True):
        for index in self.model._meta.fields_to_index():
            for statement in getattr(index, "requires", ()):
                self.database.execute_sql(statement)
        super().create_indexes(safe=safe)


class BaseModel(Model):
    """UUID primary key plus UTC ``created``/``updated`` stamps (``updated`` indexed)."""

    id = UUIDField(primary_key=True, default=uuid.uuid4)
    created = UTCDateTimeField(default=utcnow)
    updated = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        database = database
        legacy_table_names = False
        # save() writes only the fields assigned since the row was read: a state transition
        # updates a handful of a run's thirty columns. Assign, never mutate JSON in place.
        only_save_dirty = True
        model_metadata_class = _Metadata
        schema_manager_class = _SchemaManager

    def save(self, *args, **kwargs):
        """Save the row, stamping ``updated``."""
        self.updated = utcnow()
        return super().save(*args, **kwargs)
