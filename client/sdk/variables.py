"""Variables: named text values kept on the Orion server, read by flows at run time.

    from client import variables

    variables.set("warehouse_host", "10.0.0.5", tags=["prod"])
    host = variables.get("warehouse_host", default="localhost")

They go through the client flows and tasks use (``client.sdk.engine.get_sdk_client``): the
server of ``ORION_API_URL``, or the ephemeral API. A name is at most 255 lowercase letters,
numbers and underscores; a value at most 5,000 characters (the server refuses others with a
ValidationError saying why).
"""

from collections.abc import Iterable

from client.api.exceptions import ObjectAlreadyExists


def get(name: str, default: str | None = None) -> str | None:
    """The value of the variable ``name``, or ``default`` if there is none."""
    from client.sdk.engine import get_sdk_client

    variable = get_sdk_client().read_variable_by_name(name)
    return default if variable is None else variable["value"]


def set(name: str, value: str, tags: Iterable[str] | None = None, overwrite: bool = False) -> None:
    """Create the variable ``name`` holding ``value``; with ``overwrite``, change the value
    (and the tags, if given) of an existing one. ObjectAlreadyExists if it exists and
    ``overwrite`` is false."""
    from client.sdk.engine import get_sdk_client

    orion = get_sdk_client()
    try:
        orion.create_variable(name, value, tags or ())
    except ObjectAlreadyExists:
        if not overwrite:
            raise
        orion.update_variable_by_name(name, value, tags)
