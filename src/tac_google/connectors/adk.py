"""Google ADK agents on TAC: in process (:class:`ADKAgentConnector`) or deployed to Agent
Platform Runtime / Agent Engine (:class:`ADKAgentEngineConnector`)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tac.connectors import Turn
from tac.connectors.streaming import RunEvent, ToolFinished, ToolStarted
from tac.models.session import ConversationSession
from tac.tools.base import TACTool
from tac_google.connectors._base import GoogleConnector

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = [
    "ADKAgentConnector",
    "ADKAgentEngineConnector",
    "AgentEngineConnectorBase",
    "create_handoff_tool",
    "events_to_text",
    "tag_message",
    "to_adk_tool",
]


def to_adk_tool(tool: TACTool) -> Any:
    """A TAC tool as an ADK ``FunctionTool`` (its parameters and description kept)."""
    from google.adk.tools.function_tool import FunctionTool

    return FunctionTool(tool.implementation)


def create_handoff_tool(tac: TAC, attributes: dict[str, Any] | None = None) -> Any:
    """TAC's Studio handoff as an ADK tool for :class:`ADKAgentConnector`'s agents: one tool
    for every conversation (it finds the conversation from the ADK session it runs in)."""
    from google.adk.tools.function_tool import FunctionTool
    from google.adk.tools.tool_context import ToolContext

    from tac.tools.handoff import create_studio_handoff_tool

    async def handoff(reason: str, tool_context: ToolContext) -> dict[str, Any]:
        """Hand the customer to a human agent.

        Args:
            reason: Why a human should take over.
        """
        session = await tac.get_session(tool_context.session.id)
        if session is None:
            return {"status": "handoff_failed", "reason": "the conversation has ended"}
        tool = create_studio_handoff_tool(tac, session, attributes)
        result: dict[str, Any] = await tool(reason=reason)
        return result

    return FunctionTool(handoff)


def tag_message(message: str, memory: str | None) -> str:
    """``<MEMORY>…</MEMORY>`` (when there is memory) then ``<USER_MESSAGE>…</USER_MESSAGE>``:
    ADK's query API has one content channel, so the memory travels with the message."""
    tagged = f"<USER_MESSAGE>\n{message}\n</USER_MESSAGE>"
    return f"<MEMORY>\n{memory}\n</MEMORY>\n{tagged}" if memory else tagged


class _ADKBase(GoogleConnector):
    """What the ADK connectors share: a user per conversation, and the message tagged with the
    memory when it changed since it was last sent."""

    def __init__(self, tac: TAC, **channel_configs: Any) -> None:
        super().__init__(tac, **channel_configs)
        self._users: dict[str, str] = {}

    def user_id(self, session: ConversationSession) -> str:
        """The ADK user of a conversation (its profile, fixed at its first message)."""
        cid = session.conversation_id
        if cid not in self._users:
            self._users[cid] = session.profile_id or f"anonymous-{cid}"
        return self._users[cid]

    def message_for(self, turn: Turn) -> str:
        """The message sent to the agent: tagged, with the memory when it changed."""
        memory = self.new_memory(turn)
        self.memory_sent(turn, memory)
        return tag_message(turn.message, memory)

    async def forget(self, session: ConversationSession) -> None:
        await super().forget(session)
        self._users.pop(session.conversation_id, None)


async def events_to_text(events: AsyncIterator[Any]) -> AsyncIterator[RunEvent]:
    """ADK events (objects or their dict form) as text and tool markers.

    With streaming, partial events carry the text and the final event repeats it: text is
    taken from partial events, and from a final event only when no partial came before it.
    """
    streamed = False
    async for event in events:
        data = event if isinstance(event, dict) else event.model_dump(exclude_none=True)
        if data.get("author") == "user":
            continue
        parts = (data.get("content") or {}).get("parts") or []
        for part in parts:
            if part.get("function_call"):
                yield ToolStarted(str(part["function_call"].get("name", "")))
            if part.get("function_response"):
                yield ToolFinished(str(part["function_response"].get("name", "")))
        text = "".join(str(p["text"]) for p in parts if p.get("text") and not p.get("thought"))
        if data.get("partial"):
            streamed = True
            if text:
                yield text
        else:
            if text and not streamed:
                yield text
            streamed = False


class ADKAgentConnector(_ADKBase):
    """Answer every channel with an ADK agent running in this process.

    Each conversation is an ADK session (``session_service``, default in memory; the session
    id is the conversation id), deleted when the conversation ends. Replies stream
    (``StreamingMode.SSE``) to voice. Attributes as :class:`~tac.connectors.ChannelsConnector`.
    """

    def __init__(
        self,
        tac: TAC,
        agent: Any,
        *,
        app_name: str = "tac",
        session_service: Any = None,
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
    ) -> None:
        from google.adk.runners import Runner
        from google.adk.sessions import InMemorySessionService

        self.app_name = app_name
        self.session_service = (
            session_service if session_service is not None else InMemorySessionService()
        )
        self.runner = Runner(app_name=app_name, agent=agent, session_service=self.session_service)
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        from google.adk.agents.run_config import RunConfig
        from google.genai import types

        cid = turn.session.conversation_id
        user = self.user_id(turn.session)
        found = await self.session_service.get_session(
            app_name=self.app_name, user_id=user, session_id=cid
        )
        if found is None:
            await self.session_service.create_session(
                app_name=self.app_name, user_id=user, session_id=cid
            )
        message = types.Content(role="user", parts=[types.Part(text=self.message_for(turn))])
        events = self.runner.run_async(
            user_id=user,
            session_id=cid,
            new_message=message,
            run_config=RunConfig.model_validate({"streaming_mode": "sse"}),
        )
        async for event in events_to_text(events):
            yield event

    async def forget(self, session: ConversationSession) -> None:
        user = self._users.get(session.conversation_id)
        await super().forget(session)
        if user is not None:
            await self.session_service.delete_session(
                app_name=self.app_name, user_id=user, session_id=session.conversation_id
            )


class AgentEngineConnectorBase(_ADKBase):
    """An ADK-shaped agent deployed to Agent Platform Runtime (Agent Engine): a remote session
    per conversation (created at its first message, deleted when it ends), queried with each
    message; its events stream to voice. Subclasses say how to reach the deployment."""

    def __init__(self, tac: TAC, **channel_configs: Any) -> None:
        super().__init__(tac, **channel_configs)
        self._sessions: dict[str, str] = {}

    @abstractmethod
    async def create_session(self, session: ConversationSession, user_id: str) -> str:
        """Create the conversation's remote session; its id."""

    @abstractmethod
    def stream_query(self, message: str, user_id: str, session_id: str) -> AsyncIterator[Any]:
        """The agent's events (objects or dicts) answering ``message`` in the session."""

    @abstractmethod
    async def delete_session(self, user_id: str, session_id: str) -> None:
        """Delete a remote session (its conversation ended)."""

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        cid = turn.session.conversation_id
        user = self.user_id(turn.session)
        session_id = self._sessions.get(cid)
        if session_id is None:
            session_id = await self.create_session(turn.session, user)
            self._sessions[cid] = session_id
        events = self.stream_query(self.message_for(turn), user, session_id)
        async for event in events_to_text(events):
            yield event

    async def forget(self, session: ConversationSession) -> None:
        user = self._users.get(session.conversation_id)
        await super().forget(session)
        session_id = self._sessions.pop(session.conversation_id, None)
        if session_id is not None and user is not None:
            await self.delete_session(user, session_id)


class ADKAgentEngineConnector(AgentEngineConnectorBase):
    """Answer every channel with an ADK agent deployed to Agent Platform Runtime (Agent
    Engine): ``agent`` is the deployed agent (``vertexai.Client().agent_engines.get(...)``),
    whose ``async_create_session``, ``async_stream_query`` and ``async_delete_session`` are
    awaited (never a blocking call on the event loop). One session per conversation; its
    events stream to voice.
    """

    def __init__(
        self,
        tac: TAC,
        agent: Any,
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
    ) -> None:
        self.agent = agent
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )

    async def create_session(self, session: ConversationSession, user_id: str) -> str:
        created = await self.agent.async_create_session(user_id=user_id)
        return str(created["id"] if isinstance(created, dict) else created.id)

    def stream_query(self, message: str, user_id: str, session_id: str) -> AsyncIterator[Any]:
        events: AsyncIterator[Any] = self.agent.async_stream_query(
            message=message, user_id=user_id, session_id=session_id
        )
        return events

    async def delete_session(self, user_id: str, session_id: str) -> None:
        delete = getattr(self.agent, "async_delete_session", None)
        if delete is not None:
            await delete(user_id=user_id, session_id=session_id)
