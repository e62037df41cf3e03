"""Azure AI Foundry Voice Live on TAC, in text mode behind ConversationRelay."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect

from tac.channels import VoiceChannel
from tac.connectors import Connector, Turn
from tac.connectors.streaming import RunEvent, ToolFinished, ToolStarted
from tac.core.logging import get_logger
from tac.core.partner import PartnerConnector
from tac.models.session import ConversationSession
from tac_microsoft._version import __version__
from tac_microsoft.utils import format_memory_context
from tac_microsoft.voice_live_types import VoiceLiveConfig, VoiceLiveError

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["VoiceLiveConnector", "VoiceLiveSession"]

logger = get_logger("tac_microsoft.voice_live")


class VoiceLiveSession:
    """One call's Voice Live WebSocket: the model's side of the conversation."""

    def __init__(self, config: VoiceLiveConfig, session_id: str) -> None:
        self.config = config
        self.session_id = session_id
        self._socket: ClientConnection | None = None
        self.last_reply_id: str | None = None
        """The conversation item of the last reply (trimmed after an interrupt)."""

    async def connect(self) -> None:
        """Open the socket, wait for ``session.created``, configure with ``session.update``."""
        self._socket = await connect(
            self.config.ws_url, additional_headers=await self._auth_headers()
        )
        await self._expect("session.created")
        session: dict[str, Any] = {
            "modalities": self.config.modalities,
            "instructions": self.config.instructions,
            "tools": self.config.tools,
        }
        if self.config.temperature is not None:
            session["temperature"] = self.config.temperature
        if self.config.max_response_output_tokens is not None:
            session["max_response_output_tokens"] = self.config.max_response_output_tokens
        await self._send({"type": "session.update", "session": session})
        await self._expect("session.updated")

    async def send_message_and_stream(self, text: str) -> AsyncIterator[RunEvent]:
        """Send a user message; yield the reply's text (and tool markers) as it comes.

        Tool calls run here and the response continues after their outputs.
        """
        await self._send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        while True:
            calls: list[dict[str, Any]] = []
            async for event in self._response():
                if isinstance(event, dict):
                    calls.append(event)
                else:
                    yield event
            if not calls:
                return
            for call in calls:
                yield ToolStarted(call["name"])
                output = await self._run_tool(call)
                yield ToolFinished(call["name"])
                await self._send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call["call_id"],
                            "output": output,
                        },
                    }
                )

    async def _response(self) -> AsyncIterator[str | dict[str, Any]]:
        await self._send({"type": "response.create"})
        response_id: str | None = None
        while True:
            event = await self._receive()
            kind = event.get("type")
            if kind == "error":
                raise VoiceLiveError(str(event.get("error", {}).get("message", event)))
            if kind == "response.created":
                response_id = event.get("response", {}).get("id")
                continue
            if response_id is None or event.get("response_id", response_id) != response_id:
                continue  # what is left of a response cut short
            if kind == "response.output_item.added":
                item = event.get("item", {})
                if item.get("type") == "message" and item.get("role") == "assistant":
                    self.last_reply_id = item.get("id")
            elif kind == "response.text.delta" and event.get("delta"):
                yield str(event["delta"])
            elif kind == "response.function_call_arguments.done":
                yield {
                    "name": event.get("name", ""),
                    "call_id": event.get("call_id", ""),
                    "arguments": event.get("arguments", "{}"),
                }
            elif kind == "response.done":
                response = event.get("response", {})
                if response.get("id", response_id) != response_id:
                    continue
                for item in response.get("output", []):
                    if item.get("type") == "message" and item.get("role") == "assistant":
                        self.last_reply_id = item.get("id")
                if response.get("status") == "failed":
                    detail = response.get("status_details") or {}
                    raise VoiceLiveError(f"the response failed: {detail}")
                return

    async def _run_tool(self, call: dict[str, Any]) -> str:
        executor = self.config.tool_executors.get(call["name"])
        if executor is None:
            return json.dumps({"error": f"unknown tool {call['name']!r}"})
        try:
            arguments = json.loads(call["arguments"] or "{}")
            result = await executor(**arguments)
        except Exception as exc:
            logger.warning("tool %s failed: %s", call["name"], exc)
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        return result if isinstance(result, str) else json.dumps(result, default=str)

    async def cancel_response(self) -> None:
        """Stop the response in progress (the caller interrupted)."""
        await self._send({"type": "response.cancel"})

    async def replace_last_reply(self, heard: str) -> None:
        """Make the model's history hold only what the caller heard of the last reply."""
        if self.last_reply_id is None:
            return
        await self._send({"type": "conversation.item.delete", "item_id": self.last_reply_id})
        self.last_reply_id = None
        if heard:
            await self._send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "text", "text": heard}],
                    },
                }
            )

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
            self._socket = None

    async def _send(self, event: dict[str, Any]) -> None:
        if self._socket is None:
            raise VoiceLiveError("the Voice Live session is not connected")
        await self._socket.send(json.dumps(event))

    async def _receive(self) -> dict[str, Any]:
        if self._socket is None:
            raise VoiceLiveError("the Voice Live session is not connected")
        data: dict[str, Any] = json.loads(await self._socket.recv())
        return data

    async def _expect(self, kind: str) -> None:
        while True:
            event = await self._receive()
            if event.get("type") == kind:
                return
            if event.get("type") == "error":
                raise VoiceLiveError(str(event.get("error", {}).get("message", event)))

    async def _auth_headers(self) -> dict[str, str]:
        if self.config.api_key:
            return {"api-key": self.config.api_key}
        credential = self.config.credential
        if credential is None:
            raise VoiceLiveError("VoiceLiveConfig needs api_key or credential")
        scope = "https://cognitiveservices.azure.com/.default"
        if inspect.iscoroutinefunction(credential.get_token):
            token = await credential.get_token(scope)
        else:
            token = await asyncio.to_thread(credential.get_token, scope)
        return {"Authorization": f"Bearer {token.token}"}


class VoiceLiveConnector(Connector):
    """Answer calls with Azure AI Foundry Voice Live in text mode: ConversationRelay turns
    speech into text and back, Voice Live writes the replies (streamed to the caller).

    One Voice Live session per call, opened on its first message and closed when the call ends.
    On an interrupt the response in progress is cancelled and the model's copy of the last
    reply is replaced by what the caller heard. ``on_message(message, session, memory)``
    builds the text sent (default :func:`format_memory_context`); ``on_error(exc, session)``
    gives what to say when Voice Live fails.

    Attributes: ``voice_channel``.
    """

    def __init__(
        self,
        tac: TAC,
        config: VoiceLiveConfig,
        on_message: Callable[..., str] | None = None,
        on_error: Callable[[Exception, ConversationSession], str] | None = None,
        voice_config: Any = None,
    ) -> None:
        self.config = config
        self.on_message = on_message
        self.on_error = on_error
        self.voice_channel = VoiceChannel(tac, config=voice_config)
        self._voice_sessions: dict[str, VoiceLiveSession] = {}
        super().__init__(tac, channels=["voice"])
        tac.register_partner_connector(PartnerConnector.AZURE_VOICE_LIVE, __version__)

    async def _session(self, conversation_id: str) -> VoiceLiveSession:
        session = self._voice_sessions.get(conversation_id)
        if session is None:
            session = VoiceLiveSession(self.config, conversation_id)
            await session.connect()
            self._voice_sessions[conversation_id] = session
        return session

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        if self.on_message is not None:
            text = self.on_message(turn.message, turn.session, turn.memory)
        else:
            text = format_memory_context(turn.memory, turn.message)
        try:
            session = await self._session(turn.session.conversation_id)
            async for event in session.send_message_and_stream(text):
                yield event
        except (VoiceLiveError, OSError) as exc:
            if self.on_error is None:
                raise
            await self.tac.trigger_error(
                exc, {"conversation_id": turn.session.conversation_id, "connector": "voice_live"}
            )
            yield self.on_error(exc, turn.session)

    async def finish_turn(self, turn: Turn, completed: bool) -> None:
        session = self._voice_sessions.get(turn.session.conversation_id)
        if not completed and session is not None:
            try:
                await session.cancel_response()
            except Exception as exc:
                logger.debug("response.cancel failed: %s", exc)

    async def trim_reply(self, session: ConversationSession, heard: str) -> None:
        live = self._voice_sessions.get(session.conversation_id)
        if live is not None:
            await live.replace_last_reply(heard)

    async def forget(self, session: ConversationSession) -> None:
        live = self._voice_sessions.pop(session.conversation_id, None)
        if live is not None:
            await live.close()
