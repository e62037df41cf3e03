"""What a client can make opentac do before it is authenticated: caps, early answers, deadlines.

Two layers, both driven by :class:`~tac.server.TACServerConfig`:

- :class:`RequestGuard`, per request on opentac's own routes (ASGI, whatever serves the app):
  the body cap (much lower on form routes, whose bodies are parsed before their signature can
  be checked), 415 for a body of the wrong kind, and 403 for a missing or malformed
  ``X-Twilio-Signature`` before a byte of the body is read.
- :func:`uvicorn_config`, per connection in the server (``TACFastAPIServer.start()``): a
  deadline for a request's headers and one for its body, and a cap on connections that have
  not sent a complete request. uvicorn has neither a header timeout nor such a cap, so the HTTP
  protocol it runs is extended (docs/decisions/0007-slow-clients.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tac.core.logging import get_logger
from tac.server.signature import well_formed

if TYPE_CHECKING:
    import uvicorn

    from tac.server.config import TACServerConfig

__all__ = ["uvicorn_config"]

logger = get_logger("server")

FORM_TYPE = b"application/x-www-form-urlencoded"
_FORM_TYPES = (FORM_TYPE, b"multipart/form-data")


def answer(status: int, outcome: str, message: str | None = None) -> JSONResponse:
    """opentac's JSON answer to Twilio: ``{"status": outcome, "message": ...}``."""
    body: dict[str, str] = {"status": outcome}
    if message is not None:
        body["message"] = message
    return JSONResponse(body, status_code=status)


def route_path(scope: Scope) -> str:
    """The path the router matches: ``scope["path"]`` without the ``root_path`` prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :] or "/"
    return path


class RequestGuard:
    """Checks made on a request to one of opentac's routes before its body is read.

    ``json_paths`` take JSON (``/webhook``, ``/ci-webhook``), every other path of ``paths``
    takes Twilio's forms. :meth:`limit` is the body cap of a path (``None``: not opentac's).
    """

    __slots__ = ("_json", "_limits", "_signatures", "form_limit", "json_limit")

    def __init__(
        self,
        config: TACServerConfig,
        paths: Iterable[str],
        json_paths: Iterable[str],
        *,
        signatures: bool,
    ) -> None:
        self.json_limit = config.max_request_body_bytes
        self.form_limit = config.max_form_body_bytes
        self._json = frozenset(json_paths)
        self._limits = {
            path: self.json_limit if path in self._json else self.form_limit for path in paths
        }
        self._signatures = signatures

    def limit(self, path: str) -> int | None:
        return self._limits.get(path)

    def reject(self, scope: Scope, path: str, limit: int) -> Response | None:
        """An answer given without reading the body, or ``None`` to go on."""
        length = content_type = signature = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"x-twilio-signature":
                signature = value
        if length is not None and _int(length) > limit:
            return answer(413, "error", f"request body larger than {limit} bytes")
        kind = (content_type or b"").split(b";", 1)[0].strip().lower()
        if path in self._json:
            if kind in _FORM_TYPES:
                return answer(
                    415,
                    "error",
                    "Content-Type: this webhook takes JSON (application/json), not a form",
                )
        elif kind and kind != FORM_TYPE:  # none at all: an empty form, judged by the route
            return answer(
                415,
                "error",
                "Content-Type: this webhook takes application/x-www-form-urlencoded",
            )
        if self._signatures and not well_formed(
            None if signature is None else signature.decode("latin-1")
        ):
            return JSONResponse(
                {"detail": "Invalid Twilio signature"},
                status_code=403,
            )
        return None


def _int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


# -- connections (uvicorn) ----------------------------------------------------------------------


def _raw_answer(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP response, written to a transport before any request could be read."""
    body = b'{"status":"error","message":"' + message.encode() + b'"}'
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
    head += f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


_LINGER_SECONDS = 2.0
_REFUSED = _raw_answer(503, "Service Unavailable", "too many pending connections")
_HEADERS_TOO_LARGE = _raw_answer(
    431, "Request Header Fields Too Large", "request headers too large"
)


class _Pending:
    """Connections of one server without a request being answered (shared by its protocols).

    ``count`` holds those still sending a request and the idle ones; ``idle`` the idle ones,
    oldest first (evicted first when the cap is reached).
    """

    __slots__ = ("count", "idle")

    def __init__(self) -> None:
        self.count = 0
        self.idle: dict[_Deadlines, None] = {}


class _Deadlines:
    """Mixed into uvicorn's HTTP protocol: header/body deadlines and the pending cap.

    A connection is *pending* while it sends a request (from the connection's first moment, or
    the next request's first byte, until the request is in whole) and while it idles between
    requests. Sending, it must finish the headers within ``header_timeout`` and then the body
    within ``body_timeout``; otherwise it is closed. Idle time is uvicorn's
    ``timeout_keep_alive``. At ``max_pending`` a new connection first evicts the oldest idle
    one; with none idle it is refused (503). Requests being answered and WebSockets (once
    upgraded) do not count.
    """

    header_timeout: float
    body_timeout: float
    max_header_bytes: int
    max_pending: int
    pending: _Pending

    # uvicorn's protocol attributes this relies on
    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop

    _tac_timer: asyncio.TimerHandle | None = None
    _tac_drained: Any = None  # the request whose body is being dropped
    _tac_header_bytes = 0
    _tac_phase: str = ""
    _tac_state: str = ""  # "sending", "idle" or "" (not counted)

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        pending = self.pending
        if pending.count >= self.max_pending and pending.idle:
            oldest = next(iter(pending.idle))
            oldest._set("")
            oldest.transport.close()
        if pending.count >= self.max_pending:
            logger.warning("connection refused: %d connections already pending", pending.count)
            transport.write(_REFUSED)
            transport.close()
            return
        self._set("sending")
        self._arm("headers", self.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._tac_phase == "linger":
            return  # answered and closing: what still comes is dropped unread
        if self._tac_state != "sending" and self._idle():
            # the first byte of a new request on a kept-alive connection
            self._set("sending")
            self._arm("headers", self.header_timeout)
        super().data_received(data)  # type: ignore[misc]
        self._track(len(data))

    def on_response_complete(self) -> None:
        cycle = self.cycle
        unread = cycle is not None and bool(cycle.more_body)  # answered before its body was in
        super().on_response_complete()  # type: ignore[misc]
        self._disarm()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if unread:  # e.g. 413 from Content-Length, or 403 for a missing signature
            # uvicorn reads the rest of the body and drops it, then serves the next request
            # on the connection: that rest gets the body deadline, and is no request head
            self._tac_drained = cycle
            self._set("sending")
            self._arm("drain", self.body_timeout)
            return
        if self._idle():
            self._set("idle")  # until the next request: uvicorn's keep-alive deadline
        else:
            self._track()  # a pipelined request is already under way

    def on_message_begin(self) -> None:  # httptools only: a request starts
        super().on_message_begin()  # type: ignore[misc]
        if self._tac_phase == "drain":  # the drained body is over: the next request's head
            self._arm("headers", self.header_timeout)
            self._tac_header_bytes = -self.max_header_bytes  # this chunk is mostly body

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._set("")
        super().connection_lost(exc)  # type: ignore[misc]

    # -- state -------------------------------------------------------------------------------

    def _idle(self) -> bool:
        cycle = self.cycle
        return cycle is None or bool(cycle.response_complete)

    def _track(self, received: int = 0) -> None:
        transport = self.transport
        if transport is None or not _owns(transport, self):  # upgraded or gone
            self._disarm()
            self._set("")
            return
        cycle = self.cycle
        if self._tac_phase == "drain":
            if cycle is self._tac_drained:
                return  # still dropping the rest of an answered request's body
            self._disarm()  # h11: the next request's head is in
        if self._idle():  # still reading headers (the deadline armed runs on)
            self._tac_header_bytes += received
            if self._tac_header_bytes > self.max_header_bytes and not transport.is_closing():
                limit = self.max_header_bytes
                logger.warning("request headers over %d bytes; connection closed", limit)
                self._linger(transport, _HEADERS_TOO_LARGE)
            return
        if cycle.more_body:
            if self._tac_phase != "body":
                self._arm("body", self.body_timeout)
            return
        self._disarm()  # the request is in whole: being answered
        self._set("")

    def _linger(self, transport: asyncio.Transport, answer: bytes) -> None:
        """Answer and close, the way nginx does: send the answer and end our side, drop what
        the client still sends for a moment (closing at once could reset the connection
        before the client reads the answer), then close."""
        self._set("")
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        self._arm("linger", _LINGER_SECONDS)

    def _set(self, state: str) -> None:
        before = self._tac_state
        if state == before:
            return
        self._tac_state = state
        pending = self.pending
        pending.count += (state != "") - (before != "")
        if before == "idle":
            del pending.idle[self]
        elif state == "idle":
            pending.idle[self] = None

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._tac_phase = phase
        self._tac_header_bytes = 0
        self._tac_timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._tac_timer is not None:
            self._tac_timer.cancel()
            self._tac_timer = None
        self._tac_phase = ""

    def _expired(self) -> None:
        phase = self._tac_phase
        self._tac_timer = None
        self._tac_phase = ""
        transport = self.transport
        if transport is None or transport.is_closing() or not _owns(transport, self):
            return
        if phase == "linger" or (phase == "drain" and self.cycle is self._tac_drained):
            transport.close()
            return
        if phase == "headers" and not self._idle():
            return
        if phase == "body" and (self._idle() or not self.cycle.more_body):
            return
        logger.warning("slow client: request %s not received in time; connection closed", phase)
        transport.close()


def _owns(transport: asyncio.Transport, protocol: object) -> bool:
    """Whether ``protocol`` still serves ``transport`` (uvicorn swaps it for a WebSocket's)."""
    current: object = transport.get_protocol()
    return current is protocol


def _protocol_class(config: TACServerConfig, http: str | type[asyncio.Protocol]) -> type[Any]:
    """uvicorn's HTTP protocol (``http``: a name uvicorn knows, or a class) with the limits."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    base = import_from_string(HTTP_PROTOCOLS.get(http, http)) if isinstance(http, str) else http
    namespace = {
        "header_timeout": config.header_timeout,
        "body_timeout": config.body_timeout,
        "max_header_bytes": config.max_header_bytes,
        "max_pending": config.max_pending_connections,
        "pending": _Pending(),
    }
    return type(f"TAC{base.__name__}", (_Deadlines, base), namespace)


def _websocket_protocol(ws: Any) -> Any:
    """``auto`` (or uvicorn's ``websockets-sansio``): uvicorn's sans-I/O WebSocket protocol with
    opentac's short path for text messages, when websockets is installed; else ``ws`` as is."""
    if ws not in ("auto", "websockets-sansio"):
        return ws
    try:
        from tac.server._websocket import TACWebSocketProtocol
    except ImportError:  # no websockets (uvicorn then falls back to wsproto), or an old uvicorn
        return ws
    return TACWebSocketProtocol


def uvicorn_config(app: Any, config: TACServerConfig, **settings: Any) -> uvicorn.Config:
    """A ``uvicorn.Config`` serving ``app`` with the limits of ``config`` in force.

    ``settings`` are passed on to uvicorn (they win over the defaults set here); ``http``
    (``"auto"``, ``"h11"``, ``"httptools"`` or a protocol class) gets the limits added; with
    ``ws="auto"`` (the default), WebSockets are served by ``TACWebSocketProtocol`` (uvicorn's
    sans-I/O protocol, cheaper per text message).
    """
    import uvicorn

    http = settings.pop("http", "auto")
    ws = settings.pop("ws", "auto")

    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_level": "info",
        "access_log": False,
        "timeout_graceful_shutdown": int(config.shutdown_grace_period) + 1,
        "timeout_keep_alive": 75,  # longer than clients' idle expiry: no reuse race
        "ws_max_size": config.max_request_body_bytes,
        "h11_max_incomplete_event_size": config.max_header_bytes,
        "http": _protocol_class(config, http),
        "ws": _websocket_protocol(ws),
    }
    options.update(settings)
    return uvicorn.Config(app, **options)


# -- WebSockets ---------------------------------------------------------------------------------


class FirstMessageDeadline:
    """ASGI middleware for a WebSocket route: the first message after the handshake must come
    within ``seconds``, else the socket is closed with 1008 and the app told it disconnected.

    A ConversationRelay socket that never sends ``setup`` so holds nothing for long.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, _deadline(receive, send, self.seconds), send)


def _deadline(receive: Receive, send: Send, seconds: float) -> Receive:
    handshake_done = False
    waiting = True

    async def guarded() -> Message:
        nonlocal handshake_done, waiting
        if not handshake_done:
            handshake_done = True
            return await receive()  # websocket.connect
        if not waiting:
            return await receive()
        waiting = False
        try:
            return await asyncio.wait_for(receive(), seconds)
        except asyncio.TimeoutError:
            logger.warning("WebSocket closed: no message within %.3g s of opening", seconds)
            reason = "setup not received in time"
            await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return {"type": "websocket.disconnect", "code": 1008, "reason": reason}

    return guarded
