"""The voice channel's routes: TwiML, the ConversationRelay WebSocket, the action callback and
call events. The server builds them; the channel's handlers know nothing of the web framework."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request, WebSocket
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from tac.core.config import CallEventKind
from tac.core.logging import get_logger
from tac.models._base import first_error
from tac.models.voice import (
    AmdEvent,
    CallStatusEvent,
    ConversationRelayCallbackPayload,
    RecordingEvent,
    TwiMLRequest,
)
from tac.server.limits import FirstMessageDeadline
from tac.server.signature import build_websocket_signature_dependency

if TYPE_CHECKING:
    from tac.channels.voice.channel import VoiceChannel
    from tac.server.fastapi_server import TACFastAPIServer

logger = get_logger("server.voice")

_EVENT_MODELS: dict[str, type[CallStatusEvent | AmdEvent | RecordingEvent]] = {
    "status": CallStatusEvent,
    "amd": AmdEvent,
    "recording": RecordingEvent,
}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def voice_routes(channel: "VoiceChannel", server: "TACFastAPIServer") -> list[BaseRoute]:
    """``POST twiml_path``, the WebSocket, ``POST voice_action_path`` and the call events.

    Every route checks Twilio's signature first (the server's HTTP check: 403 when bad); the
    WebSocket's is checked before ``accept`` (close 1008 when bad). They are plain Starlette
    routes calling those checks directly: FastAPI's dependency machinery would cost more than
    the rest of a call's setup.
    """
    tac = channel.tac
    config = tac.config
    check_http = server.signature_dependency()
    check_websocket = build_websocket_signature_dependency(
        config.auth_token,
        public_base_url=config.public_url(),
        enabled=config.validate_signatures,
    )

    async def twiml(request: Request) -> Response:
        await check_http(request)
        form = await request.form()
        try:
            twiml_request = TwiMLRequest.from_form(form)
        except ValidationError as exc:
            return Response(f"invalid call webhook: {first_error(exc)[1]}", status_code=400)
        try:
            document = await channel.handle_incoming_call(twiml_request)
        except Exception as exc:
            await tac.trigger_error(
                exc, {"call_sid": twiml_request.call_sid, "channel": "voice", "route": "twiml"}
            )
            return Response("could not build TwiML", status_code=500)
        return Response(document, media_type="application/xml")

    async def websocket_endpoint(websocket: WebSocket) -> None:
        await check_websocket(websocket)
        await channel.handle_websocket(websocket)

    async def action(request: Request) -> Response:
        await check_http(request)
        form = await request.form()
        try:
            payload = ConversationRelayCallbackPayload.from_form(form)
        except ValidationError as exc:
            return Response(f"invalid callback: {first_error(exc)[1]}", status_code=400)
        if payload.account_sid and payload.account_sid != config.account_sid:
            return Response(EMPTY_TWIML, media_type="application/xml")
        document = await channel.handle_twilio_provider_callback(payload) or EMPTY_TWIML
        return Response(document, media_type="application/xml")

    def call_event(kind: CallEventKind) -> Callable[[Request], Awaitable[Response]]:
        model = _EVENT_MODELS[kind]

        async def route(request: Request) -> Response:
            await check_http(request)
            form = await request.form()
            try:
                event = model.from_form(form)
            except ValidationError as exc:
                where, message = first_error(exc, "form")
                return Response(f"invalid {kind} callback: {where}: {message}", 400)
            if event.account_sid and event.account_sid != config.account_sid:
                logger.debug("call event for another account ignored", kind=kind)
                return Response("", media_type="text/plain")
            await channel.handle_call_event(kind, event)
            return Response("", media_type="text/plain")

        return route

    paths = server.paths
    return [
        Route(paths.twiml, twiml, methods=["POST"], include_in_schema=False),
        WebSocketRoute(
            paths.voice_websocket,
            websocket_endpoint,
            # ``setup`` must follow the handshake promptly (close 1008 otherwise)
            middleware=[
                Middleware(FirstMessageDeadline, seconds=server.config.websocket_setup_timeout)
            ],
        ),
        Route(paths.voice_action, action, methods=["POST"], include_in_schema=False),
        *(
            Route(path, call_event(kind), methods=["POST"], include_in_schema=False)
            for kind, path in paths.call_events
        ),
    ]
