"""TAC's memory, knowledge and handoff tools as Agent Framework tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tac.tools.base import TACTool
from tac_microsoft import voice_live_tools as tac_tools

if TYPE_CHECKING:
    from tac.core.tac import TAC
    from tac.models.session import ConversationSession

__all__ = [
    "create_handoff_tool",
    "create_knowledge_tool",
    "create_memory_tool",
    "interstitial_filler",
    "to_agent_framework_tool",
]


def to_agent_framework_tool(tool: TACTool) -> Any:
    """A TAC tool as an Agent Framework ``FunctionTool`` (same name, description, schema)."""
    from agent_framework import FunctionTool

    async def run(**arguments: Any) -> Any:
        return await tool(**arguments)

    return FunctionTool(
        name=tool.name,
        description=tool.description,
        func=run,
        input_model=tool.params_json_schema,
    )


def create_memory_tool(
    tac: TAC,
    session: ConversationSession,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Any | None:
    """Recall of the customer's memory, or ``None`` without Conversation Memory."""
    tool = tac_tools.create_memory_tool(tac, session, name=name, description=description)
    return None if tool is None else to_agent_framework_tool(tool)


async def create_knowledge_tool(
    tac: TAC,
    knowledge_base_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    top_k: int = 5,
) -> Any:
    """Search of a knowledge base (its name and description are fetched unless given)."""
    tool = await tac_tools.create_knowledge_tool(
        tac, knowledge_base_id, name=name, description=description, top_k=top_k
    )
    return to_agent_framework_tool(tool)


def create_handoff_tool(
    tac: TAC, session: ConversationSession, attributes: dict[str, Any] | None = None
) -> Any:
    """Handoff to a human through Studio (needs ``TWILIO_STUDIO_HANDOFF_FLOW_SID``)."""
    return to_agent_framework_tool(tac_tools.create_handoff_tool(tac, session, attributes))


async def interstitial_filler(filler_words: str) -> AsyncIterator[dict[str, Any]]:
    """One streamed update carrying ``filler_words`` (say something while work goes on)."""
    yield {"type": "text", "text": filler_words}
