"""Domain errors raised by services and orchestration; the API layer maps them to HTTP codes."""


class OrionError(Exception):
    """Base class of every error Orion raises on purpose."""


class ObjectNotFound(OrionError):
    """The requested object does not exist (HTTP 404)."""


class SchemaTooNew(OrionError):
    """The database was migrated by a newer Orion than this one."""


class DatabaseMissing(OrionError):
    """The configured database does not exist and Orion may not, or cannot, create it."""


class Conflict(OrionError):
    """The request cannot be done in the object's current state (HTTP 409)."""


class ObjectAlreadyExists(Conflict):
    """An object with the same unique name already exists (HTTP 409)."""
