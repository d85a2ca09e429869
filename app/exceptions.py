"""Domain errors raised by services and orchestration; the API layer maps them to HTTP codes."""


class OrionError(Exception):
    """Base class of every error Orion raises on purpose."""


class ObjectNotFound(OrionError):
    """The requested object does not exist (HTTP 404)."""


class ObjectAlreadyExists(OrionError):
    """A uniqueness rule forbids the write (HTTP 409)."""


class InvalidRequest(OrionError):
    """The request is well-formed but cannot be carried out (HTTP 409 or 422 by context)."""


class DatabaseUnavailable(OrionError):
    """The database cannot be reached (HTTP 503)."""


class SchemaTooNew(OrionError):
    """The database was migrated by a newer Orion than this one."""
