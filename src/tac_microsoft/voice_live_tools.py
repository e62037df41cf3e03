"""TAC's memory, knowledge and handoff tools for :class:`VoiceLiveConnector` (which takes
``TACTool`` as they are), at ``twilio-agent-connect-microsoft``'s module path. The Agent
Framework flavours (:mod:`tac_microsoft.agent_framework_tools`) wrap these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tac.tools import create_knowledge_tool as tac_knowledge_tool
from tac.tools import create_memory_tool as tac_memory_tool
from tac.tools import create_studio_handoff_tool
from tac.tools.base import TACTool

if TYPE_CHECKING:
    from tac.core.tac import TAC
    from tac.models.session import ConversationSession

__all__ = ["create_handoff_tool", "create_knowledge_tool", "create_memory_tool"]


def create_memory_tool(
    tac: TAC,
    session: ConversationSession,
    *,
    name: str | None = None,
    description: str | None = None,
) -> TACTool | None:
    """Recall of the customer's memory, or ``None`` without Conversation Memory."""
    client = tac.conversation_memory_client
    if client is None:
        return None
    return tac_memory_tool(client, session, name=name, description=description)


async def create_knowledge_tool(
    tac: TAC,
    knowledge_base_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    top_k: int = 5,
) -> TACTool:
    """Search of a knowledge base (its name and description are fetched unless given).

    Raises:
        ValueError: TAC has no knowledge client (``TWILIO_KNOWLEDGE_BASE_ID`` unset).
    """
    if tac.knowledge_client is None:
        raise ValueError("no knowledge client: set TWILIO_KNOWLEDGE_BASE_ID")
    return await tac_knowledge_tool(
        tac.knowledge_client, knowledge_base_id, name=name, description=description, top_k=top_k
    )


def create_handoff_tool(
    tac: TAC, session: ConversationSession, attributes: dict[str, Any] | None = None
) -> TACTool:
    """Handoff to a human through Studio (needs ``TWILIO_STUDIO_HANDOFF_FLOW_SID``)."""
    return create_studio_handoff_tool(tac, session, attributes)
