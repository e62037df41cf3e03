"""Strands Agents on TAC: :class:`StrandsConnector`.

The connector talks to Strands through the ``Agent``'s documented interface only (``messages``,
``system_prompt``, ``stream_async(prompt)`` or ``invoke_async(prompt)``, ``cleanup()``) and
never imports ``strands`` itself, so opentac does not depend on it (``pip install
"opentac[strands]"``; ``strands-agents`` pins ``mcp<2.2``, which ``opentac[mcp]`` accepts).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tac.adapters import AdapterOptions, MemoryPromptBuilder
from tac.connectors import ConversationHistory, Turn
from tac.connectors.history import apply_heard
from tac.connectors.streaming import RunEvent, ToolFinished, ToolStarted
from tac.core.logging import get_logger
from tac.core.partner import PartnerConnector
from tac.models.session import ConversationSession
from tac_aws.connectors._base import AWSConnector

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["StrandsConnector"]

logger = get_logger("tac_aws.strands")

AgentFactory = Callable[[ConversationSession], Any]
Message = dict[str, Any]

DEFAULT_MAX_CONVERSATIONS = 10_000


@dataclass
class _Conversation:
    agent: Any
    base_prompt: str | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Running:
    """One turn's bookkeeping, from its start to :meth:`StrandsConnector.finish_turn`."""

    conversation: _Conversation
    before: list[Any] | None = None  # the messages before the turn ran (None: it never ran)
    prompt: Any = None
    merged: bool = False  # an unanswered prompt was taken back into this turn's
    tail: str = ""  # text streamed since the model's last complete message


class StrandsConnector(AWSConnector):
    """Answer every channel with a Strands agent, one agent per conversation.

    ``agent_factory(session)`` (sync or async) builds the conversation's ``strands.Agent`` on
    its first message. Each turn, the customer's memory (``MemoryPromptBuilder``, following
    the channel's ``memory_mode``) is put after the agent's own system prompt, replacing the
    previous turn's, so it never piles up in the messages. Replies stream to voice token by
    token (``stream_async``) and are sent whole on messaging. A conversation's turns run one
    at a time (a Strands agent refuses concurrent invocations). When the session ends, its
    agent is cleaned up and dropped.

    History: with ``history=None`` (default) each agent keeps its own ``messages`` in this
    process (or in its Strands session manager), at most ``max_conversations`` agents, least
    recently used dropped first. With a :class:`~tac.connectors.ConversationHistory` (e.g.
    ``create_history(tac)``: Redis when ``TAC_STATE_URL`` names one), the messages are loaded
    from it before each turn and saved after, so every instance sees them. Either way an
    interrupt cuts the last reply to what the caller heard, and a tool call cut short is
    dropped, never left unanswered.

    Attributes: ``channels`` (:class:`ConnectorChannels`), ``voice``, ``sms``, ``chat``,
    ``rcs``, ``whatsapp``.
    """

    partner = PartnerConnector.AWS_STRANDS

    def __init__(
        self,
        tac: TAC,
        agent_factory: AgentFactory,
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
        *,
        history: ConversationHistory | None = None,
        memory_options: AdapterOptions | None = None,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        filler: str | None = None,
    ) -> None:
        if max_conversations < 1:
            raise ValueError("max_conversations must be positive")
        self.agent_factory = agent_factory
        self.memory_options = memory_options
        self.max_conversations = max_conversations
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        self._running: dict[int, _Running] = {}
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
            history=history,
            filler=filler,
        )

    @property
    def agents(self) -> dict[str, Any]:
        """The live agents, by conversation id."""
        return {cid: conversation.agent for cid, conversation in self._conversations.items()}

    async def _conversation(self, session: ConversationSession) -> _Conversation:
        cid = session.conversation_id
        conversation = self._conversations.get(cid)
        if conversation is not None:
            self._conversations.move_to_end(cid)
            return conversation
        agent = self.agent_factory(session)
        if inspect.isawaitable(agent):
            agent = await agent
            raced = self._conversations.get(cid)  # another message built one meanwhile
            if raced is not None:
                await _cleanup(agent)
                return raced
        base = getattr(agent, "system_prompt", None)
        conversation = _Conversation(agent, base if isinstance(base, str) else None)
        self._conversations[cid] = conversation
        while len(self._conversations) > self.max_conversations:
            idle = next((k for k, c in self._conversations.items() if not c.lock.locked()), None)
            if idle is None:  # every agent is mid-turn: none is dropped under its turn
                break
            await _cleanup(self._conversations.pop(idle).agent)
        return conversation

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        conversation = await self._conversation(turn.session)
        await conversation.lock.acquire()  # released by finish_turn, once the turn is saved
        running = self._running[id(turn)] = _Running(conversation)
        agent = conversation.agent
        if self.history is not None:
            agent.messages = _from_prompt(await self.history.get(turn.session.conversation_id))
        prompt, running.merged = _prompt(agent.messages, turn.message)
        running.prompt = prompt
        running.before = list(agent.messages)
        memory = MemoryPromptBuilder.build(turn.memory, turn.session, self.memory_options)
        if memory or conversation.base_prompt is not None:
            base = conversation.base_prompt
            agent.system_prompt = f"{base}\n\n{memory}" if base and memory else (memory or base)
        stream = getattr(agent, "stream_async", None)
        if stream is None:
            result = await agent.invoke_async(prompt)
            yield str(result)
            return
        async with contextlib.aclosing(stream(prompt)) as events:
            async for event in events:
                if not isinstance(event, Mapping):
                    continue
                data = event.get("data")
                if isinstance(data, str) and data:
                    running.tail += data
                    yield data
                message = event.get("message")
                if isinstance(message, Mapping):
                    running.tail = ""
                    for marker in _tool_markers(message):
                        yield marker

    async def finish_turn(self, turn: Turn, completed: bool) -> None:
        running = self._running.pop(id(turn), None)
        if running is None:
            return
        conversation = running.conversation
        try:
            if running.before is None:
                return
            agent = conversation.agent
            seen = {id(message) for message in running.before}
            messages = list(agent.messages)
            if not completed:
                messages = _repair(messages, seen, running.prompt, running.tail)
                agent.messages = messages
            if self.history is not None:
                cid = turn.session.conversation_id
                if running.merged:  # the stored unanswered prompt is now part of this turn's
                    await self.history.clear(cid)
                    await self.history.append(cid, messages)
                else:
                    added = [message for message in messages if id(message) not in seen]
                    await self.history.append(cid, added)
        finally:
            conversation.lock.release()

    async def trim_reply(self, session: ConversationSession, heard: str) -> None:
        if self.history is not None:
            await super().trim_reply(session, heard)
            return
        conversation = self._conversations.get(session.conversation_id)
        if conversation is None:
            return
        trimmed = apply_heard(conversation.agent.messages, heard)
        if trimmed is not None:
            conversation.agent.messages = trimmed

    async def forget(self, session: ConversationSession) -> None:
        await super().forget(session)
        conversation = self._conversations.pop(session.conversation_id, None)
        if conversation is not None:
            await _cleanup(conversation.agent)


def _blocks(message: Mapping[str, Any]) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _is_prompt(message: Mapping[str, Any]) -> bool:
    return message.get("role") == "user" and any(
        isinstance(block, Mapping) and "toolResult" not in block for block in _blocks(message)
    )


def _tool_markers(message: Mapping[str, Any]) -> list[RunEvent]:
    markers: list[RunEvent] = []
    for block in _blocks(message):
        if not isinstance(block, Mapping):
            continue
        if message.get("role") == "assistant" and isinstance(block.get("toolUse"), Mapping):
            markers.append(ToolStarted(str(block["toolUse"].get("name", ""))))
        elif message.get("role") == "user" and isinstance(block.get("toolResult"), Mapping):
            markers.append(ToolFinished())
    return markers


def _from_prompt(messages: Sequence[Any]) -> list[Any]:
    """Messages from the first user prompt on (a bounded history may start mid tool call)."""
    for index, message in enumerate(messages):
        if isinstance(message, Mapping) and _is_prompt(message):
            return list(messages[index:])
    return []


def _prompt(messages: list[Any], text: str) -> tuple[Any, bool]:
    """The turn's prompt. A prompt left unanswered (its turn was cut short before any reply)
    is taken back and joined to this one, so roles keep alternating as model APIs require;
    the flag says so."""
    if messages and isinstance(messages[-1], Mapping) and _is_prompt(messages[-1]):
        earlier = messages.pop()
        return [*_blocks(earlier), {"text": text}], True
    return text, False


def _repair(messages: list[Any], seen: set[int], prompt: Any, tail: str) -> list[Any]:
    """A turn cut short, made valid: tool calls that never got a result are dropped, the user's
    message is kept, and what was said since the last complete message is kept as a reply."""
    new = [message for message in messages if id(message) not in seen]
    kept = [message for message in messages if id(message) in seen]
    answered = {
        block["toolResult"].get("toolUseId")
        for message in new
        for block in _blocks(message)
        if isinstance(block, Mapping) and isinstance(block.get("toolResult"), Mapping)
    }
    repaired: list[Message] = []
    for message in new:
        blocks = [
            block
            for block in _blocks(message)
            if not (
                isinstance(block, Mapping)
                and isinstance(block.get("toolUse"), Mapping)
                and block["toolUse"].get("toolUseId") not in answered
            )
        ]
        if blocks:
            repaired.append({**message, "content": blocks})
    if not any(_is_prompt(message) for message in repaired):
        content = prompt if isinstance(prompt, list) else [{"text": str(prompt)}]
        repaired.insert(0, {"role": "user", "content": content})
    if tail:
        repaired.append({"role": "assistant", "content": [{"text": tail}]})
    return [*kept, *repaired]


async def _cleanup(agent: Any) -> None:
    cleanup = getattr(agent, "cleanup", None)
    if not callable(cleanup):
        return
    try:
        result = await asyncio.to_thread(cleanup)  # MCP clients' cleanup may block
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        logger.warning("cleaning up a Strands agent failed: %s", exc)
