"""Blocks holding one value: ``Secret``, ``JSON``, ``String`` and ``DateTime``.

Prefect 2.7.12's system block types of the same slugs (``secret``, ``json``, ``string``,
``date-time``): same fields, descriptions and schema checksums, so documents saved here load
there and back. ``Secret``'s value prints as ``**********``; ``.get()`` returns it.
"""

import datetime
import typing

from pydantic import Field, SecretStr

from client.blocks.core import Block

__all__ = ["Secret", "JSON", "String", "DateTime", "PREFECT_SYSTEM_SCHEMA_VERSION"]

# The schema version Prefect 2.7.12 gives its system blocks; ours register under it so both
# find one schema by (checksum, version).
PREFECT_SYSTEM_SCHEMA_VERSION = "2.7.12"


class Secret(Block):
    """A secret string (a password, a token); it never prints.

    Secret(value="s3cret").save("db-password")
    Secret.load("db-password").get()     # "s3cret"
    """

    _description = (
        "A block that represents a secret value. The value stored in this block "
        "will be obfuscated when\nthis block is logged or shown in the UI."
    )
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    value: SecretStr = Field(description="A string value that should be kept secret.")

    def get(self) -> str:
        """The secret's value, in clear."""
        return self.value.get_secret_value()


class JSON(Block):
    """Any JSON-compatible value (a dict, a list, a number ...)."""

    _description = "A block that represents JSON"
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    value: typing.Any = Field(description="A JSON-compatible value.")


class String(Block):
    """A string."""

    _description = "A block that represents a string"
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    value: str = Field(description="A string value.")


class DateTime(Block):
    """A date and time (ISO 8601 on the wire)."""

    _block_type_name = "Date Time"
    _description = "A block that represents a datetime"
    _block_schema_version = PREFECT_SYSTEM_SCHEMA_VERSION

    value: datetime.datetime = Field(description="An ISO 8601-compatible datetime value.")
