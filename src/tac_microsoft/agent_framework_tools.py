"""TAC's memory, knowledge and handoff tools as Agent Framework tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tac.tools import create_knowledge_tool as tac_knowledge_tool
from tac.tools import create_memory_tool as tac_memory_tool
from tac.tools import create_studio_handoff_tool
from tac.tools.base import TACTool

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
    client = tac.conversation_memory_client
    if client is None:
        return None
    return to_agent_framework_tool(
        tac_memory_tool(client, session, name=name, description=description)
    )


async def create_knowledge_tool(
    tac: TAC,
    knowledge_base_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    top_k: int = 5,
) -> Any:
    """Search of a knowledge base (its name and description are fetched unless given)."""
    if tac.knowledge_client is None:
        raise ValueError("no knowledge client: set TWILIO_KNOWLEDGE_BASE_ID")
    tool = await tac_knowledge_tool(
        tac.knowledge_client, knowledge_base_id, name=name, description=description, top_k=top_k
    )
    return to_agent_framework_tool(tool)


def create_handoff_tool(
    tac: TAC, session: ConversationSession, attributes: dict[str, Any] | None = None
) -> Any:
    """Handoff to a human through Studio (needs ``TWILIO_STUDIO_HANDOFF_FLOW_SID``)."""
    return to_agent_framework_tool(create_studio_handoff_tool(tac, session, attributes))


async def interstitial_filler(filler_words: str) -> AsyncIterator[dict[str, Any]]:
    """One streamed update carrying ``filler_words`` (say something while work goes on)."""
    yield {"type": "text", "text": filler_words}
