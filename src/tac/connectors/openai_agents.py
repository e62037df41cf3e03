"""The OpenAI Agents SDK on TAC: :class:`OpenAIAgentsConnector` (``pip install "opentac[openai]"``).

Each message runs ``Runner.run_streamed`` with a session per conversation (backed by the
connector's :class:`~tac.connectors.ConversationHistory`), the customer's memory appended to
the agent's instructions, and TAC's tools (yours, and the Studio handoff when configured) as
agent tools. Tokens stream to voice as the model writes them; messaging gets the whole reply.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

try:
    from agents import Agent, RunConfig, Runner
    from agents.memory import SessionSettings
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'OpenAIAgentsConnector needs the OpenAI Agents SDK: pip install "opentac[openai]"'
    ) from exc

from tac.adapters import AdapterOptions, MemoryPromptBuilder
from tac.connectors._base import Connector, Turn
from tac.connectors.history import ConversationHistory, HistoryItem, create_history
from tac.connectors.streaming import RunEvent, ToolFinished, ToolStarted
from tac.models.session import Channel, ConversationSession
from tac.tools.base import TACTool

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["OpenAIAgentsConnector", "TACAgentSession"]

AgentFactory = Callable[[ConversationSession], Any]
ToolsFactory = Callable[[ConversationSession], Iterable[TACTool]]


class TACAgentSession:
    """An Agents SDK ``Session`` over a :class:`ConversationHistory`, for one turn.

    Reads come from the history plus what this turn added; what the Runner adds is held until
    :meth:`commit`, so a turn that is cut short (the caller interrupted) is saved once, as the
    caller heard it.
    """

    session_settings: SessionSettings | None = None

    def __init__(self, history: ConversationHistory, conversation_id: str) -> None:
        self.session_id = conversation_id
        self._history = history
        self.pending: list[HistoryItem] = []

    async def get_items(self, limit: int | None = None) -> list[Any]:
        items = [*await self._history.get(self.session_id), *self.pending]
        return items[-limit:] if limit else items

    async def add_items(self, items: list[Any]) -> None:
        self.pending.extend(_as_item(item) for item in items)

    async def pop_item(self) -> Any | None:
        return self.pending.pop() if self.pending else None

    async def clear_session(self) -> None:
        self.pending.clear()
        await self._history.clear(self.session_id)

    async def commit(self, turn: Turn) -> None:
        """Save this turn: the user's message, and the reply as far as it was produced."""
        answered = {item.get("call_id") for item in self.pending if _is_output(item)}
        # a call cut short has no output: providers reject a call left unanswered
        items = [
            item
            for item in self.pending
            if not (_is_call(item) and item.get("call_id") not in answered)
        ]
        if not any(item.get("role") == "user" for item in items):
            items.insert(0, {"role": "user", "content": turn.message})
        last_user = max(i for i, item in enumerate(items) if item.get("role") == "user")
        replied = any(item.get("role") == "assistant" for item in items[last_user + 1 :])
        if not replied and turn.text:
            items.append({"role": "assistant", "content": turn.text})
        self.pending.clear()
        await self._history.append(self.session_id, items)


def _is_call(item: HistoryItem) -> bool:
    return str(item.get("type", "")).endswith("_call") and "call_id" in item


def _is_output(item: HistoryItem) -> bool:
    return str(item.get("type", "")).endswith("_call_output")


def _as_item(item: Any) -> HistoryItem:
    if isinstance(item, dict):
        return item
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        dumped: HistoryItem = dump(mode="json", exclude_none=True)
        return dumped
    raise TypeError(f"cannot store a session item of type {type(item).__name__}")


class OpenAIAgentsConnector(Connector):
    """Answer TAC's channels with an OpenAI Agents SDK agent.

    Args:
        tac: the app's TAC.
        agent: an ``agents.Agent``, or ``agent(session)`` returning one per conversation.
        tools: TAC tools for the agent (``TACTool``), or ``tools(session)`` returning them.
        handoff: add TAC's Studio handoff tool when ``TWILIO_STUDIO_HANDOFF_FLOW_SID`` is set.
        memory_options: what of the memory and profile goes into the instructions.
        run_config: passed to ``Runner.run_streamed``; ``max_turns`` too.
        history: where conversations' items live (default :func:`create_history`: Redis when
            ``TAC_STATE_URL`` names one, else in-process).
        channels, filler, filler_after_seconds: see :class:`~tac.connectors.Connector`.
    """

    def __init__(
        self,
        tac: TAC,
        agent: Agent[Any] | AgentFactory,
        *,
        channels: Iterable[Channel | str] | None = None,
        history: ConversationHistory | None = None,
        tools: Sequence[TACTool] | ToolsFactory = (),
        handoff: bool = True,
        memory_options: AdapterOptions | None = None,
        run_config: RunConfig | None = None,
        max_turns: int = 10,
        filler: str | None = None,
        filler_after_seconds: float = 1.0,
    ) -> None:
        self.history: ConversationHistory = history if history is not None else create_history(tac)
        super().__init__(
            tac,
            channels=channels,
            history=self.history,
            filler=filler,
            filler_after_seconds=filler_after_seconds,
        )
        self._agent = agent
        self._tools = tools
        self.handoff = handoff
        self.memory_options = memory_options
        self.run_config = run_config
        self.max_turns = max_turns
        self._sessions: dict[int, TACAgentSession] = {}

    def tac_tools(self, session: ConversationSession) -> list[TACTool]:
        """The TAC tools the agent gets for this conversation."""
        tools = list(self._tools(session) if callable(self._tools) else self._tools)
        config = self.tac.config
        if (
            self.handoff
            and config.studio_handoff_flow_sid
            and self.tac.conversation_orchestrator_client is not None
        ):
            from tac.tools.handoff import create_studio_handoff_tool

            tools.append(create_studio_handoff_tool(self.tac, session))
        return tools

    async def agent_for(self, turn: Turn) -> Agent[Any]:
        """The agent for this turn: yours, with memory in its instructions and TAC's tools."""
        agent = self._agent
        if not isinstance(agent, Agent):
            agent = agent(turn.session)
            if inspect.isawaitable(agent):
                agent = await agent
        if not isinstance(agent, Agent):
            raise TypeError(f"the agent factory must return an agents.Agent, got {agent!r}")
        memory = MemoryPromptBuilder.build(turn.memory, turn.session, self.memory_options)
        extra = [tool.to_openai_agents_sdk_tool() for tool in self.tac_tools(turn.session)]
        changes: dict[str, Any] = {}
        if extra:
            changes["tools"] = [*agent.tools, *extra]
        if memory:
            changes["instructions"] = _with_memory(agent.instructions, memory)
        return agent.clone(**changes) if changes else agent

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        agent = await self.agent_for(turn)
        session = TACAgentSession(self.history, turn.session.conversation_id)
        self._sessions[id(turn)] = session
        result = Runner.run_streamed(
            agent,
            turn.message,
            session=session,
            run_config=self.run_config,
            max_turns=self.max_turns,
        )
        try:
            async for event in result.stream_events():
                if event.type == "raw_response_event":
                    data: Any = event.data
                    if getattr(data, "type", "") == "response.output_text.delta":
                        yield str(data.delta)
                elif event.type == "run_item_stream_event":
                    if event.name == "tool_called":
                        yield ToolStarted(_tool_name(event.item))
                    elif event.name == "tool_output":
                        yield ToolFinished()
        finally:
            if not result.is_complete:
                result.cancel()

    async def finish_turn(self, turn: Turn, completed: bool) -> None:
        session = self._sessions.pop(id(turn), None)
        if session is not None:
            await session.commit(turn)


def _tool_name(item: Any) -> str:
    raw = getattr(item, "raw_item", None)
    name = getattr(raw, "name", None)
    if name is None and isinstance(raw, dict):
        name = raw.get("name")
    return str(name or "")


def _with_memory(instructions: Any, memory: str) -> Any:
    if instructions is None or isinstance(instructions, str):
        return f"{instructions}\n\n{memory}" if instructions else memory

    async def dynamic(context: Any, agent: Any) -> str:
        base = instructions(context, agent)
        if inspect.isawaitable(base):
            base = await base
        return f"{base}\n\n{memory}" if base else memory

    return dynamic
