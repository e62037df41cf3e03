"""TAC inside an Amazon Bedrock AgentCore runtime: :class:`TACAgentCoreApp`
(``pip install "opentac[agentcore]"``).

A webhook proxy in front of AgentCore (the partner package's Lambda) validates Twilio's
signature, answers the voice TwiML with a presigned WebSocket URL, and forwards Conversation
Orchestrator webhooks as ``invoke_agent_runtime`` payloads ``{"webhook_data": "<the webhook
JSON>", "idempotency_token": "…"}``. AgentCore authenticates those calls (SigV4, presigned
URLs) and strips Twilio's headers, so this app does not check Twilio signatures itself.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bedrock_agentcore.runtime import BedrockAgentCoreApp
from starlette.types import Message
from starlette.websockets import WebSocket

from tac.channels.base import BaseChannel
from tac.channels.voice.conversation_relay import DEFAULT_WELCOME_GREETING
from tac.core.logging import get_logger
from tac.models.conversation import WebhookEvent, WebhookPayloadError
from tac.models.session import Channel

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["TACAgentCoreApp", "TACAgentCoreWebSocketAdapter"]

logger = get_logger("tac_aws.agentcore_app")

_SEEN_TOKENS = 4096


class TACAgentCoreWebSocketAdapter(WebSocket):
    """A ConversationRelay WebSocket that speaks ``welcome_message`` once the call is set up.

    On AgentCore a TwiML ``welcomeGreeting`` never reaches the caller: Twilio plays it when
    the WebSocket opens, and AgentCore opens it only once the session's microVM has booted.
    So the greeting is sent as a ``text`` frame right after ``setup`` has been handled
    (``None``: no greeting; the call is silent until the caller speaks).
    """

    def __init__(self, websocket: WebSocket, welcome_message: str | None) -> None:
        self._outer = websocket
        self.welcome_message = welcome_message
        self._texts = 0
        self._greeted = welcome_message is None
        super().__init__(websocket.scope, receive=websocket.receive, send=websocket.send)

    async def receive(self) -> Message:
        if self._texts >= 1 and not self._greeted:  # setup was handled: greet before reading
            self._greeted = True
            frame = {"type": "text", "token": self.welcome_message, "last": True}
            await self._outer.send({"type": "websocket.send", "text": json.dumps(frame)})
        message = await super().receive()
        if message.get("type") == "websocket.receive":
            self._texts += 1
        return message


class TACAgentCoreApp:
    """TAC's channels on a ``bedrock_agentcore.BedrockAgentCoreApp`` (``self.app``).

    ``POST /invocations`` takes forwarded Orchestrator webhooks (``webhook_data``, a JSON
    string or object, and ``idempotency_token``) and answers once the event is handled, so the
    turn runs while AgentCore keeps the session's microVM alive. Each event goes to the
    channel it is for (by its author's channel, or its session's), a repeated
    ``idempotency_token`` is answered ``duplicate``. ``/ws`` serves ConversationRelay calls
    with the voice channel, greeting the caller once ``setup`` is handled.

    AgentCore runs async entrypoints on a worker event loop of its own; the app hands each
    webhook to the loop the server runs on, where TAC's clients and channels live.

    Args:
        tac: the app's TAC.
        voice_channel: the ConversationRelay voice channel (``None``: no voice).
        messaging_channels: messaging channels (one, or several: ``connector.channels.messaging``).
        welcome_message: the greeting spoken once a call is set up (``None``: none).
    """

    def __init__(
        self,
        tac: TAC,
        voice_channel: BaseChannel | None,
        messaging_channels: Sequence[BaseChannel] | BaseChannel | None = None,
        welcome_message: str | None = DEFAULT_WELCOME_GREETING,
    ) -> None:
        self.tac = tac
        self.voice_channel = voice_channel
        if messaging_channels is None:
            messaging: list[BaseChannel] = []
        elif isinstance(messaging_channels, BaseChannel):
            messaging = [messaging_channels]
        else:
            messaging = list(messaging_channels)
        self.messaging_channels = messaging
        self.welcome_message = welcome_message
        self.channels: list[BaseChannel] = [*messaging]
        if voice_channel is not None:
            self.channels.append(voice_channel)
        self._by_wire_name = {c.get_channel_name().upper(): c for c in self.channels}
        self._tokens: OrderedDict[str, None] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = BedrockAgentCoreApp(lifespan=self._lifespan)
        self.app.entrypoint(self._invocation)
        if voice_channel is not None:
            self.app.websocket(self._websocket)

    @asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        await self.tac.start()
        for channel in self.channels:
            await channel.start()
        try:
            yield
        finally:
            for channel in self.channels:
                await channel.aclose()
            await self.tac.aclose()

    def run(self, port: int = 8080, host: str | None = None) -> None:
        """Serve the app (blocking), as ``BedrockAgentCoreApp.run`` does."""
        self.app.run(port=port, host=host)

    async def _invocation(self, payload: Any) -> dict[str, str]:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await self.handle_webhook(payload)
        future = asyncio.run_coroutine_threadsafe(self.handle_webhook(payload), loop)
        return await asyncio.wrap_future(future)

    async def handle_webhook(self, payload: Any) -> dict[str, str]:
        """Handle one forwarded webhook; ``{"status": "ok" | "ignored" | "duplicate" |
        "error"}``."""
        if not isinstance(payload, Mapping):
            return {"status": "error", "message": "the payload must be a JSON object"}
        data = payload.get("webhook_data", "{}")
        try:
            event = WebhookEvent.parse(json.loads(data) if isinstance(data, str) else data)
        except (ValueError, WebhookPayloadError) as exc:
            return {"status": "error", "message": f"bad webhook_data: {exc}"}
        token = payload.get("idempotency_token")
        if isinstance(token, str) and token:
            if token in self._tokens:
                return {"status": "duplicate"}
            self._tokens[token] = None
            while len(self._tokens) > _SEEN_TOKENS:
                self._tokens.popitem(last=False)
        channel = await self._route(event)
        if channel is None or not channel.accepts(event):
            return {"status": "ignored"}
        try:
            await channel.process_webhook(event)
        except Exception as exc:
            await self.tac.trigger_error(
                exc,
                {
                    "conversation_id": event.data.get("conversationId") or event.data.get("id"),
                    "channel": channel.get_channel_name().lower(),
                    "event_type": event.event_type,
                },
            )
            return {"status": "error", "message": "Internal server error"}
        return {"status": "ok"}

    async def _route(self, event: WebhookEvent) -> BaseChannel | None:
        if event.event_type.startswith("COMMUNICATION_"):
            author = event.data.get("author") or {}
            return self._by_wire_name.get(str(author.get("channel", "")).upper())
        if event.event_type.startswith("CONVERSATION_"):
            session = await self.tac.get_session(str(event.data.get("id", "")))
            if session is not None:
                return self._by_wire_name.get(Channel(session.channel).wire)
        return None

    async def _websocket(self, websocket: WebSocket, context: Any) -> None:
        assert self.voice_channel is not None
        handle = getattr(self.voice_channel, "handle_websocket", None)
        if handle is None:
            raise TypeError(f"{type(self.voice_channel).__name__} serves no WebSocket")
        await handle(TACAgentCoreWebSocketAdapter(websocket, self.welcome_message))
