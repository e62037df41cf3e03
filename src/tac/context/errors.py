"""The errors raised by :mod:`tac.context` (and re-exported from it).

One tree, so that callers catch what they mean and nothing from ``httpx`` leaks out::

    TACError                      base of every opentac error
    ├── TwilioAPIError            Twilio answered, but not with the 2xx expected
    │   ├── AuthenticationError   401 / 403: bad credentials or not allowed
    │   ├── NotFoundError         404
    │   ├── ConflictError         409 (``conflicting_resource_id`` when Twilio names it)
    │   ├── RateLimitedError      429 (``retry_after`` seconds when Twilio says)
    │   ├── ServerError           5xx
    │   └── InvalidResponseError  a 2xx whose body is not the JSON expected
    └── TwilioTransportError      no answer: connection failed, dropped or timed out
        └── TwilioTimeoutError    a connect, pool, read or write timeout

Other 4xx answers (400, 412, ...) raise :class:`TwilioAPIError` itself. ``TACError`` also roots
the errors of the other packages (``TACConfigError``, ``WebhookPayloadError``, ``HandoffError``,
``RelayProtocolError``, …), each of which keeps its built-in base (``ValueError``, ...).

:attr:`TwilioTransportError.request_sent` says whether the request may have reached Twilio:
``False`` means it surely did not (connection refused, connect or pool timeout), so a retry cannot
duplicate anything; ``True`` means it is unknown (read/write timeout, connection dropped after
sending). Only the transport module (``tac.context._http``) converts ``httpx`` exceptions.

``str(error)`` is one line: method, URL path, status, Twilio code and message. It never holds
credentials (they travel in the ``Authorization`` header, which errors do not keep).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tac._errors import TACError

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "InvalidResponseError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "TACError",
    "TwilioAPIError",
    "TwilioTimeoutError",
    "TwilioTransportError",
    "outcome_uncertain",
]


def _path_of(url: str) -> str:
    path = urlsplit(url).path
    return path or "/"


class TwilioAPIError(TACError):
    """Twilio answered with an error status (or a 2xx that cannot be used).

    Attributes:
        status: the HTTP status code.
        code: Twilio's error code (``20404``, ...), when the body carries one.
        message: Twilio's message, or a short description when the body has none.
        more_info: the documentation link Twilio sends, if any.
        method: the HTTP method of the request.
        url: the full request URL (it never contains credentials).
        details: the parsed body (a dict for JSON, else the text, possibly truncated).
        headers: the response headers.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        code: int | None = None,
        more_info: str | None = None,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info
        self.method = method.upper()
        self.url = url
        self.details = details
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(str(self))

    @property
    def request_id(self) -> str | None:
        """Twilio's request id (``Twilio-Request-Id`` header), useful for support tickets."""
        for key, value in self.headers.items():
            if key.lower() == "twilio-request-id":
                return value
        return None

    def __str__(self) -> str:
        code = f" (Twilio error {self.code})" if self.code is not None else ""
        return f"{self.method} {_path_of(self.url)} -> {self.status}{code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code}, "
            f"method={self.method!r}, path={_path_of(self.url)!r}, message={self.message!r})"
        )


class AuthenticationError(TwilioAPIError):
    """401 or 403: the API key/secret is wrong, revoked, or not allowed to do this."""


class NotFoundError(TwilioAPIError):
    """404: the resource does not exist (or is not visible to these credentials)."""


class ConflictError(TwilioAPIError):
    """409: the resource conflicts with an existing one.

    ``conflicting_resource_id`` is the existing resource's id when Twilio sends it in the
    ``X-Conflicting-Resource-Id`` header (Conversation Orchestrator does on create).
    """

    @property
    def conflicting_resource_id(self) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == "x-conflicting-resource-id":
                return value.strip() or None
        return None


class RateLimitedError(TwilioAPIError):
    """429: too many requests. ``retry_after`` is Twilio's ``Retry-After`` in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(TwilioAPIError):
    """5xx: Twilio failed or is unavailable."""


class InvalidResponseError(TwilioAPIError):
    """A 2xx answer whose body is not the JSON expected (not JSON, wrong shape, missing field)."""


class TwilioTransportError(TACError):
    """No usable answer from Twilio: the connection failed, was dropped, or timed out.

    ``request_sent`` is ``False`` when the request surely never reached Twilio (retrying is
    harmless) and ``True`` when it may have (retrying a non-idempotent request could duplicate
    it).
    """

    def __init__(self, message: str, *, method: str, url: str, request_sent: bool) -> None:
        self.message = message
        self.method = method.upper()
        self.url = url
        self.request_sent = request_sent
        super().__init__(str(self))

    def __str__(self) -> str:
        sent = "may have reached Twilio" if self.request_sent else "not sent"
        return f"{self.method} {_path_of(self.url)} failed ({sent}): {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={self.method!r}, path={_path_of(self.url)!r}, "
            f"request_sent={self.request_sent}, message={self.message!r})"
        )


class TwilioTimeoutError(TwilioTransportError):
    """A timeout: connect and pool timeouts are ``request_sent=False``; read/write are ``True``."""


def outcome_uncertain(error: BaseException) -> bool:
    """Whether a failed request may still have taken effect at Twilio.

    ``True`` for a transport error once the request may have been sent, and for a 5xx other
    than a 503 carrying ``Retry-After`` (an explicit "come back later"). ``False`` for errors
    where Twilio surely did nothing: connection refused, connect/pool timeouts, 4xx answers.
    A messaging channel passes this to ``on_error`` as ``reply_uncertain``.
    """
    if isinstance(error, TwilioTransportError):
        return error.request_sent
    if isinstance(error, ServerError):
        rejected = error.status == 503 and any(
            key.lower() == "retry-after" for key in error.headers
        )
        return not rejected
    return False
