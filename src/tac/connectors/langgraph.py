"""LangGraph on TAC: :class:`LangGraphConnector` (``pip install "opentac[langgraph]"``).

Each conversation gets its own compiled graph (built by your factory with the conversation's
TAC tools as LangChain tools) and its own thread in a checkpointer (``thread_id`` = the
conversation id), deleted when the session ends. The graph's state must keep a ``messages``
list with LangGraph's ``add_messages`` reducer (``MessagesState``): the customer's message goes
in as a ``HumanMessage``, the memory as a ``SystemMessage`` that is replaced, not repeated, each
turn, and the reply is what the model writes, streamed to voice as it comes.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

try:
    from langchain_core.messages import (
        AIMessage,
        AIMessageChunk,
        BaseMessage,
        HumanMessage,
        RemoveMessage,
        SystemMessage,
        ToolMessage,
    )
    from langchain_core.tools import BaseTool, StructuredTool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import StateGraph
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'LangGraphConnector needs LangGraph: pip install "opentac[langgraph]"'
    ) from exc

from tac.adapters import AdapterOptions, MemoryPromptBuilder
from tac.connectors._base import Connector, Turn
from tac.connectors.history import apply_heard
from tac.connectors.streaming import RunEvent, ToolFinished, ToolStarted
from tac.models.session import Channel, ConversationSession
from tac.tools.base import TACTool

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["MEMORY_MESSAGE_ID", "LangGraphConnector", "to_langchain_tool"]

MEMORY_MESSAGE_ID = "tac-memory"
"""The id of the memory ``SystemMessage`` (one per thread, refreshed each turn)."""

_CANCELLED = "Cancelled: the conversation moved on before this tool returned."

GraphFactory = Callable[[ConversationSession, list[BaseTool]], Any]
ToolsFactory = Callable[[ConversationSession], Iterable[TACTool]]


def to_langchain_tool(tool: TACTool) -> StructuredTool:
    """A TAC tool as a LangChain ``StructuredTool`` (async; its result as a JSON string).

    Arguments are validated by the TAC tool; errors come back to the model as an error result.
    """

    async def run(**arguments: Any) -> str:
        return json.dumps(await tool(**arguments), ensure_ascii=False)

    return StructuredTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.params_json_schema,
        coroutine=run,
    )


class LangGraphConnector(Connector):
    """Answer TAC's channels with a LangGraph graph.

    Args:
        tac: the app's TAC.
        graph: ``graph(session, tools)`` returning a ``StateGraph`` (compiled here with the
            checkpointer) or a compiled graph, once per conversation; or one ``StateGraph``
            for every conversation (then TAC's tools are not offered).
        checkpointer: where threads live (default: an ``InMemorySaver``; pass a Redis or
            Postgres saver for several instances).
        tools: TAC tools for the graph, or ``tools(session)`` returning them.
        handoff: add TAC's Studio handoff tool when ``TWILIO_STUDIO_HANDOFF_FLOW_SID`` is set.
        memory_options: what of the memory and profile goes into the memory message.
        config: extra ``RunnableConfig`` for every run (``recursion_limit``, callbacks, …).
        channels, filler, filler_after_seconds: see :class:`~tac.connectors.Connector`.
    """

    def __init__(
        self,
        tac: TAC,
        graph: GraphFactory | StateGraph[Any],
        *,
        checkpointer: Any = None,
        channels: Iterable[Channel | str] | None = None,
        tools: Sequence[TACTool] | ToolsFactory = (),
        handoff: bool = True,
        memory_options: AdapterOptions | None = None,
        config: dict[str, Any] | None = None,
        filler: str | None = None,
        filler_after_seconds: float = 1.0,
    ) -> None:
        super().__init__(
            tac,
            channels=channels,
            filler=filler,
            filler_after_seconds=filler_after_seconds,
        )
        self.checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self._graph = graph
        self._shared = (
            graph.compile(checkpointer=self.checkpointer) if isinstance(graph, StateGraph) else None
        )
        self._tools = tools
        self.handoff = handoff
        self.memory_options = memory_options
        self.config = dict(config or {})
        self._graphs: dict[str, Any] = {}

    def tac_tools(self, session: ConversationSession) -> list[TACTool]:
        """The TAC tools the graph gets for this conversation."""
        tools = list(self._tools(session) if callable(self._tools) else self._tools)
        if (
            self.handoff
            and self.tac.config.studio_handoff_flow_sid
            and self.tac.conversation_orchestrator_client is not None
        ):
            from tac.tools.handoff import create_studio_handoff_tool

            tools.append(create_studio_handoff_tool(self.tac, session))
        return tools

    async def graph_for(self, session: ConversationSession) -> Any:
        """The conversation's compiled graph (built on its first message)."""
        if self._shared is not None:
            return self._shared
        cid = session.conversation_id
        graph = self._graphs.get(cid)
        if graph is None:
            tools: list[BaseTool] = [to_langchain_tool(t) for t in self.tac_tools(session)]
            built = self._graph(session, tools)  # type: ignore[operator]
            if inspect.isawaitable(built):
                built = await built
            if _is_builder(built):
                built = built.compile(checkpointer=self.checkpointer)
            elif getattr(built, "checkpointer", None) is None:
                built = built.copy(update={"checkpointer": self.checkpointer})
            graph = self._graphs[cid] = built
        return graph

    def run_config(self, conversation_id: str) -> dict[str, Any]:
        """The ``RunnableConfig`` of a conversation's thread."""
        configurable = {**self.config.get("configurable", {}), "thread_id": conversation_id}
        return {**self.config, "configurable": configurable}

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        graph = await self.graph_for(turn.session)
        messages: list[BaseMessage] = []
        memory = MemoryPromptBuilder.build(turn.memory, turn.session, self.memory_options)
        if memory:
            messages.append(SystemMessage(content=memory, id=MEMORY_MESSAGE_ID))
        messages.append(HumanMessage(content=turn.message))
        started: set[str] = set()
        async for chunk, _ in graph.astream(
            {"messages": messages},
            self.run_config(turn.session.conversation_id),
            stream_mode="messages",
        ):
            if isinstance(chunk, ToolMessage):
                yield ToolFinished(chunk.name or "")
            elif isinstance(chunk, (AIMessageChunk, AIMessage)):
                for call in getattr(chunk, "tool_call_chunks", None) or chunk.tool_calls:
                    key = str(call.get("id") or call.get("name") or "")
                    if call.get("name") and key not in started:
                        started.add(key)
                        yield ToolStarted(str(call["name"]))
                text = _text(chunk.content)
                if text:
                    yield text

    async def finish_turn(self, turn: Turn, completed: bool) -> None:
        if completed:
            return
        # cut short (interrupted, hung up): make the thread say what the caller was told
        if self._shared is None and turn.session.conversation_id not in self._graphs:
            return  # the graph was never built: nothing ran
        graph = await self.graph_for(turn.session)
        config = self.run_config(turn.session.conversation_id)
        state = await graph.aget_state(config)
        messages: list[BaseMessage] = list(state.values.get("messages", []))
        last_human = _last_human(messages)
        missing: list[BaseMessage] = []
        if last_human is None or _text(messages[last_human].content) != turn.message:
            missing.append(HumanMessage(content=turn.message))
            last_human = len(messages)
        this_turn = messages[last_human + 1 :]
        answered = {m.tool_call_id for m in this_turn if isinstance(m, ToolMessage)}
        for message in this_turn:  # a call cut short gets an answer: providers need one
            for call in message.tool_calls if isinstance(message, AIMessage) else []:
                if call.get("id") and call["id"] not in answered:
                    missing.append(
                        ToolMessage(content=_CANCELLED, tool_call_id=call["id"], name=call["name"])
                    )
        replied = any(isinstance(m, AIMessage) and _text(m.content) for m in this_turn)
        if not replied and turn.text:
            missing.append(AIMessage(content=turn.text))
        if missing:
            await graph.aupdate_state(config, {"messages": missing})

    async def trim_reply(self, session: ConversationSession, heard: str) -> None:
        graph = await self.graph_for(session)
        config = self.run_config(session.conversation_id)
        state = await graph.aget_state(config)
        messages: list[BaseMessage] = list(state.values.get("messages", []))
        views = [_view(m) for m in messages]
        trimmed = apply_heard(views, heard)
        if trimmed is None:
            return
        kept = {item["id"]: item for item in trimmed if item.get("id")}
        updates: list[BaseMessage] = []
        for message, view in zip(messages, views, strict=True):
            if not isinstance(message, AIMessage) or message.id is None:
                continue
            new = kept.get(message.id)
            if new is None:
                if message.tool_calls:
                    updates.append(message.model_copy(update={"content": ""}))
                else:
                    updates.append(RemoveMessage(id=message.id))
            elif new.get("content") != view.get("content"):
                updates.append(message.model_copy(update={"content": new["content"]}))
        if updates:
            await graph.aupdate_state(config, {"messages": updates})

    async def forget(self, session: ConversationSession) -> None:
        self._graphs.pop(session.conversation_id, None)
        delete = getattr(self.checkpointer, "adelete_thread", None)
        if delete is not None:
            await delete(session.conversation_id)


def _is_builder(graph: Any) -> bool:
    return isinstance(graph, StateGraph)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def _last_human(messages: Sequence[BaseMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index
    return None


def _view(message: BaseMessage) -> dict[str, Any]:
    """A message as :func:`apply_heard` sees it."""
    if isinstance(message, HumanMessage):
        return {"role": "user", "id": message.id}
    if isinstance(message, AIMessage):
        text = _text(message.content)
        if text:
            return {"role": "assistant", "id": message.id, "content": text}
    return {"role": "other", "id": message.id}
