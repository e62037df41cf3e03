"""Helpers shared by the Microsoft connectors."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tac.models.tac import TACMemoryResponse

__all__ = ["format_memory_context"]


def format_memory_context(memory_response: TACMemoryResponse | None, user_message: str) -> str:
    """The user message, preceded by the customer's observations and past summaries.

    ``[User Observations]`` and ``[Conversation Summaries]`` sections (one ``- item`` a line),
    then ``[User Message]``; with no memory, the message alone.
    """
    if memory_response is None:
        return user_message
    sections = []
    observations = [o.content for o in memory_response.observations if o.content]
    if observations:
        sections.append("[User Observations]\n" + "\n".join(f"- {o}" for o in observations))
    summaries = [s.content for s in memory_response.summaries if s.content]
    if summaries:
        sections.append("[Conversation Summaries]\n" + "\n".join(f"- {s}" for s in summaries))
    if not sections:
        return user_message
    return "\n\n".join(sections) + f"\n\n[User Message]\n{user_message}"
