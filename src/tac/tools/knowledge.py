"""The knowledge-search tool: lets the LLM search an Enterprise Knowledge base."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from tac.tools.base import TACTool, _make_tool

__all__ = [
    "KnowledgeBaseInfo",
    "KnowledgeChunk",
    "KnowledgeSearchClient",
    "create_knowledge_tool",
    "search_knowledge",
]

_DESCRIPTION_SUFFIX = "The input MUST be a question in the form of a string."


class KnowledgeBaseInfo(Protocol):
    """What the tool reads of a knowledge base (``tac.context`` ``KnowledgeBase``)."""

    @property
    def id(self) -> str: ...

    @property
    def display_name(self) -> str | None: ...

    @property
    def description(self) -> str | None: ...


class KnowledgeChunk(Protocol):
    """One search hit (``tac.context`` ``KnowledgeChunkResult``)."""

    @property
    def content(self) -> str: ...

    @property
    def knowledge_id(self) -> str | None: ...

    @property
    def created_at(self) -> datetime | None: ...

    @property
    def score(self) -> float | None: ...


class KnowledgeSearchClient(Protocol):
    """The part of ``tac.context.KnowledgeClient`` the tool uses."""

    async def get_knowledge_base(self, knowledge_base_id: str, /) -> KnowledgeBaseInfo: ...

    async def search_knowledge_base(
        self, knowledge_base_id: str, query: str, /, top_k: int = 5
    ) -> Sequence[KnowledgeChunk]: ...


def _chunk_to_dict(chunk: KnowledgeChunk) -> dict[str, Any]:
    created = chunk.created_at
    return {
        "content": chunk.content,
        "knowledge_id": chunk.knowledge_id,
        "score": chunk.score,
        "created_at": created.isoformat() if isinstance(created, datetime) else created,
    }


async def search_knowledge(
    query: str,
    knowledge_client: KnowledgeSearchClient,
    knowledge_base_id: str,
    top_k: int = 5,
) -> list[dict[str, Any]]:
    """Search a knowledge base; each hit as a JSON-serialisable dict.

    Keys: ``content``, ``knowledge_id``, ``score``, ``created_at`` (ISO 8601 or ``None``).
    """
    chunks = await knowledge_client.search_knowledge_base(knowledge_base_id, query, top_k=top_k)
    return [_chunk_to_dict(chunk) for chunk in chunks]


def _default_name(display_name: str) -> str:
    slug = re.sub(r"[\s\-]+", "_", display_name.strip().lower())
    slug = re.sub(r"[^a-z0-9_]", "", slug).strip("_")
    return f"search_{slug}"[:64] if slug else "search_knowledge_base"


async def create_knowledge_tool(
    knowledge_client: KnowledgeSearchClient,
    knowledge_base_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    top_k: int = 5,
) -> TACTool:
    """Build a tool the LLM calls as ``<name>(query: str)`` to search one knowledge base.

    Unless both ``name`` and ``description`` are given, the knowledge base is fetched once for
    its display name (default name ``search_<display name>``) and description. Results are
    lists of JSON-serialisable dicts (see :func:`search_knowledge`).
    """
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if name is None or description is None:
        base = await knowledge_client.get_knowledge_base(knowledge_base_id)
        display = base.display_name or knowledge_base_id
        if name is None:
            name = _default_name(display)
        if description is None:
            about = (base.description or "").strip() or f"Search the {display} knowledge base."
            description = f"{about} {_DESCRIPTION_SUFFIX}"

    async def search(query: str) -> list[dict[str, Any]]:
        """Search the knowledge base.

        Args:
            query: The question to look up, in natural language.
        """
        return await search_knowledge(query, knowledge_client, knowledge_base_id, top_k)

    return _make_tool(search, name, description)
