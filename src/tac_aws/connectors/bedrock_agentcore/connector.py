"""Amazon Bedrock AgentCore runtimes on TAC: :class:`BedrockAgentCoreConnector`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from tac.adapters import MemoryPromptBuilder
from tac.connectors import Turn
from tac.connectors.streaming import RunEvent
from tac.core.logging import get_logger
from tac.core.partner import PartnerConnector
from tac.models.session import Channel, ConversationSession
from tac_aws.connectors._base import AWSConnector, as_mapping, call_off_loop, iterate_off_loop
from tac_aws.connectors.bedrock_agentcore.config import RuntimeConfig

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["BedrockAgentCoreConnector", "parse_streaming_response"]

logger = get_logger("tac_aws.agentcore")


class AgentCoreError(RuntimeError):
    """The runtime reported an error."""


class BedrockAgentCoreConnector(AWSConnector):
    """Answer every channel with an AgentCore runtime: over HTTP (``invoke_agent_runtime``,
    its ``text/event-stream`` tokens streamed to voice) and, for voice, optionally over one
    WebSocket per call, to which interrupts are forwarded. Nothing blocks the event loop.

    Attributes: ``channels`` (:class:`ConnectorChannels`), ``voice``, ``sms``, ``chat``,
    ``rcs``, ``whatsapp``.
    """

    partner = PartnerConnector.AWS_AGENTCORE

    def __init__(
        self,
        tac: TAC,
        runtime: RuntimeConfig | Mapping[str, Any],
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
    ) -> None:
        self.runtime: RuntimeConfig = as_mapping(runtime, RuntimeConfig)
        self.agent_connections: dict[str, Any] = {}
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        session = turn.session
        memory = MemoryPromptBuilder.build(turn.memory, session)
        socket_config = self.runtime.websocket
        if socket_config is not None and Channel(session.channel) == Channel.VOICE:
            socket = await self._socket(session)
            payload = socket_config.payload_fn(session, turn.message, memory)
            await socket.send(json.dumps(payload))
            async for token in _socket_tokens(socket):
                yield token
            return
        response = await call_off_loop(self.runtime.http, session, turn.message, memory)
        async for token in parse_streaming_response(response):
            yield token

    async def _socket(self, session: ConversationSession) -> Any:
        socket = self.agent_connections.get(session.conversation_id)
        if socket is None:
            assert self.runtime.websocket is not None
            socket = await self.runtime.websocket.factory(session)
            self.agent_connections[session.conversation_id] = socket
        return socket

    async def handle_interrupt(self, session: ConversationSession, interrupt: Any) -> None:
        await super().handle_interrupt(session, interrupt)
        socket = self.agent_connections.get(session.conversation_id)
        if socket is None:
            return
        heard = getattr(interrupt, "utterance_until_interrupt", None) or ""
        try:
            await socket.send(json.dumps({"type": "interrupt", "utterance_until_interrupt": heard}))
        except Exception as exc:
            logger.warning("could not forward the interrupt: %s", exc)

    async def forget(self, session: ConversationSession) -> None:
        await super().forget(session)
        socket = self.agent_connections.pop(session.conversation_id, None)
        if socket is not None:
            try:
                await socket.close()
            except Exception as exc:
                logger.debug("closing the runtime's WebSocket failed: %s", exc)


async def _socket_tokens(socket: Any) -> AsyncIterator[str]:
    while True:
        data = json.loads(await socket.recv())
        kind = data.get("type")
        if kind == "text":
            if data.get("token"):
                yield str(data["token"])
            if data.get("last"):
                return
        elif kind == "error":
            raise AgentCoreError(str(data.get("message", "the runtime reported an error")))


async def parse_streaming_response(response: Mapping[str, Any]) -> AsyncIterator[str]:
    """The text of an ``invoke_agent_runtime`` response, read off the event loop.

    ``text/event-stream``: each ``data:`` line, as the token of ``{"type": "text", "token"}``,
    the ``text`` of an object that has one, or the raw line; ``application/json`` and
    anything else: the whole body.
    """
    body = response.get("response")
    if body is None:
        return
    content_type = str(response.get("contentType", ""))
    if "text/event-stream" in content_type:
        async for line in iterate_off_loop(body.iter_lines()):
            text = line.decode("utf-8", errors="replace").rstrip("\r")
            if not text.startswith("data:"):
                continue
            data = text[5:].lstrip(" ")
            if not data or data == "[DONE]":
                continue
            token = _token(data)
            if token:
                yield token
        return
    chunks = [chunk async for chunk in iterate_off_loop(body.iter_chunks())]
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    if "json" in content_type:
        token = _token(raw)
        if token is not None:
            yield token
            return
    if raw:
        yield raw


def _token(data: str) -> str | None:
    try:
        value = json.loads(data)
    except json.JSONDecodeError:
        return data
    if isinstance(value, dict):
        if value.get("type") == "text":
            return str(value.get("token", ""))
        if "text" in value:
            return str(value["text"])
        if "response" in value:
            return str(value["response"])
    if isinstance(value, str):
        return value
    return data
