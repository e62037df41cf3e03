"""Google Cloud REST calls for the connectors: OAuth tokens from ``google.auth`` (or an injected
provider), sent through TAC's pooled HTTP sender (``tac.http.sender``), never a blocking call on
the event loop."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from tac_google._version import __version__

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "GoogleAPIError",
    "GoogleREST",
    "TokenProvider",
    "encode_name",
    "iter_json",
    "parse_agent_id",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"

TokenProvider = Callable[[], "str | Awaitable[str]"]
"""Returns an OAuth 2.0 access token for Google Cloud (sync or async)."""


class GoogleAPIError(Exception):
    """A Google Cloud REST call failed.

    Attributes:
        status: the HTTP status (0 when no answer came back).
        code: Google's status name (``NOT_FOUND``, ``FAILED_PRECONDITION``, …), when given.
        message: Google's message, or the start of the body.
        url: the URL called.
    """

    def __init__(self, status: int, code: str | None, message: str, url: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.url = url
        label = f"HTTP {status}" + (f" {code}" if code else "") if status else "no answer"
        super().__init__(f"Google API {label} from {url}: {message}")


def _error(response: httpx.Response, url: str) -> GoogleAPIError:
    code: str | None = None
    message = response.text[:200]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
        code = str(error["status"]) if error.get("status") else None
        message = str(error.get("message") or message)
    return GoogleAPIError(response.status_code, code, message, url)


def _is_user_credentials(credentials: Any) -> bool:
    if credentials is None:
        return False
    try:
        from google.oauth2.credentials import Credentials
    except ImportError:  # pragma: no cover - google-auth is what produced them
        return False
    return isinstance(credentials, Credentials)


def parse_agent_id(agent_id: str, collection: str) -> tuple[str, str, str]:
    """``agent_id``, ``projects/<project>/locations/<location>/<collection>/<id>`` (slashes
    around it dropped), with its project and location.

    Raises:
        ValueError: ``agent_id`` is not such a resource name.
    """
    name = agent_id.strip("/")
    match = re.fullmatch(rf"projects/([^/]+)/locations/([^/]+)/{collection}/[^/]+", name)
    if match is None:
        raise ValueError(
            f"agent_id must be 'projects/<project>/locations/<location>/{collection}/"
            f"<{collection.removesuffix('s')}-id>', got {agent_id!r}"
        )
    return name, match[1], match[2]


def encode_name(name: str) -> str:
    """A resource name (``projects/p/locations/l/…``) for a URL path, slashes kept."""
    return quote(name, safe="/:@-._~")


def iter_json(raw: str) -> Iterator[Any]:
    """The JSON values of a body holding several, one after another (a stream query's
    newline-delimited events, or a JSON array of them)."""
    decoder = json.JSONDecoder()
    index, size = 0, len(raw)
    while index < size:
        while index < size and raw[index] in " \t\r\n,[]":
            index += 1
        if index >= size:
            return
        value, index = decoder.raw_decode(raw, index)
        yield value


class GoogleREST:
    """Authenticated JSON requests to Google Cloud REST APIs.

    Args:
        tac: whose HTTP sender (one connection pool per TAC) carries the requests.
        credentials: ``google.auth`` credentials; default ``google.auth.default()`` with the
            ``cloud-platform`` scope, looked up (in a thread) at the first request.
        token_provider: returns an access token instead (sync or async); wins over
            ``credentials``.
        headers: sent with every request.
        user_project: sent as ``X-Goog-User-Project`` (the quota project) when the credentials
            are a user's (``gcloud auth application-default login``); a service account bills
            its own project.
        timeout: seconds a request may take in all.
        component: the connector's name, for the ``User-Agent``.
    """

    def __init__(
        self,
        tac: TAC,
        *,
        credentials: Any = None,
        token_provider: TokenProvider | None = None,
        headers: Mapping[str, str] | None = None,
        user_project: str | None = None,
        timeout: float = 30.0,
        component: str = "connector",
    ) -> None:
        self.tac = tac
        self.credentials = credentials
        self.token_provider = token_provider
        self.headers = dict(headers or {})
        self.user_project = user_project
        self.timeout = timeout
        self.component = component
        self._lock = asyncio.Lock()

    async def _load_credentials(self) -> Any:
        import google.auth

        credentials, _ = await asyncio.to_thread(google.auth.default, scopes=[CLOUD_PLATFORM_SCOPE])
        return credentials

    async def token(self, *, refresh: bool = False) -> str:
        """A valid access token (refreshed in a thread when expired, or when ``refresh``)."""
        if self.token_provider is not None:
            token = self.token_provider()
            return await token if inspect.isawaitable(token) else token
        async with self._lock:
            if self.credentials is None:
                self.credentials = await self._load_credentials()
            credentials = self.credentials
            if refresh or not credentials.valid:
                from google.auth.transport.requests import Request

                await asyncio.to_thread(credentials.refresh, Request())
            return str(credentials.token)

    @property
    def user_agent(self) -> str:
        """TAC's ``User-Agent`` with this package and connector appended."""
        return f"{self.tac.http.user_agent} tac-google/{__version__} ({self.component})"

    async def auth_headers(self, *, refresh: bool = False) -> dict[str, str]:
        """``Authorization``, ``User-Agent``, the quota project when it applies, and
        :attr:`headers`: what every request (or WebSocket handshake) sends."""
        token = await self.token(refresh=refresh)
        headers = {"Authorization": f"Bearer {token}", "User-Agent": self.user_agent}
        if self.user_project and _is_user_credentials(self.credentials):
            headers["X-Goog-User-Project"] = self.user_project
        headers.update(self.headers)
        return headers

    async def request(self, method: str, url: str, payload: Any = None) -> httpx.Response:
        """Send ``payload`` (when given) as JSON; the answer, body read (a 401 refreshes the
        token once).

        Raises:
            GoogleAPIError: a non-2xx answer, no answer, or no answer within ``timeout``.
        """
        body = None
        if payload is not None:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        for attempt in (1, 2):
            headers = await self.auth_headers(refresh=attempt == 2)
            headers["Accept"] = "application/json"
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                response = await asyncio.wait_for(
                    self.tac.http.sender.send(method, url, headers, body), self.timeout
                )
            except asyncio.TimeoutError:
                raise GoogleAPIError(0, None, f"no answer within {self.timeout}s", url) from None
            except httpx.TransportError as exc:
                raise GoogleAPIError(0, None, str(exc) or type(exc).__name__, url) from exc
            can_refresh = self.token_provider is None and attempt == 1
            if response.status_code == 401 and can_refresh:
                continue
            if response.status_code >= 400:
                raise _error(response, url)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def post_json(self, url: str, payload: Any) -> dict[str, Any]:
        """POST ``payload``; the answer's JSON object (see :meth:`request`)."""
        response = await self.request("POST", url, payload)
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise GoogleAPIError(
                response.status_code, None, "the answer is not JSON", url
            ) from None
        if not isinstance(data, dict):
            raise GoogleAPIError(response.status_code, None, "the answer is not an object", url)
        return data
