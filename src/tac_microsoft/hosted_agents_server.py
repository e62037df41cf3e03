"""``TACHostedAgentsApp``: TAC in Hosted Agents of Foundry Agent Service
(``pip install "opentac[microsoft,server]"``).

A hosted agent's container serves two routes behind API Management: ``POST /invocations``
and ``WS /invocations_ws``; APIM checks Twilio's signatures, turns Twilio's forms into JSON
(``{"CallSid": ["CA…"]}``) and pins a conversation to one sandbox by the ``agent_session_id``
query parameter. So one handler tells Twilio's requests apart by their shape, and hands each to
the route of :class:`~tac.server.TACFastAPIServer` it stands for: the same webhook path
(routing, duplicate drop, tracked turn), the voice channel's TwiML and callbacks, the
ConversationRelay socket.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from tac.channels.voice import VoiceChannel
from tac.core.logging import get_logger
from tac.models.voice import (
    ConversationRelayCallbackPayload,
    TwiMLRequest,
    VoiceTwiMLOptionsConversationRelay,
)
from tac.server import TACFastAPIServer, TACServerConfig

if TYPE_CHECKING:
    from tac.channels.base import BaseChannel
    from tac.core.tac import TAC

__all__ = [
    "INVOCATIONS_PATH",
    "INVOCATIONS_WS_PATH",
    "StarletteWebSocketAdapter",
    "TACHostedAgentsApp",
]

logger = get_logger("tac_microsoft.hosted_agents")

INVOCATIONS_PATH = "/invocations"
INVOCATIONS_WS_PATH = "/invocations_ws"
SESSION_PARAMETER = "agent_session_id"
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
_CALLBACK_FIELDS = ("SessionId", "SessionStatus", "HandoffData")
"""Fields only the ``<Connect action>`` callback has (the call's TwiML request has none)."""


class StarletteWebSocketAdapter(WebSocket):
    """A Starlette ``WebSocket`` that a host may have accepted already: ``accept()`` is then a
    no-op (Hosted Agents' own server accepts before the handler runs). Hand it to
    ``voice_channel.handle_websocket``."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        super().__init__(websocket.scope, receive=websocket.receive, send=websocket.send)
        self.client_state = websocket.client_state
        self.application_state = websocket.application_state

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        if self.application_state == WebSocketState.CONNECTED:
            return
        await super().accept(subprotocol, headers)


def _flatten(body: Mapping[str, Any]) -> dict[str, str]:
    """APIM's form-as-JSON (each field a list of values) as a plain form: first values."""
    flat: dict[str, str] = {}
    for name, value in body.items():
        if isinstance(value, list):
            if value:
                flat[str(name)] = str(value[0])
        elif isinstance(value, str | int | float | bool):
            flat[str(name)] = str(value)
    return flat


class TACHostedAgentsApp(TACFastAPIServer):
    """TAC's server for Hosted Agents in Foundry Agent Service: ``self.app`` adds
    ``POST /invocations`` and ``WS /invocations_ws`` to ``TACFastAPIServer``'s app.

    ``/invocations`` takes, told apart by shape:

    - an Orchestrator webhook (``eventType`` + ``data``): the server's webhook path, answered
      once its turn is done (the platform may suspend a sandbox that has answered);
      a repeated ``I-Twilio-Idempotency-Token`` is answered ``duplicate``;
    - the call's TwiML request (``CallSid``, no ``eventType``): the voice channel's TwiML, with
      ``wss://{public URL}{voice_websocket_path}?agent_session_id={CallSid}`` (APIM maps that
      to ``/invocations_ws``) and ``agent_session_id`` as a ``<Parameter>`` too;
    - the ``<Connect action>`` callback (``SessionStatus``…): the voice channel's callback.

    An ``agent_session_id`` that is not the body's conversation (or call) is refused (400):
    the sandbox affinity is broken upstream. Signatures are APIM's job (it changes the body,
    so they cannot be checked here); the server's own signed routes stay as they are.

    Args:
        tac: the app's TAC.
        voice_channel: the ConversationRelay voice channel (``None``: no voice).
        messaging_channels: messaging channels.
        idempotency_cache_size: accepted for the partner package's sake: duplicates are
            dropped by TAC's inbound log (bounded; shared through Redis when
            ``TAC_STATE_URL`` is set).
        config: the server's settings (default: from the environment; the port is
            ``TWILIO_SERVER_PORT``, else the platform's ``PORT``, else 8088).
    """

    def __init__(
        self,
        tac: TAC,
        voice_channel: BaseChannel | None = None,
        messaging_channels: Sequence[BaseChannel] | None = None,
        *,
        idempotency_cache_size: int = 4096,
        config: TACServerConfig | None = None,
        app: FastAPI | None = None,
    ) -> None:
        if voice_channel is not None and not isinstance(voice_channel, VoiceChannel):
            raise TypeError(
                f"voice_channel must be a VoiceChannel or None, got {type(voice_channel).__name__}"
            )
        if idempotency_cache_size < 1:
            raise ValueError("idempotency_cache_size must be at least 1")
        self.idempotency_cache_size = idempotency_cache_size
        if config is None:
            config = TACServerConfig.from_env()
            if not os.environ.get("TWILIO_SERVER_PORT"):  # the platform's port, else its 8088
                config = config.model_copy(update={"port": int(os.environ.get("PORT") or 8088)})
        super().__init__(tac, voice_channel, messaging_channels, config, app)

    def _register_routes(self, app: FastAPI) -> None:
        super()._register_routes(app)
        app.router.routes.extend(self.hosted_routes())

    def hosted_routes(self) -> list[BaseRoute]:
        """The platform's routes (``/invocations``, ``/invocations_ws``, ``/readiness``)."""
        routes: list[BaseRoute] = [
            Route(INVOCATIONS_PATH, self.invoke, methods=["POST"], include_in_schema=False),
            Route("/readiness", self._readyz, methods=["GET"], include_in_schema=False),
        ]
        if self.voice_channel is not None:
            routes.append(WebSocketRoute(INVOCATIONS_WS_PATH, self.invoke_websocket))
        return routes

    async def invoke(self, request: Request) -> Response:
        """``POST /invocations``: a webhook, the call's TwiML request or its action callback."""
        limit = self.config.max_request_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _error(413, f"request body larger than {limit} bytes")
        raw = await request.body()
        if len(raw) > limit:
            return _error(413, f"request body larger than {limit} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        session_id = request.query_params.get(SESSION_PARAMETER) or None
        if "eventType" in body:
            data = body.get("data")
            if isinstance(data, dict):
                conversation = data.get("conversationId") or data.get("id")
                if session_id and isinstance(conversation, str) and conversation != session_id:
                    return _error(400, f"{SESSION_PARAMETER} does not match the conversation")
            return await self.accept_webhook(
                raw, request.headers.get("i-twilio-idempotency-token"), wait=True
            )
        form = _flatten(body)
        if not form.get("CallSid"):
            return _error(
                400,
                "expected an Orchestrator webhook (eventType) or a voice webhook (CallSid)",
            )
        if session_id and session_id != form["CallSid"]:
            return _error(400, f"{SESSION_PARAMETER} does not match the CallSid")
        if not isinstance(self.voice_channel, VoiceChannel):
            return _error(400, "no voice channel is configured")
        if any(name in form for name in _CALLBACK_FIELDS):
            return await self._action(self.voice_channel, form)
        return await self._twiml(self.voice_channel, form)

    def websocket_url(self, call_sid: str) -> str:
        """The call's WebSocket URL: ``{public}{voice_websocket_path}?agent_session_id=…``."""
        base = self.tac.config.public_websocket_url()
        if base is None:  # the server's constructor refuses voice without a public URL
            raise RuntimeError("voice needs the app's public URL (TAC_PUBLIC_BASE_URL)")
        path = self.tac.config.voice_websocket_path
        return f"{base}{path}?{SESSION_PARAMETER}={quote(call_sid, safe='')}"

    async def _twiml(self, channel: VoiceChannel, form: dict[str, str]) -> Response:
        try:
            twiml_request = TwiMLRequest.from_form(form)
        except ValidationError:
            return _error(400, "invalid voice webhook")
        call_sid = form["CallSid"]
        host = VoiceTwiMLOptionsConversationRelay(
            websocket_url=self.websocket_url(call_sid),
            custom_parameters={SESSION_PARAMETER: call_sid},
        )
        try:
            document = await channel.handle_incoming_call(twiml_request, host_twiml_options=host)
        except Exception as exc:
            await self.tac.trigger_error(
                exc, {"call_sid": call_sid, "channel": "voice", "route": "invocations"}
            )
            return _error(500, "could not build TwiML")
        return Response(document, media_type="application/xml")

    async def _action(self, channel: VoiceChannel, form: dict[str, str]) -> Response:
        try:
            payload = ConversationRelayCallbackPayload.from_form(form)
        except ValidationError:
            return _error(400, "invalid ConversationRelay callback")
        if payload.account_sid and payload.account_sid != self.tac.config.account_sid:
            return Response(_EMPTY_TWIML, media_type="application/xml")
        document = await channel.handle_twilio_provider_callback(payload) or _EMPTY_TWIML
        return Response(document, media_type="application/xml")

    async def invoke_websocket(self, websocket: WebSocket) -> None:
        """``WS /invocations_ws``: the call's ConversationRelay session."""
        assert isinstance(self.voice_channel, VoiceChannel)
        await self.voice_channel.handle_websocket(StarletteWebSocketAdapter(websocket))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message}, status_code=status)
