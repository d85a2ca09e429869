"""Domain errors raised by services and orchestration; the API layer maps them to HTTP codes."""


class OrionError(Exception):
    """Base class of every error Orion raises on purpose."""


class BadSetting(OrionError, ValueError):
    """A setting has a value Orion refuses (the message names the ``ORION_`` variable);
    raised when the settings are loaded, so the server, workers and commands refuse to
    start."""


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


class Forbidden(OrionError):
    """The object may not be changed this way, e.g. a protected block type (HTTP 403)."""


class TooLarge(OrionError):
    """What was asked for is more than the server answers at once (HTTP 400), e.g. a flow run
    graph with more nodes than its bound."""


class InvalidData(OrionError):
    """Request data the API layer accepted fails a check only a service can make (HTTP 422).

    ``loc`` is where, as in a validation error (``["body", "data", "bucket"]``); the message
    never quotes the offending value, which may be a secret.
    """

    def __init__(self, message, loc):
        super().__init__(message)
        self.loc = list(loc)


class EncryptionKeyMismatch(OrionError):
    """This server's encryption key is not the one the database's secrets are encrypted with."""


class InvalidSetting(OrionError):
    """A server setting that cannot be used (the message names it); refused at start."""
