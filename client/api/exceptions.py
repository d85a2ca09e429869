"""What the client raises. Every HTTP error carries the server's own message.

``OrionClientError`` is the base of everything here. An error answer from the server raises an
:class:`OrionHTTPError` subclass chosen by status code; ``str(error)`` is the server's message
(for 422, the message followed by each invalid field as ``location: problem``), and
``error.status_code`` and ``error.body`` (the parsed JSON, or the text) are kept. A server that
cannot be reached even after the retries raises :class:`ServerUnreachable`.
"""

from typing import Any

__all__ = [
    "OrionClientError",
    "ServerUnreachable",
    "NotAnOrionAPI",
    "OrionHTTPError",
    "BadRequest",
    "Unauthorized",
    "ObjectNotFound",
    "ObjectAlreadyExists",
    "ValidationError",
    "RequestTooLarge",
    "TooManyRequests",
    "ServerError",
    "ServiceUnavailable",
    "error_for_response",
]


class OrionClientError(Exception):
    """Base of every error the Orion client raises."""


class ServerUnreachable(OrionClientError):
    """The server could not be reached (connection refused, reset, timed out) after retrying."""


class NotAnOrionAPI(OrionClientError):
    """The URL answered with a web page, not the API: most often an ``ORION_API_URL``
    without its ``/api`` (the dashboard answers there)."""


class OrionHTTPError(OrionClientError):
    """The server answered with an error status; ``str()`` is its message."""

    def __init__(self, message: str, status_code: int, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body


class BadRequest(OrionHTTPError):
    """400: e.g. a malformed or too old ``X-PREFECT-API-VERSION``."""


class Unauthorized(OrionHTTPError):
    """401/403: the API key is missing or wrong."""


class ObjectNotFound(OrionHTTPError):
    """404: the object (or route) does not exist."""


class ObjectAlreadyExists(OrionHTTPError):
    """409: the request conflicts with existing data."""


class RequestTooLarge(OrionHTTPError):
    """413: the request body is larger than the server accepts."""


class ValidationError(OrionHTTPError):
    """422: the server refused the request body, query or path; ``detail`` lists why.

    ``detail`` is the server's list of ``{"loc": [...], "msg": ..., "type": ...}``.
    """

    def __init__(self, message: str, status_code: int, body: Any = None) -> None:
        super().__init__(message, status_code, body)
        self.detail = body.get("exception_detail", []) if isinstance(body, dict) else []


class Locked(OrionHTTPError):
    """423: a global concurrency limit has no free slots; ``retry_after`` is the server's
    estimate of the seconds to wait (or None)."""

    def __init__(self, message: str, status_code: int, body: Any = None) -> None:
        super().__init__(message, status_code, body)
        wait = body.get("retry_after") if isinstance(body, dict) else None
        self.retry_after = float(wait) if isinstance(wait, int | float) else None


class TooManyRequests(OrionHTTPError):
    """429 after every retry."""


class ServerError(OrionHTTPError):
    """5xx: the server failed (after every retry)."""


class ServiceUnavailable(ServerError):
    """503: the server or its database is unavailable (after every retry)."""


_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: ObjectNotFound,
    409: ObjectAlreadyExists,
    413: RequestTooLarge,
    422: ValidationError,
    423: Locked,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def _message(status_code: int, body: Any) -> str:
    if isinstance(body, dict):
        if "exception_detail" in body:
            lines = [str(body.get("exception_message") or "Invalid request.")]
            for item in body.get("exception_detail") or ():
                if isinstance(item, dict):
                    loc = ".".join(str(part) for part in item.get("loc") or ())
                    lines.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            return "\n".join(lines)
        for key in ("detail", "exception_message", "message"):
            if body.get(key):
                return str(body[key])
    if isinstance(body, str) and body.strip():
        return body.strip()[:2000]
    return f"HTTP {status_code}"


def error_for_response(status_code: int, body: Any) -> OrionHTTPError:
    """The exception for an error answer: class by status, the server's message as text."""
    cls = _BY_STATUS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else OrionHTTPError
    return cls(_message(status_code, body), status_code, body)
