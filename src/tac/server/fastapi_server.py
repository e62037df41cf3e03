"""The FastAPI server: Twilio's webhooks and WebSockets in, your agent's turns out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tac.channels.base import BaseChannel
from tac.channels.voice import VoiceChannel
from tac.core._tasks import TaskGroup
from tac.core.errors import TACConfigError
from tac.core.inbound import Inbound, InboundDelivery, claim_keys, reply_went_out
from tac.core.logging import get_logger
from tac.core.tac import TAC
from tac.intelligence import InvalidOperatorEventError
from tac.models.conversation import KNOWN_EVENT_TYPES as _KNOWN_EVENTS
from tac.models.conversation import WebhookEvent, WebhookPayloadError
from tac.models.session import Channel
from tac.observability import _hooks as _obs
from tac.server._voice_routes import voice_routes
from tac.server.config import RoutePaths, TACServerConfig
from tac.server.limits import RequestGuard, route_path, uvicorn_config
from tac.server.limits import answer as _answer
from tac.server.signature import build_http_signature_dependency
from tac.server.websocket_adapter import FastAPIWebSocketAdapter
from tac.state import store_unavailable
from tac.state.inbound import InboundEvent

__all__ = ["FastAPIWebSocketAdapter", "TACFastAPIServer"]

logger = get_logger("server")

IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"
SENT_REPLY_SETTLE_SECONDS = 5.0
"""How long a takeover waits before looking whether a recorded send reached the conversation."""


class TACFastAPIServer:
    """Registers the routes of your channels on a FastAPI app and runs it.

    ``POST /webhook`` answers Twilio at once (403 bad signature, 400 bad body,
    200 otherwise) and runs the agent's turn as a tracked task; a redelivered event is
    acknowledged and dropped. Shutdown drains turns in progress within
    ``config.shutdown_grace_period`` seconds.
    """

    serves_voice: bool = True
    """Whether this server serves the voice channel's routes (TwiML, WebSocket, callbacks);
    a host that serves calls by other means (an AgentCore runtime) only routes webhooks."""

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
        if voice_channel is not None and self.serves_voice and tac.config.public_url() is None:
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
        self.draining = False
        """True once shutdown began: webhooks get 503 and ``/readyz`` fails."""
        self.inbound = Inbound(
            tac,
            tac.inbound_log,
            lease_seconds=self.config.idempotency_lease_seconds,
            run=self._take_over,
        )
        self._check_signature = self.signature_dependency()
        self.paths = RoutePaths.of(tac.config, self.config)
        """Every path this server serves (from both configs)."""
        if self.config.tracing_enabled:
            from tac.observability import enable_tracing

            enable_tracing()
        self.router = Router(routes=self._build_routes())
        """All of opentac's routes (webhooks, voice, probes, metrics), built here, once."""
        self.app = app or FastAPI(title="opentac", docs_url=None, redoc_url=None)
        self._wrap_lifespan(self.app)
        self._register_routes(self.app)
        ours = {route.path for route in self.router.routes if isinstance(route, Route)}
        if ours and self.app.middleware_stack is None:  # an app already serving keeps its stack
            # Innermost of the app's middleware: every middleware of the user still sees these
            # requests. It caps request bodies on opentac's routes, and takes POST /webhook
            # past the router, exception and exit-stack layers (a measurable share of each
            # webhook's cost). The route itself stays for anything that routes without it.
            json_paths = {self.paths.webhook, self.paths.cintel_webhook or ""}
            self.app.user_middleware.append(
                Middleware(
                    _TwilioRoutes,
                    guard=RequestGuard(
                        self.config,
                        ours,
                        json_paths & ours,
                        signatures=self.tac.config.validate_signatures,
                    ),
                    webhook_path=self.paths.webhook
                    if self.webhook_channels and self.config.webhook_fast_path
                    else None,
                    webhook=self._handle_webhook,
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

    def _build_routes(self) -> list[BaseRoute]:
        """Every route of this server; handlers check Twilio's signature themselves."""
        paths = self.paths
        routes: list[BaseRoute] = []
        if self.webhook_channels:
            # A plain route: the hot path checks the signature itself instead of going through
            # FastAPI's dependency resolution (a measurable share of each webhook's cost).
            routes.append(
                Route(
                    paths.webhook, self._handle_webhook, methods=["POST"], include_in_schema=False
                )
            )
        if paths.cintel_webhook and self.tac.ci_processor is not None:
            self._check_cintel_signature = self.signature_dependency()
            routes.append(
                Route(
                    paths.cintel_webhook,
                    self._handle_cintel_webhook,
                    methods=["POST"],
                    include_in_schema=False,
                )
            )
        if self.serves_voice and isinstance(self.voice_channel, VoiceChannel):
            routes += voice_routes(self.voice_channel, self)
        if paths.health:
            routes.append(Route(paths.health, self._healthz, include_in_schema=False))
        if paths.ready:
            routes.append(Route(paths.ready, self._readyz, include_in_schema=False))
        if paths.metrics:
            routes.append(self._metrics_route(paths.metrics))
        return routes

    def _register_routes(self, app: FastAPI) -> None:
        """Put :attr:`router`'s routes on ``app`` (a subclass may add its own here)."""
        app.router.routes.extend(self.router.routes)

    async def _healthz(self, request: Request) -> Response:
        return _answer(200, "ok")

    async def _readyz(self, request: Request) -> Response:
        """Ready: not draining, and the session store answers (within a second)."""
        if self.draining:
            return _answer(503, "draining")
        try:
            await asyncio.wait_for(self.tac.store_reachable(), 1.0)
        except Exception as exc:
            return _answer(503, "error", f"session store unreachable: {type(exc).__name__}")
        return _answer(200, "ok")

    async def _handle_webhook(self, request: Request) -> Response:
        observer = _obs.observer
        try:
            await self._check_signature(request)
        except HTTPException:
            observer.webhook("forged")
            raise
        return await self.accept_webhook(
            await request.body(), request.headers.get(IDEMPOTENCY_HEADER)
        )

    async def accept_webhook(
        self, body: bytes, token: str | None = None, *, wait: bool = False
    ) -> Response:
        """Take one Orchestrator webhook whose signature is already checked (or checked by a
        gateway in front): route it, drop a duplicate, run its turn as a tracked task.

        ``wait``: answer once the turn is done, for hosts that may freeze an instance once it
        has answered (Foundry Hosted Agents, AgentCore); otherwise answer at once.
        """
        observer = _obs.observer
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
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
            try:
                channel = await self.route_event(event) if event.is_known else None
                if channel is None and await self._closed_without_session(event):
                    return _OK.copy()
            except Exception as exc:
                logger.warning("webhook not routed, the session store is unreachable: %s", exc)
                return _answer(503, "error", "session store unreachable")
            if channel is None or not channel.accepts(event):
                _debug("webhook ignored", payload)
                observer.webhook("ignored")
                return _IGNORED.copy()
        assert channel is not None
        if self.draining:
            observer.webhook("unavailable")
            return _answer(503, "error", "server is draining")
        turn = (
            observer.turn_begin(channel.get_channel_name(), event.data.get("conversationId"))
            if event.event_type == "COMMUNICATION_CREATED" and channel is not self.voice_channel
            else None
        )
        data = event.data
        inbound_event = InboundEvent(
            keys=claim_keys(token, event.event_type, body, data),
            body=body.decode("utf-8", "replace"),
            token=token,
            conversation_id=_conversation_of(event.event_type, data),
        )
        try:
            with observer.stage("tac.claim"):
                claim, delivery = await self.inbound.accept(inbound_event)
        except Exception as exc:  # the store is unreachable: Twilio retries a 503
            logger.warning("webhook not accepted, the session store is unreachable: %s", exc)
            observer.webhook("unavailable")
            observer.turn_end(turn, "cancelled")
            return _answer(503, "error", "session store unreachable")
        if delivery is None:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "duplicate webhook dropped", event_type=event.event_type, claim=claim.value
                )
            observer.webhook("duplicate")
            observer.turn_end(turn, "duplicate")
            return _answer(200, "duplicate")
        try:
            task = self.tasks.spawn(
                self._run(channel, event, delivery), name=f"webhook:{inbound_event.id[:24]}"
            )
        except RuntimeError:
            await self.inbound.release(inbound_event)
            observer.webhook("unavailable")
            observer.turn_end(turn, "cancelled")
            return _answer(503, "error", "server is shutting down")
        observer.webhook("answered")
        if wait:
            await asyncio.wait({task})  # the turn goes on if this request is cancelled
        return _OK.copy()

    async def _closed_without_session(self, event: WebhookEvent) -> bool:
        """``CLOSED`` for a conversation with no session yet: its first turn may be running.

        Leaves a mark that turn ends the session on (issue: a session outliving its
        conversation). ``True`` when handled here.
        """
        if event.event_type != "CONVERSATION_UPDATED":
            return False
        if str(event.data.get("status", "")).upper() != "CLOSED":
            return False
        expected = self.tac.config.conversation_configuration_id
        configuration = event.data.get("configurationId")
        if expected and configuration and configuration != expected:
            return False
        conversation_id = event.data.get("id")
        if not isinstance(conversation_id, str) or not conversation_id:
            return False
        if not self.messaging_channels:
            return False
        await self.tac.close_conversation(conversation_id)
        return True

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
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            return _answer(400, "error", "webhook body must be JSON")
        try:
            result = await self.tac.process_cintel_event(payload)
        except InvalidOperatorEventError as exc:
            return _answer(400, "error", f"not a Conversation Intelligence event: {exc}")
        except Exception as exc:
            await self.tac.trigger_error(exc, _cintel_context(payload))
            return _answer(502, "error", f"Conversation Memory unavailable: {exc}")
        if not result.success:
            await self.tac.trigger_error(
                RuntimeError(f"Conversation Intelligence results not written: {result.error}"),
                _cintel_context(payload),
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
            session = await self.tac.get_session(str(event.data.get("id", "")))
            if session is None:
                return None
            return self._by_wire_name.get(Channel(session.channel).wire)
        return None

    async def _run(
        self, channel: BaseChannel, event: WebhookEvent, delivery: InboundDelivery
    ) -> None:
        turn = _obs.current_turn()
        try:
            await channel.handle_event(event, delivery)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # not done: another instance runs it
                await self.inbound.release(delivery.event)
            _obs.observer.turn_end(turn, "cancelled")
            raise
        except Exception as exc:
            if store_unavailable(exc):
                await delivery.abandon(exc)
                return
            await self.tac.trigger_error(
                exc,
                {
                    "conversation_id": event.data.get("conversationId") or event.data.get("id"),
                    "channel": channel.get_channel_name().lower(),
                    "event_type": event.event_type,
                },
            )
        _obs.observer.turn_end(turn)
        await delivery.finish(None, saved=True)

    async def _take_over(self, inbound_event: InboundEvent, delivery: InboundDelivery) -> None:
        """Run an event a stopped instance had accepted (its lease ran out)."""
        try:
            payload = json.loads(inbound_event.body)
            event = WebhookEvent.parse(payload)
            channel = await self.route_event(event)
        except Exception as exc:
            logger.warning("an event taken over could not be read: %s", exc)
            await delivery.finish(None, saved=True)
            return
        if channel is None or not channel.accepts(event):
            await delivery.finish(None, saved=True)
            return
        if inbound_event.sending:
            # Its reply's send was recorded: look whether it went out before running it again.
            try:
                self.tasks.spawn(
                    self._take_over_sent(inbound_event, event, channel, delivery),
                    name="webhook:takeover",
                )
            except RuntimeError:
                await self.inbound.release(inbound_event)
            return
        try:
            self.tasks.spawn(self._run(channel, event, delivery), name="webhook:takeover")
        except RuntimeError:
            await self.inbound.release(inbound_event)

    async def _take_over_sent(
        self,
        inbound_event: InboundEvent,
        event: WebhookEvent,
        channel: BaseChannel,
        delivery: InboundDelivery,
    ) -> None:
        """An event whose owner stopped after recording its reply's send: answer it only if
        the conversation shows no reply after the message (decision 0008)."""
        conversation_id = inbound_event.conversation_id
        # The Actions API answers 202 and writes the communication after: give a request the
        # owner sent just before it stopped time to show up (its lease expiry already took
        # several seconds), so that "not there" means "never sent".
        await asyncio.sleep(SENT_REPLY_SETTLE_SECONDS)
        went_out = await reply_went_out(self.tac, conversation_id, str(event.data.get("id", "")))
        if went_out is False:
            logger.info(
                "taken over after its send was recorded; no reply went out: answering it",
                conversation_id=conversation_id,
            )
            inbound_event.sending = False
            await self._run(channel, event, delivery)
            return
        await delivery.finish(None, saved=True)
        if went_out:
            logger.info(
                "taken over after its send was recorded; the reply had gone out",
                conversation_id=conversation_id,
            )
            return
        await self.tac.trigger_error(
            RuntimeError("the instance answering this message stopped while sending"),
            {
                "conversation_id": conversation_id,
                "event_type": event.event_type,
                "reply_uncertain": True,
            },
        )

    def _metrics_route(self, path: str) -> Route:
        """``GET {metrics_path}``: the Prometheus metrics this process recorded."""
        from tac.observability import enable_metrics, render_metrics

        registry = enable_metrics()

        async def metrics(request: Request) -> Response:
            body, content_type = render_metrics(registry)
            return Response(body, media_type=content_type)

        return Route(path, metrics, methods=["GET"], include_in_schema=False)

    # -- lifecycle -------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """Start TAC, the inbound keeper and the channels; drain and stop them on exit.

        The server wraps its app's own lifespan in this one; an app served by other means
        (an ASGI host of your own, a test) can enter it directly.
        """
        await self.tac.start()
        self.inbound.start()
        for channel in self.webhook_channels:
            await channel.start()
        try:
            yield
        finally:
            await self.shutdown()

    def _wrap_lifespan(self, app: FastAPI) -> None:
        """Run :meth:`lifespan` inside the app's own lifespan (whose state is kept)."""
        original: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app_: Any) -> AsyncIterator[Any]:
            async with original(app_) as state, self.lifespan(app_):
                yield state

        app.router.lifespan_context = lifespan

    def begin_drain(self) -> None:
        """Stop taking work: webhooks get 503, ``/readyz`` fails, no events are taken over."""
        if not self.draining:
            logger.info("draining: new webhooks are answered 503")
        self.draining = True
        self.inbound.taking_over = False

    async def drain(self) -> int:
        """Finish turns in progress within the grace period; return how many were cancelled.

        Cancelled turns' events are left to the other instances (with Redis).
        """
        self.begin_drain()
        cancelled = await self.tasks.drain(self.config.shutdown_grace_period)
        if cancelled:
            logger.warning("shutdown cancelled %d turns after the grace period", cancelled)
        return cancelled

    async def shutdown(self) -> None:
        """Drain turns in progress, then close channels and the TAC's clients."""
        await self.drain()
        await self.inbound.aclose()
        for channel in self.webhook_channels:
            await channel.aclose()
        await self.tac.aclose()

    def start(self) -> None:
        """Serve on ``config.host:config.port`` until interrupted (blocking).

        SIGTERM (or Ctrl-C) drains first: the socket stays open, webhooks are answered 503
        (Twilio retries them, through the proxy, on another instance) and ``/readyz`` fails,
        while turns in progress finish within ``config.shutdown_grace_period``; then the
        server stops. A second signal stops at once.
        """
        from tac.core.logging import uvicorn_log_config

        level, log_format = self.tac.config.log_level, self.tac.config.log_format
        server_config = uvicorn_config(
            self.app,
            self.config,
            log_config=uvicorn_log_config(level, log_format),  # opentac's format and masking
            log_level=level.lower(),
        )
        _DrainingServer(server_config, self).run()


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain between the first stop signal and the shutdown."""

    def __init__(self, config: Any, tac_server: TACFastAPIServer) -> None:
        super().__init__(config)
        self._tac_server = tac_server
        self._drain_requested = False
        self._drain: asyncio.Task[int] | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._drain_requested:
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        self._captured_signals.append(sig)
        self._drain_requested = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_requested and self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._tac_server.drain())
        if self._drain is not None and self._drain.done():
            self.should_exit = True
        result: bool = await super().on_tick(counter)
        return result


class _BodyTooLarge(Exception):
    """A request body went past its route's cap (``TACServerConfig``)."""


class _TwilioRoutes:
    """ASGI middleware for opentac's own routes: the guard, and ``POST /webhook`` direct."""

    def __init__(
        self,
        app: ASGIApp,
        guard: RequestGuard,
        webhook_path: str | None,
        webhook: Callable[[Request], Awaitable[Response]],
    ) -> None:
        self.app = app
        self.guard = guard
        self.webhook_path = webhook_path
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Twilio only POSTs; anything else (a probe, a 405) goes by untouched
        path = route_path(scope) if scope["type"] == "http" and scope["method"] == "POST" else ""
        limit = self.guard.limit(path)
        if limit is None:
            await self.app(scope, receive, send)
            return
        rejection = self.guard.reject(scope, path, limit)
        if rejection is not None:
            _obs.observer.webhook(_REJECTED.get(rejection.status_code, "malformed"))
            await rejection(scope, receive, send)
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
            if path == self.webhook_path:
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
            too_large = f"request body larger than {limit} bytes"
            await _answer(413, "error", too_large)(scope, receive, send)
        except ClientDisconnect:
            return  # the client went away (or was closed for being slow): nobody to answer


def _cintel_context(payload: Any) -> dict[str, Any]:
    """``on_error``'s context for a Conversation Intelligence event, whatever its shape."""
    context: dict[str, Any] = {"source": "conversation_intelligence"}
    if isinstance(payload, dict):
        conversation_id = payload.get("conversationId") or payload.get("conversation_id")
        if isinstance(conversation_id, str):
            context["conversation_id"] = conversation_id
    return context


def _conversation_of(event_type: str, data: dict[str, Any]) -> str | None:
    """The conversation an event is about (its session is read with the claim)."""
    if event_type.startswith("COMMUNICATION_"):
        value = data.get("conversationId")
    else:
        value = data.get("id")
    return value if isinstance(value, str) and value else None


class _Answer(Response):
    """A fixed JSON answer rendered once; :meth:`copy` gives each request its own headers."""

    media_type = "application/json"

    def copy(self) -> _Answer:
        answer = _Answer.__new__(_Answer)
        answer.__dict__.update(self.__dict__)
        answer.raw_headers = list(self.raw_headers)
        return answer


_REJECTED = {403: "forged", 413: "too_large"}  # the guard's answers, as webhook outcomes

_OK = _Answer(b'{"status":"ok"}')
_IGNORED = _Answer(b'{"status":"ignored"}')


def _debug(message: str, payload: Any) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        event_type = payload.get("eventType") if isinstance(payload, dict) else None
        logger.debug(message, event_type=event_type)
