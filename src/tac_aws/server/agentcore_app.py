"""TAC inside an Amazon Bedrock AgentCore runtime: :class:`TACAgentCoreApp`
(``pip install "opentac[agentcore]"``).

A webhook proxy in front of AgentCore (:class:`tac_aws.proxy.AgentCoreLambdaProxy`)
validates Twilio's signature, answers the voice TwiML with a presigned WebSocket URL, and
forwards Conversation Orchestrator webhooks as ``invoke_agent_runtime`` payloads
``{"webhook_data": "<the webhook JSON>", "idempotency_token": "…"}``. AgentCore authenticates
those calls (SigV4, presigned URLs) and strips Twilio's headers, so this app does not check
Twilio signatures itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from bedrock_agentcore.runtime import BedrockAgentCoreApp
from starlette.types import Message
from starlette.websockets import WebSocket

from tac.channels.base import BaseChannel
from tac.channels.voice.conversation_relay import DEFAULT_WELCOME_GREETING
from tac.core.logging import get_logger
from tac.server import TACFastAPIServer, TACServerConfig

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["TACAgentCoreApp", "TACAgentCoreWebSocketAdapter"]

logger = get_logger("tac_aws.agentcore_app")


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


class _RuntimeWebhooks(TACFastAPIServer):
    """The server's webhook path, for ``/invocations``; calls are served on the runtime's
    ``/ws``, so no voice routes (and no public URL) are needed."""

    serves_voice = False


class TACAgentCoreApp:
    """TAC's channels on a ``bedrock_agentcore.BedrockAgentCoreApp`` (``self.app``).

    ``POST /invocations`` takes forwarded Orchestrator webhooks (``webhook_data``, a JSON
    string or object, and ``idempotency_token``) and answers once the event is handled, so the
    turn runs while AgentCore keeps the session's microVM alive. Each takes
    ``TACFastAPIServer``'s webhook path (``self.server.accept_webhook``): routed to its
    channel, a repeated token answered ``duplicate`` (through Redis too, with
    ``TAC_STATE_URL``), turns drained on shutdown. ``/ws`` serves ConversationRelay calls with
    the voice channel, greeting the caller once ``setup`` is handled.

    AgentCore runs async entrypoints on a worker event loop of its own; the app hands each
    webhook to the loop the server runs on, where TAC's clients and channels live.

    Args:
        tac: the app's TAC.
        voice_channel: the ConversationRelay voice channel (``None``: no voice).
        messaging_channels: messaging channels (one, or several: ``connector.channels.messaging``).
        welcome_message: the greeting spoken once a call is set up (``None``: none).
        config: the webhook path's settings (default: from the environment).
    """

    def __init__(
        self,
        tac: TAC,
        voice_channel: BaseChannel | None,
        messaging_channels: Sequence[BaseChannel] | BaseChannel | None = None,
        welcome_message: str | None = DEFAULT_WELCOME_GREETING,
        config: TACServerConfig | None = None,
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
        self.server = _RuntimeWebhooks(tac, voice_channel, messaging, config)
        self.channels: list[BaseChannel] = self.server.webhook_channels
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = BedrockAgentCoreApp(lifespan=self._lifespan)
        self.app.entrypoint(self._invocation)
        if voice_channel is not None:
            self.app.websocket(self._websocket)

    @asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        async with self.server.lifespan():
            yield

    def run(self, port: int = 8080, host: str | None = None) -> None:
        """Serve the app (blocking), as ``BedrockAgentCoreApp.run`` does."""
        self.app.run(port=port, host=host)

    async def _invocation(self, payload: Any) -> dict[str, Any]:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await self.handle_webhook(payload)
        future = asyncio.run_coroutine_threadsafe(self.handle_webhook(payload), loop)
        return await asyncio.wrap_future(future)

    async def handle_webhook(self, payload: Any) -> dict[str, Any]:
        """Handle one forwarded webhook; ``{"status": "ok" | "ignored" | "duplicate" |
        "error", "message"?}`` (a turn's own failure goes to ``tac.on_error``)."""
        if not isinstance(payload, Mapping):
            return {"status": "error", "message": "the payload must be a JSON object"}
        data = payload.get("webhook_data", "{}")
        body = data.encode() if isinstance(data, str) else json.dumps(data).encode()
        token = payload.get("idempotency_token")
        response = await self.server.accept_webhook(
            body, token if isinstance(token, str) and token else None, wait=True
        )
        answer: dict[str, Any] = json.loads(bytes(response.body))
        return answer

    async def _websocket(self, websocket: WebSocket, context: Any) -> None:
        assert self.voice_channel is not None
        handle = getattr(self.voice_channel, "handle_websocket", None)
        if handle is None:
            raise TypeError(f"{type(self.voice_channel).__name__} serves no WebSocket")
        await handle(TACAgentCoreWebSocketAdapter(websocket, self.welcome_message))
