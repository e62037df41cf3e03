"""Microsoft Agent Framework on TAC: :class:`AgentFrameworkConnector`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from tac.connectors import ChannelsConnector, Turn
from tac.connectors.history import apply_heard
from tac.connectors.streaming import RunEvent, ToolFinished, ToolStarted
from tac.core.partner import PartnerConnector
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse
from tac_microsoft._version import __version__
from tac_microsoft.agent_framework_types import AgentSessionStore
from tac_microsoft.stores.in_memory import InMemoryAgentSessionStore
from tac_microsoft.utils import format_memory_context

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["AgentFrameworkConnector"]

MessageHook = Callable[[str, ConversationSession, "TACMemoryResponse | None"], str]
ErrorHook = Callable[[Exception, ConversationSession], str]


class AgentFrameworkConnector(ChannelsConnector):
    """Answer every channel with a Microsoft Agent Framework agent.

    ``create_agent(session)`` builds the conversation's agent (once per conversation); its
    ``AgentSession`` is loaded from ``session_store`` (default in memory) before each message
    and saved after it, and deleted when the conversation ends. The message sent to the agent
    is ``on_message(message, session, memory)`` or, by default, the memory then the message
    (:func:`format_memory_context`). Replies stream to voice; on an interrupt the session's
    last reply is cut to what the caller heard. ``on_error(exc, session)`` gives the text sent
    when the agent fails (the error also goes to ``on_error`` of TAC).

    Attributes: ``voice_channel``, ``sms_channel``, ``chat_channel``, ``rcs_channel`` and
    ``whatsapp_channel`` (``None`` without a sender, or without the Orchestrator).
    """

    def __init__(
        self,
        tac: TAC,
        create_agent: Callable[[ConversationSession], Any],
        on_message: MessageHook | None = None,
        on_error: ErrorHook | None = None,
        voice_config: Any = None,
        sms_config: Any = None,
        chat_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        session_store: AgentSessionStore | None = None,
    ) -> None:
        self.create_agent = create_agent
        self.on_message = on_message
        self.on_error = on_error
        self.session_store: AgentSessionStore = (
            session_store if session_store is not None else InMemoryAgentSessionStore()
        )
        self._agents: dict[str, Any] = {}
        self._sessions: dict[int, Any] = {}
        super().__init__(
            tac,
            voice_config=voice_config,
            sms_config=sms_config,
            chat_config=chat_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
        )
        self.voice_channel = self.voice
        self.sms_channel = self.sms
        self.chat_channel = self.chat
        self.rcs_channel = self.rcs
        self.whatsapp_channel = self.whatsapp
        self.messaging_channels = self.channels.messaging
        tac.register_partner_connector(PartnerConnector.AZURE_AGENT_FRAMEWORK, __version__)

    async def _agent_session(self, session: ConversationSession) -> tuple[Any, Any]:
        cid = session.conversation_id
        agent = self._agents.get(cid)
        if agent is None:
            agent = self._agents[cid] = self.create_agent(session)
        stored = await self.session_store.load(cid)
        return agent, stored if stored is not None else agent.create_session(session_id=cid)

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        agent, agent_session = await self._agent_session(turn.session)
        self._sessions[id(turn)] = agent_session
        if self.on_message is not None:
            message = self.on_message(turn.message, turn.session, turn.memory)
        else:
            message = format_memory_context(turn.memory, turn.message)
        try:
            async for update in agent.run(message, stream=True, session=agent_session):
                for content in getattr(update, "contents", None) or ():
                    kind = getattr(content, "type", None)
                    if kind == "function_call":
                        yield ToolStarted(str(getattr(content, "name", "") or ""))
                    elif kind == "function_result":
                        yield ToolFinished()
                if update.text:
                    yield update.text
        except Exception as exc:
            if self.on_error is None:
                raise
            await self.tac.trigger_error(
                exc, {"conversation_id": turn.session.conversation_id, "connector": "agent"}
            )
            yield self.on_error(exc, turn.session)

    async def finish_turn(self, turn: Turn, completed: bool) -> None:
        agent_session = self._sessions.pop(id(turn), None)
        if agent_session is None:
            return
        if not completed:  # cut short: keep the message, and the reply as far as it went
            messages = _messages(agent_session)
            if messages is not None:
                texts = [_text(m) for m in messages if m.get("role") == "user"]
                if not texts or turn.message not in texts[-1]:
                    messages.append(_message("user", turn.message))
                last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
                if turn.text and not any(
                    m.get("role") == "assistant" and _text(m) for m in messages[last_user + 1 :]
                ):
                    messages.append(_message("assistant", turn.text))
                agent_session = _with_messages(agent_session, messages)
        await self.session_store.save(turn.session.conversation_id, agent_session)

    async def trim_reply(self, session: ConversationSession, heard: str) -> None:
        cid = session.conversation_id
        agent_session = await self.session_store.load(cid)
        if agent_session is None:
            return
        messages = _messages(agent_session)
        if messages is None:
            return
        trimmed = apply_heard(messages, heard)
        if trimmed is not None:
            await self.session_store.save(cid, _with_messages(agent_session, trimmed))

    async def forget(self, session: ConversationSession) -> None:
        cid = session.conversation_id
        self._agents.pop(cid, None)
        delete = getattr(self.session_store, "delete", None)
        if delete is not None:
            await delete(cid)


def _messages(agent_session: Any) -> list[dict[str, Any]] | None:
    """The session's local history (Agent Framework's in-memory provider), as dicts."""
    state = agent_session.to_dict().get("state", {})
    history = state.get("in_memory") if isinstance(state, dict) else None
    messages = history.get("messages") if isinstance(history, dict) else None
    return list(messages) if isinstance(messages, list) else None


def _with_messages(agent_session: Any, messages: list[dict[str, Any]]) -> Any:
    from agent_framework import AgentSession

    data = agent_session.to_dict()
    data["state"]["in_memory"]["messages"] = messages
    return AgentSession.from_dict(data)


def _message(role: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "contents": [{"type": "text", "text": text}]}


def _text(message: dict[str, Any]) -> str:
    return "".join(
        str(c.get("text", ""))
        for c in message.get("contents") or []
        if isinstance(c, dict) and c.get("type") == "text"
    )
