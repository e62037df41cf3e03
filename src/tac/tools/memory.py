"""The memory tool: lets the LLM recall what Conversation Memory knows about the customer."""

from __future__ import annotations

from typing import Any, Protocol

from tac.models.address import profile_lookup_key, recall_query
from tac.models.memory import MemoryRetrievalRequest, MemoryRetrievalResponse
from tac.models.session import ConversationSession
from tac.tools.base import TACTool, _make_tool

__all__ = ["MemoryRecallClient", "create_memory_tool", "retrieve_profile_memory"]

DEFAULT_MEMORY_TOOL_NAME = "retrieve_profile_memory"
DEFAULT_MEMORY_TOOL_DESCRIPTION = (
    "Recall what is known about the current customer from previous interactions "
    "(observations, conversation summaries and recent messages) that is relevant to a query."
)
_NO_PROFILE_NOTE = (
    "No customer profile is known for this conversation, so there is no stored memory."
)


class MemoryRecallClient(Protocol):
    """The part of ``tac.context.MemoryClient`` the tool uses."""

    async def retrieve_memory(
        self, profile_id: str, request: MemoryRetrievalRequest, /
    ) -> MemoryRetrievalResponse: ...

    async def lookup_profile(self, id_type: str, value: str, /) -> list[str]: ...


async def retrieve_profile_memory(
    query: str,
    conversation_memory_client: MemoryRecallClient,
    profile_id: str,
) -> dict[str, Any]:
    """Recall memory for a profile; the Recall response as a JSON-serialisable dict.

    An empty query recalls without one; a query longer than Recall accepts is cut to fit.
    """
    request = MemoryRetrievalRequest(query=recall_query(query if isinstance(query, str) else None))
    response = await conversation_memory_client.retrieve_memory(profile_id, request)
    return response.model_dump(by_alias=True, exclude_none=True, mode="json")


def create_memory_tool(
    conversation_memory_client: MemoryRecallClient,
    session: ConversationSession,
    *,
    name: str | None = None,
    description: str | None = None,
) -> TACTool:
    """Build a tool the LLM calls as ``retrieve_profile_memory(query: str)``.

    Works before the session knows its profile: the profile is then looked up by the
    customer's address (phone for ``+…``, ``whatsapp:``/``rcs:`` prefixes stripped; email for
    ``name@host``; chat identities are not looked up) and remembered by the tool. With no
    profile the tool returns empty memory and a ``note`` saying why.
    """
    resolved: list[str] = []

    async def profile_id() -> str | None:
        if session.profile_id:
            return session.profile_id
        if resolved:
            return resolved[0]
        address = session.author_info.address if session.author_info else None
        key = profile_lookup_key(session.channel, address)
        if key is None:
            return None
        matches = await conversation_memory_client.lookup_profile(*key)
        if not matches:
            return None
        resolved.append(matches[0])
        return matches[0]

    async def recall(query: str) -> dict[str, Any]:
        """Recall customer memory.

        Args:
            query: What to recall about the customer, in natural language.
        """
        found = await profile_id()
        if found is None:
            return {
                "observations": [],
                "summaries": [],
                "communications": [],
                "note": _NO_PROFILE_NOTE,
            }
        return await retrieve_profile_memory(query, conversation_memory_client, found)

    return _make_tool(
        recall,
        name or DEFAULT_MEMORY_TOOL_NAME,
        description or DEFAULT_MEMORY_TOOL_DESCRIPTION,
    )
