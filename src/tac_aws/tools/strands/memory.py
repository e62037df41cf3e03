"""Conversation Memory as a Strands tool: :func:`create_memory_tool`."""

from typing import Any

from tac.models.address import recall_query
from tac.models.memory import MemoryRetrievalRequest
from tac.tools.memory import MemoryRecallClient

__all__ = ["create_memory_tool"]


def create_memory_tool(memory_client: MemoryRecallClient) -> Any:
    """A Strands tool, ``retrieve_twilio_memory(profile_id, conversation_id=None, query=None)``,
    that recalls a profile's observations, summaries and communications from Conversation
    Memory.

    Pass ``tac.conversation_memory_client`` (the partner package's examples say
    ``tac.memora_client``, which no TAC has). Needs ``strands-agents`` installed.

    Raises:
        ValueError: ``memory_client`` is ``None`` (TAC has no memory store configured).
        ImportError: Strands Agents is not installed.
    """
    if memory_client is None:
        raise ValueError(
            "create_memory_tool needs a memory client: pass tac.conversation_memory_client "
            "(set TWILIO_CONVERSATION_CONFIGURATION_ID so that TAC has one)"
        )
    try:
        from strands import tool  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            "create_memory_tool needs Strands Agents: pip install strands-agents"
        ) from exc

    async def retrieve_twilio_memory(
        profile_id: str, conversation_id: str | None = None, query: str | None = None
    ) -> dict[str, Any]:
        """Recall what Twilio Conversation Memory knows about a customer profile: observations,
        conversation summaries and recent communications.

        Args:
            profile_id: the customer's profile id (``mem_profile_…``).
            conversation_id: only memories from this conversation (optional).
            query: what to recall, in natural language, for a semantic search (optional).
        """
        request = MemoryRetrievalRequest(
            conversation_id=conversation_id or None, query=recall_query(query)
        )
        response = await memory_client.retrieve_memory(profile_id, request)
        return response.model_dump(by_alias=True, exclude_none=True, mode="json")

    return tool(retrieve_twilio_memory)
