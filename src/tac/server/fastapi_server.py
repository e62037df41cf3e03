"""The FastAPI server: Twilio's webhooks and WebSockets in, your agent's turns out."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tac.channels.base import BaseChannel
from tac.core._tasks import TaskGroup
from tac.core.errors import TACConfigError
from tac.core.logging import get_logger
from tac.core.tac import TAC
from tac.intelligence import InvalidOperatorEventError
from tac.models.conversation import KNOWN_EVENT_TYPES as _KNOWN_EVENTS
from tac.models.conversation import WebhookEvent, WebhookPayloadError
from tac.models.session import Channel
from tac.observability import _hooks as _obs
from tac.server.config import TACServerConfig
from tac.server.signature import build_http_signature_dependency
from tac.server.websocket_adapter import FastAPIWebSocketAdapter
from tac.state import ClaimResult

__all__ = ["FastAPIWebSocketAdapter", "TACFastAPIServer"]

logger = get_logger("server")

IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"


class TACFastAPIServer:
    """Registers the routes of your channels on a FastAPI app and runs it.

    ``POST /webhook`` answers Twilio at once (CONTRACT.md: 403 bad signature, 400 bad body,
    200 otherwise) and runs the agent's turn as a tracked task; a redelivered event is
    acknowledged and dropped. Shutdown drains turns in progress within
    ``config.shutdown_grace_period`` seconds.
    """

    def __init__(
        self,
        tac: TAC,
        voice_channel: BaseChannel | None = None,
        messaging_channels: Sequence[BaseChannel] | None = None,
        config: TACServerConfig | None = None,
        app: FastAPI | None = None,
    ) -> None:
        messaging = list(messaging_channels or [])
        for index, channel in enumerate(messaging):
            if not isinstance(channel, BaseChannel):
                raise TypeError(
                    f"messaging_channels[{index}] must be a channel, got {type(channel).__name__}"
                )
        names = [c.get_channel_name() for c in messaging]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"one channel per kind: {', '.join(duplicates)} given twice")
        if voice_channel is not None and tac.config.public_url() is None:
            raise TACConfigError(
                "TAC_PUBLIC_BASE_URL",
                "voice needs the app's public URL: set TAC_PUBLIC_BASE_URL (or "
                "TWILIO_VOICE_PUBLIC_DOMAIN) so Twilio can reach /twiml and /ws",
            )
        self.tac = tac
        self.config = config or TACServerConfig.from_env()
        self.voice_channel = voice_channel
        self.messaging_channels = messaging
        self.webhook_channels: list[BaseChannel] = [*messaging]
        if voice_channel is not None:
            self.webhook_channels.append(voice_channel)
        self._by_wire_name = {c.get_channel_name(): c for c in self.webhook_channels}
        self.tasks = TaskGroup()
        self._check_signature = self.signature_dependency()
        self.app = app or FastAPI(title="opentac", docs_url=None, redoc_url=None)
        self._wrap_lifespan(self.app)
        before = set(map(id, self.app.router.routes))
        self._register_routes(self.app)
        self._enable_observability(self.app)
        ours = {
            route.path
            for route in self.app.router.routes
            if id(route) not in before and isinstance(route, Route)
        }
        if ours and self.app.middleware_stack is None:  # an app already serving keeps its stack
            # Innermost of the app's middleware: every middleware of the user still sees these
            # requests. It caps request bodies on opentac's routes, and takes POST /webhook
            # past the router, exception and exit-stack layers (a measurable share of each
            # webhook's cost). The route itself stays for anything that routes without it.
            self.app.user_middleware.append(
                Middleware(
                    _TwilioRoutes,
                    paths=frozenset(ours),
                    webhook_path=self.config.conversation_webhook_path
                    if self.webhook_channels
                    else None,
                    webhook=self._handle_webhook,
                    max_body_bytes=self.config.max_request_body_bytes,
                )
            )

    # -- routes ----------------------------------------------------------------------------

    def signature_dependency(self) -> Callable[..., Any]:
        """The HTTP signature check every Twilio route uses."""
        return build_http_signature_dependency(
            self.tac.config.auth_token,
            public_base_url=self.tac.config.public_url(),
            enabled=self.tac.config.validate_signatures,
        )

    def _register_routes(self, app: FastAPI) -> None:
        if self.webhook_channels:
            # A plain route: the hot path checks the signature itself instead of going through
            # FastAPI's dependency resolution (a measurable share of each webhook's cost).
            app.add_route(
                self.config.conversation_webhook_path,
                self._handle_webhook,
                methods=["POST"],
                include_in_schema=False,
            )
        if self.config.cintel_webhook_path and self.tac.ci_processor is not None:
            self._check_cintel_signature = self.signature_dependency()
            app.add_route(
                self.config.cintel_webhook_path,
                self._handle_cintel_webhook,
                methods=["POST"],
                include_in_schema=False,
            )
        for channel in self.webhook_channels:
            channel.register_routes(app, self)

    async def _handle_webhook(self, request: Request) -> Response:
        observer = _obs.observer
        try:
            await self._check_signature(request)
        except HTTPException:
            observer.webhook("forged")
            raise
        body = await request.body()
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            observer.webhook("malformed")
            return _answer(400, "error", "webhook body must be JSON")
        known, channel = await self._early_route(payload)
        if known and channel is None:
            _debug("webhook ignored", payload)
            observer.webhook("ignored")
            return _IGNORED.copy()
        try:
            event = WebhookEvent.parse(payload)
        except WebhookPayloadError as exc:
            observer.webhook("malformed")
            return _answer(400, "error", str(exc))
        if not known:
            channel = await self.route_event(event) if event.is_known else None
            if channel is None or not channel.accepts(event):
                _debug("webhook ignored", payload)
                observer.webhook("ignored")
                return _IGNORED.copy()
        assert channel is not None
        turn = (
            observer.turn_begin(channel.get_channel_name(), event.data.get("conversationId"))
            if event.event_type == "COMMUNICATION_CREATED" and channel is not self.voice_channel
            else None
        )
        token = request.headers.get(IDEMPOTENCY_HEADER)
        key = _claim_key(token, event.event_type, body)
        with observer.stage("tac.claim"):
            claim = await self.tac.session_store.claim(key, self.config.idempotency_lease_seconds)
        if claim is not ClaimResult.CLAIMED:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "duplicate webhook dropped", event_type=event.event_type, claim=claim.value
                )
            observer.webhook("duplicate")
            observer.turn_end(turn, "duplicate")
            return _answer(200, "duplicate")
        try:
            self.tasks.spawn(self._run(channel, event, token, key), name=f"webhook:{key[:24]}")
        except RuntimeError:
            await self.tac.session_store.release(key)
            observer.webhook("unavailable")
            observer.turn_end(turn, "cancelled")
            return _answer(503, "error", "server is shutting down")
        observer.webhook("answered")
        return _OK.copy()

    async def _early_route(self, payload: Any) -> tuple[bool, BaseChannel | None]:
        """Route and pre-check an event before validating all of it.

        Only ``COMMUNICATION_*`` events (the hot path) are judged early. ``(True, None)``: not
        for this app (the agent's own message, an update no channel takes, an unknown event
        type), answered 200 without the cost of full validation. ``(True, channel)``: the
        channel that takes it (the server still validates it fully, 400 when invalid).
        ``(False, None)``: undecided from the raw payload; the server validates, then routes.
        """
        if not isinstance(payload, dict):
            return False, None
        event_type = payload.get("eventType")
        data = payload.get("data")
        if not isinstance(event_type, str) or not isinstance(data, dict):
            return False, None
        if event_type not in _KNOWN_EVENTS:
            return True, None
        if not event_type.startswith("COMMUNICATION_"):
            return False, None  # rarer events: validated in full first
        author = data.get("author")
        if not isinstance(author, dict) or not isinstance(author.get("channel"), str):
            return False, None
        raw = WebhookEvent.model_construct(event_type=event_type, data=data)
        try:
            channel = await self.route_event(raw)
            if channel is None or not channel.accepts(raw):
                return True, None
        except (TypeError, ValueError, AttributeError, KeyError):
            return False, None  # data too malformed to judge: validation will say why
        return True, channel

    async def _handle_cintel_webhook(self, request: Request) -> JSONResponse:
        """Conversation Intelligence results → Memory: 400 for a bad body, 502 if Memory fails."""
        await self._check_cintel_signature(request)
        body = await request.body()
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _answer(400, "error", "webhook body must be JSON")
        try:
            result = await self.tac.process_cintel_event(payload)
        except InvalidOperatorEventError as exc:
            return _answer(400, "error", f"not a Conversation Intelligence event: {exc}")
        except Exception as exc:
            context = {"source": "conversation_intelligence"}
            if isinstance(payload, dict) and isinstance(payload.get("conversationId"), str):
                context["conversation_id"] = payload["conversationId"]
            await self.tac.trigger_error(exc, context)
            return _answer(502, "error", f"Conversation Memory unavailable: {exc}")
        if not result.success:
            await self.tac.trigger_error(
                RuntimeError(f"Conversation Intelligence results not written: {result.error}"),
                {
                    "source": "conversation_intelligence",
                    "conversation_id": payload["conversationId"],
                },
            )
            return JSONResponse(result.model_dump(), status_code=502)
        return JSONResponse(result.model_dump())

    async def route_event(self, event: WebhookEvent) -> BaseChannel | None:
        """The channel an event is for, or ``None`` when it is not for this app."""
        if event.event_type.startswith("COMMUNICATION_"):
            author = event.data.get("author") or {}
            return self._by_wire_name.get(str(author.get("channel", "")).upper())
        if event.event_type.startswith("CONVERSATION_"):
            expected = self.tac.config.conversation_configuration_id
            configuration = event.data.get("configurationId")
            if expected and configuration and configuration != expected:
                return None
            session = await self.tac.session_store.get_session(str(event.data.get("id", "")))
            if session is None:
                return None
            return self._by_wire_name.get(Channel(session.channel).wire)
        return None

    async def _run(
        self, channel: BaseChannel, event: WebhookEvent, token: str | None, key: str
    ) -> None:
        store = self.tac.session_store
        turn = _obs.current_turn()
        try:
            await channel.process_webhook(event, token)
        except asyncio.CancelledError:
            await store.release(key)  # not done: let Twilio's redelivery run it
            _obs.observer.turn_end(turn, "cancelled")
            raise
        except Exception as exc:
            await self.tac.trigger_error(
                exc,
                {
                    "conversation_id": event.data.get("conversationId") or event.data.get("id"),
                    "channel": channel.get_channel_name().lower(),
                    "event_type": event.event_type,
                },
            )
        _obs.observer.turn_end(turn)
        await store.complete(key)

    def _enable_observability(self, app: FastAPI) -> None:
        """Metrics and tracing as the config says; ``GET {metrics_path}`` serves the metrics."""
        if self.config.tracing_enabled:
            from tac.observability import enable_tracing

            enable_tracing()
        if not self.config.metrics_enabled:
            return
        from tac.observability import enable_metrics, render_metrics

        registry = enable_metrics()

        async def metrics(request: Request) -> Response:
            body, content_type = render_metrics(registry)
            return Response(body, media_type=content_type)

        app.add_route(self.config.metrics_path, metrics, methods=["GET"], include_in_schema=False)

    # -- lifecycle -------------------------------------------------------------------------

    def _wrap_lifespan(self, app: FastAPI) -> None:
        original: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app_: Any) -> AsyncIterator[Any]:
            async with original(app_) as state:
                await self.tac.start()
                try:
                    yield state
                finally:
                    await self.shutdown()

        app.router.lifespan_context = lifespan

    async def shutdown(self) -> None:
        """Drain turns in progress, then close channels and the TAC's clients."""
        cancelled = await self.tasks.drain(self.config.shutdown_grace_period)
        if cancelled:
            logger.warning("shutdown cancelled %d turns after the grace period", cancelled)
        for channel in self.webhook_channels:
            await channel.aclose()
        await self.tac.aclose()

    def start(self) -> None:
        """Serve on ``config.host:config.port`` until interrupted (blocking)."""
        import uvicorn

        from tac.core.logging import uvicorn_log_config

        uvicorn.run(
            self.app,
            host=self.config.host,
            port=self.config.port,
            log_config=uvicorn_log_config(self.tac.config.log_level, self.tac.config.log_format),
            access_log=False,
            timeout_graceful_shutdown=int(self.config.shutdown_grace_period) + 1,
            timeout_keep_alive=75,  # longer than clients' idle expiry: no reuse race
        )


class _BodyTooLarge(Exception):
    """A request body went past ``TACServerConfig.max_request_body_bytes``."""


class _TwilioRoutes:
    """ASGI middleware for opentac's own routes: a body cap, and ``POST /webhook`` direct."""

    def __init__(
        self,
        app: ASGIApp,
        paths: frozenset[str],
        webhook_path: str | None,
        webhook: Callable[[Request], Awaitable[Response]],
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.paths = paths
        self.webhook_path = webhook_path
        self.webhook = webhook
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        if _content_length(scope) > limit:
            _obs.observer.webhook("too_large")
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if scope["path"] == self.webhook_path and scope["method"] == "POST":
                request = Request(scope, capped_receive)
                try:
                    response = await self.webhook(request)
                except HTTPException as exc:
                    response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
                await response(scope, capped_receive, send)
            else:
                await self.app(scope, capped_receive, tracked_send)
        except _BodyTooLarge:
            _obs.observer.webhook("too_large")
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def _content_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _too_large(limit: int) -> JSONResponse:
    return _answer(413, "error", f"request body larger than {limit} bytes")


def _claim_key(token: str | None, event_type: str, body: bytes) -> str:
    """CONTRACT: idempotency token + eventType; a hash of the body when the token is missing."""
    if token:
        return f"{token}:{event_type}"
    return f"sha256:{hashlib.sha256(body).hexdigest()}:{event_type}"


def _answer(status: int, outcome: str, message: str | None = None) -> JSONResponse:
    body: dict[str, str] = {"status": outcome}
    if message is not None:
        body["message"] = message
    return JSONResponse(body, status_code=status)


class _Answer(Response):
    """A fixed JSON answer rendered once; :meth:`copy` gives each request its own headers."""

    media_type = "application/json"

    def copy(self) -> _Answer:
        answer = _Answer.__new__(_Answer)
        answer.__dict__.update(self.__dict__)
        answer.raw_headers = list(self.raw_headers)
        return answer


_OK = _Answer(b'{"status":"ok"}')
_IGNORED = _Answer(b'{"status":"ignored"}')


def _debug(message: str, payload: Any) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        event_type = payload.get("eventType") if isinstance(payload, dict) else None
        logger.debug(message, event_type=event_type)
