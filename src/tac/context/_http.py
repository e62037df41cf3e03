"""The one HTTP seam of :mod:`tac.context`: one pooled sender, auth, URLs, encoding, retries.

Every product client (conversations, memory, knowledge, studio, calls) sends through one
:class:`TwilioHTTP`, so one TAC instance keeps one connection pool. ``TwilioHTTP`` encodes each
request once and hands the bytes to a :class:`~tac.context._transport.Sender` (aiohttp by
default, httpx for an injected ``client=``/``transport=``): one path, one retry loop. This is
the only module that turns ``httpx`` exceptions into the :mod:`tac.context.errors` tree.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json as jsonlib
import platform
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx

from tac._version import __version__
from tac.context._transport import AiohttpSender, HttpxSender, Sender
from tac.context.errors import (
    AuthenticationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TwilioAPIError,
    TwilioTimeoutError,
    TwilioTransportError,
)
from tac.core.logging import get_logger
from tac.observability import _hooks as _obs

__all__ = [
    "DEFAULT_TIMEOUT",
    "RetryMode",
    "RetryPolicy",
    "TwilioHTTP",
    "encode_path",
    "error_from_response",
    "parse_json_object",
    "parse_retry_after",
]

logger = get_logger("tac.context")

RetryMode = Literal["safe", "unsent_only", "never"]
"""When :meth:`TwilioHTTP.request` may retry.

* ``"safe"``: the request is idempotent; retry connect errors, timeouts, dropped connections,
  429 and 500/502/503/504.
* ``"unsent_only"``: retry only when the request surely did not reach Twilio (connect errors,
  connect/pool timeouts, and 429/503 answers that carry ``Retry-After``).
* ``"never"``: one attempt.
"""

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=15.0, pool=5.0)
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

_SAFE_STATUSES = frozenset({429, 500, 502, 503, 504})
_UNSENT_STATUSES = frozenset({429, 503})
_PRODUCT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_REGION = _PRODUCT
_BODY_SNIPPET = 200


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try and how long to wait in between.

    Args:
        attempts: total attempts, the first included (``1`` disables retries).
        base_delay: delay before the first retry, doubled at each further retry (seconds).
        max_delay: cap of the computed delay (seconds).
        jitter: ``"full"`` draws uniformly in ``[0, delay]``; ``"equal"`` in
            ``[delay/2, delay]``; ``"none"`` uses ``delay`` as is.
        max_retry_after: the longest ``Retry-After`` honoured (seconds); a longer one is not
            waited for: the error is raised at once.
    """

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    jitter: Literal["full", "equal", "none"] = "full"
    max_retry_after: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("RetryPolicy delays must be >= 0")
        if self.jitter not in ("full", "equal", "none"):
            raise ValueError(
                f"RetryPolicy.jitter must be 'full', 'equal' or 'none', got {self.jitter!r}"
            )

    def compute(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** min(attempt - 1, 62)))
        if self.jitter == "full":
            return random.uniform(0.0, ceiling)
        if self.jitter == "equal":
            return ceiling / 2 + random.uniform(0.0, ceiling / 2)
        return ceiling


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or an HTTP date) into seconds, or ``None``."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())


def encode_path(template: str, **params: str) -> str:
    """Fill ``template``'s ``{name}`` fields, each percent-encoded as one path segment.

    ``encode_path("/v1/Stores/{store}/Profiles/{p}", store="s", p="../x")`` gives
    ``/v1/Stores/s/Profiles/..%2Fx``: an id can never change which resource is addressed.

    Raises:
        ValueError: a parameter is empty, not a string, or a dot segment (``.``/``..``).
    """
    encoded: dict[str, str] = {}
    for name, value in params.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        if value in (".", ".."):
            raise ValueError(f"{name} must not be {value!r}")
        encoded[name] = quote(value, safe="")
    return template.format(**encoded)


def _error_fields(response: httpx.Response) -> tuple[str, int | None, str | None, Any]:
    """(message, code, more_info, details) from an error body, JSON or not."""
    try:
        details: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text if response.content else ""
        details = text[:_BODY_SNIPPET]
    message = response.reason_phrase or "error"
    code: int | None = None
    more_info: str | None = None
    if isinstance(details, dict):
        raw_message = details.get("message") or details.get("detail") or details.get("title")
        if isinstance(raw_message, str) and raw_message:
            message = raw_message
        raw_code = details.get("code")
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code = raw_code
        elif isinstance(raw_code, str) and raw_code.isdigit():
            code = int(raw_code)
        raw_more = details.get("more_info") or details.get("moreInfo")
        if isinstance(raw_more, str):
            more_info = raw_more
    elif isinstance(details, str) and details.strip():
        message = " ".join(details.split())[:_BODY_SNIPPET]
    return message, code, more_info, details


def error_from_response(response: httpx.Response) -> TwilioAPIError:
    """The :class:`TwilioAPIError` subclass matching a (read) non-2xx response."""
    message, code, more_info, details = _error_fields(response)
    status = response.status_code
    kwargs: dict[str, Any] = {
        "status": status,
        "method": response.request.method,
        "url": str(response.request.url),
        "code": code,
        "more_info": more_info,
        "details": details,
        "headers": dict(response.headers),
    }
    if status in (401, 403):
        return AuthenticationError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status == 409:
        return ConflictError(message, **kwargs)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimitedError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return TwilioAPIError(message, **kwargs)


def parse_json_object(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or :class:`InvalidResponseError`."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
        problem = "body is not JSON"
    else:
        problem = "body is not a JSON object"
    if isinstance(body, dict):
        return body
    snippet = response.text[:_BODY_SNIPPET] if response.content else ""
    raise InvalidResponseError(
        f"expected a JSON object, {problem}",
        status=response.status_code,
        method=response.request.method,
        url=str(response.request.url),
        details=snippet,
        headers=dict(response.headers),
    )


def _transport_error(exc: httpx.HTTPError, method: str, url: str) -> TwilioTransportError:
    """Translate an httpx exception; ``request_sent`` is False only when surely unsent."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TwilioTimeoutError(
            f"{type(exc).__name__}: {detail}", method=method, url=url, request_sent=False
        )
    if isinstance(exc, httpx.TimeoutException):
        return TwilioTimeoutError(
            f"{type(exc).__name__}: {detail}", method=method, url=url, request_sent=True
        )
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ProxyError, httpx.UnsupportedProtocol))
    return TwilioTransportError(
        f"{type(exc).__name__}: {detail}", method=method, url=url, request_sent=not unsent
    )


def _form_value(value: Any) -> str:
    """A form field's text (``true``/``false``, ``None`` as empty, as Twilio's APIs expect)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def user_agent(suffix: str | None = None) -> str:
    """``opentac/{version} (Python {version})``, then ``suffix`` (a partner names itself)."""
    agent = f"opentac/{__version__} (Python {platform.python_version()})"
    return f"{agent} {suffix}" if suffix else agent


class TwilioHTTP:
    """One pooled HTTP client for every Twilio product of one TAC instance.

    Nothing happens on construction: the connection pool opens on first use. Every request is
    encoded here once and sent by one :class:`~tac.context._transport.Sender`: aiohttp by
    default (decisions 0001 and 0004), or httpx when ``client`` or ``transport`` is given. The
    default sender honours ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` (read at construction).
    :meth:`aclose` closes what this object created and never a client it was given.

    Args:
        api_key: API key SID (``SK…``) or Account SID.
        api_secret: API key secret or Auth Token.
        account_sid: the account (``AC…``), needed by the Calls API and Studio's voice URL.
        region: Twilio region (``au1``, ``ie1``, …); hosts become ``{product}.{region}.twilio.com``.
        api_base_url: overrides every host: ``{api_base_url}/{product}`` (the sandbox uses it).
        timeout: timeouts of each attempt (a client passed in keeps its own).
        retry: the retry policy.
        client: an existing ``httpx.AsyncClient`` to share (not closed by :meth:`aclose`).
        transport: an httpx transport for a client created here (tests pass a MockTransport).
        user_agent_suffix: appended to the ``User-Agent`` header.
        sleep: the coroutine used to wait between attempts (tests inject one).
    """

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        account_sid: str | None = None,
        region: str | None = None,
        api_base_url: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent_suffix: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key is required (an API key SID or the Account SID)")
        if not isinstance(api_secret, str) or not api_secret:
            raise ValueError("api_secret is required (the API key secret or the Auth Token)")
        if region is not None and (not isinstance(region, str) or not _REGION.match(region)):
            raise ValueError(f"region must be a DNS label such as 'ie1', got {region!r}")
        if api_base_url is not None:
            if not isinstance(api_base_url, str) or not api_base_url.startswith(
                ("http://", "https://")
            ):
                raise ValueError(
                    f"api_base_url must be an http:// or https:// URL, got {api_base_url!r}"
                )
            api_base_url = api_base_url.rstrip("/")
        if client is not None and transport is not None:
            raise ValueError("pass either client= or transport=, not both")
        credentials = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode("ascii")
        self._authorization = f"Basic {credentials}"
        self.account_sid = account_sid
        self.region = region
        self.api_base_url = api_base_url
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._owns_client = client is None
        self.sender: Sender
        if client is None and transport is None:
            self.sender = AiohttpSender(timeout=timeout, limits=_LIMITS)
        else:
            self.sender = HttpxSender(
                client=client, transport=transport, timeout=timeout, limits=_LIMITS
            )
        self._user_agent_suffix = user_agent_suffix
        self._headers = self._fixed_headers()
        self._sleep = sleep
        self._closed = False

    def __repr__(self) -> str:
        target = self.api_base_url or (f"region={self.region}" if self.region else "twilio.com")
        return f"TwilioHTTP({target}, owns_client={self._owns_client})"

    def _fixed_headers(self) -> dict[str, str]:
        return {
            "User-Agent": user_agent(self._user_agent_suffix),
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "Authorization": self._authorization,
        }

    @property
    def user_agent_suffix(self) -> str | None:
        """Appended to ``User-Agent`` (a partner connector names itself here); settable."""
        return self._user_agent_suffix

    @user_agent_suffix.setter
    def user_agent_suffix(self, value: str | None) -> None:
        self._user_agent_suffix = value
        self._headers = self._fixed_headers()

    @property
    def user_agent(self) -> str:
        """The ``User-Agent`` header sent with every request."""
        return self._headers["User-Agent"]

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close the connection pool if this object created it; a client passed in stays open."""
        if self._closed:
            return
        self._closed = True
        await self.sender.aclose()

    async def __aenter__(self) -> TwilioHTTP:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def base_url(self, product: str) -> str:
        """The base URL of ``product`` (``conversations``, ``memory``, ``api``, ``webhooks``, …).

        ``https://{product}.twilio.com``, ``https://{product}.{region}.twilio.com`` with a region,
        or ``{api_base_url}/{product}`` when ``api_base_url`` is set.
        """
        if not isinstance(product, str) or not _PRODUCT.match(product):
            raise ValueError(f"product must be a lowercase DNS label, got {product!r}")
        if self.api_base_url is not None:
            return f"{self.api_base_url}/{product}"
        if self.region:
            return f"https://{product}.{self.region}.twilio.com"
        return f"https://{product}.twilio.com"

    def _may_retry(
        self, mode: RetryMode, *, error: Exception, retry_after: float | None = None
    ) -> bool:
        if mode == "never":
            return False
        if isinstance(error, TwilioTransportError):
            return mode == "safe" or not error.request_sent
        if isinstance(error, TwilioAPIError):
            if mode == "safe":
                return error.status in _SAFE_STATUSES
            return error.status in _UNSENT_STATUSES and retry_after is not None
        return False

    def _encode(
        self,
        json: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[bytes | None, dict[str, str]]:
        """The body bytes and every header of one request (caller headers win, any case)."""
        send_headers = dict(self._headers)
        body: bytes | None = None
        if json is not None:
            body = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        elif data:
            fields = [
                (key, _form_value(item))
                for key, value in data.items()
                for item in (value if isinstance(value, (list, tuple)) else [value])
            ]
            body = urlencode(fields).encode("utf-8")
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        for name, value in (headers or {}).items():
            for known in [k for k in send_headers if k.lower() == name.lower()]:
                del send_headers[known]
            send_headers[name] = value
        return body, send_headers

    async def request(
        self,
        product: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryMode = "safe",
        accept: Collection[int] = (),
    ) -> httpx.Response:
        """Send one request to ``{base_url(product)}{path}``, retrying as ``retry`` allows.

        Args:
            path: starts with ``/``; build it with :func:`encode_path` when it holds ids.
            json: a JSON body (compact UTF-8). ``data``: a form body (lists become repeated
                fields, booleans ``true``/``false``, ``None`` an empty value).
            params: query parameters, appended to any query already in ``path``.
            retry: ``"safe"``, ``"unsent_only"`` or ``"never"`` (see :data:`RetryMode`).
            accept: non-2xx statuses returned instead of raised (e.g. ``{301}``).

        Returns:
            the response, body read.

        Raises:
            TwilioAPIError: (a subclass for) a non-2xx status not in ``accept``.
            TwilioTransportError: the request failed without an answer.
        """
        if retry not in ("safe", "unsent_only", "never"):
            raise ValueError(f"retry must be 'safe', 'unsent_only' or 'never', got {retry!r}")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        url = self.base_url(product) + path
        if params:
            url = f"{url}{'&' if '?' in path else '?'}{httpx.QueryParams(params)}"
        method = method.upper()
        body, send_headers = self._encode(json, data, headers)
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            attempt += 1
            if self._closed:
                raise RuntimeError("TwilioHTTP is closed; create a new one")
            started = loop.time()
            probe = _obs.observer.twilio_request(product, method, path, url, send_headers)
            try:
                response = await self.sender.send(method, url, send_headers, body)
            except httpx.HTTPError as exc:
                if probe is not None:
                    probe.failed(exc)
                error = _transport_error(exc, method, url)
                elapsed_ms = (loop.time() - started) * 1000
                logger.debug(
                    "%s %s%s failed: %s (attempt %d, %.1f ms)",
                    method,
                    product,
                    path,
                    type(exc).__name__,
                    attempt,
                    elapsed_ms,
                )
                if attempt < self.retry.attempts and self._may_retry(retry, error=error):
                    delay = self.retry.compute(attempt)
                    logger.info(
                        "retrying %s %s%s in %.2f s after %s (attempt %d of %d)",
                        method,
                        product,
                        path,
                        delay,
                        type(exc).__name__,
                        attempt,
                        self.retry.attempts,
                    )
                    await self._sleep(delay)
                    continue
                raise error from exc
            if probe is not None:
                probe.done(response.status_code)
            elapsed_ms = (loop.time() - started) * 1000
            logger.debug(
                "%s %s%s -> %d (attempt %d, %.1f ms)",
                method,
                product,
                path,
                response.status_code,
                attempt,
                elapsed_ms,
            )
            if response.is_success or response.status_code in accept:
                return response
            api_error = error_from_response(response)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt < self.retry.attempts and self._may_retry(
                retry, error=api_error, retry_after=retry_after
            ):
                if retry_after is not None and retry_after > self.retry.max_retry_after:
                    raise api_error
                delay = retry_after if retry_after is not None else self.retry.compute(attempt)
                logger.info(
                    "retrying %s %s%s in %.2f s after status %d (attempt %d of %d)",
                    method,
                    product,
                    path,
                    delay,
                    response.status_code,
                    attempt,
                    self.retry.attempts,
                )
                await self._sleep(delay)
                continue
            raise api_error

    async def request_json(
        self,
        product: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryMode = "safe",
    ) -> dict[str, Any]:
        """:meth:`request`, then the body as a JSON object (else :class:`InvalidResponseError`)."""
        response = await self.request(
            product,
            method,
            path,
            json=json,
            data=data,
            params=params,
            headers=headers,
            retry=retry,
        )
        return parse_json_object(response)

    async def paginate(
        self,
        product: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_pages: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield each page (a JSON object) of a list endpoint of the new APIs.

        Follows ``meta.nextToken`` by sending it back as ``pageToken``. Stops after
        ``max_pages`` pages (with a warning) or when a token repeats.
        """
        async for _, page in self.iter_pages(
            product, path, params=params, page_size=page_size, max_pages=max_pages
        ):
            yield page

    async def iter_pages(
        self,
        product: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        max_pages: int = 100,
    ) -> AsyncIterator[tuple[httpx.Response, dict[str, Any]]]:
        """Like :meth:`paginate`, yielding ``(response, page)`` pairs."""
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages}")
        if page_size is not None and not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000, got {page_size}")
        query: dict[str, Any] = dict(params or {})
        if page_size is not None:
            query["pageSize"] = page_size
        seen: set[str] = set()
        for page_number in range(1, max_pages + 1):
            response = await self.request(product, "GET", path, params=query)
            page = parse_json_object(response)
            yield response, page
            meta = page.get("meta")
            token = meta.get("nextToken") if isinstance(meta, dict) else None
            if not isinstance(token, str) or not token:
                return
            if token in seen:
                logger.warning("%s%s: page token repeated; stopping pagination", product, path)
                return
            seen.add(token)
            query["pageToken"] = token
            if page_number == max_pages:
                logger.warning(
                    "%s%s: stopped after %d pages (max_pages); more results exist",
                    product,
                    path,
                    max_pages,
                )
