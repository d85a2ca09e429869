"""The server's clock: the one place that says what "now" is (timezone-aware, UTC).

A leaf module (stdlib only) so that every layer, blueprints included, may import it.
"""

import datetime

UTC = datetime.UTC


def utcnow():
    """The current time, timezone-aware in UTC."""
    return datetime.datetime.now(UTC)
