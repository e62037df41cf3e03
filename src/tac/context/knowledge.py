"""Async client of Enterprise Knowledge v2 (``knowledge.twilio.com``)."""

from __future__ import annotations

from collections.abc import Sequence

from tac.context._base import ProductClient, parse_model
from tac.context._http import TwilioHTTP, encode_path
from tac.models.knowledge import (
    KnowledgeBase,
    KnowledgeChunkResult,
    KnowledgeSearchResponse,
)

__all__ = ["KnowledgeClient"]

_MAX_QUERY = 2048
_MAX_TOP = 20
_MAX_KNOWLEDGE_IDS = 100


class KnowledgeClient(ProductClient):
    """Knowledge bases and their search."""

    _product = "knowledge"

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        region: str | None = None,
        *,
        http: TwilioHTTP | None = None,
    ) -> None:
        super().__init__(http=http, api_key=api_key, api_secret=api_secret, region=region)

    async def get_knowledge_base(self, knowledge_base_id: str) -> KnowledgeBase:
        """Fetch a knowledge base (name, description, status)."""
        path = encode_path("/v2/ControlPlane/KnowledgeBases/{id}", id=knowledge_base_id)
        response = await self._http.request(self._product, "GET", path)
        return parse_model(KnowledgeBase, response)

    async def search_knowledge_base(
        self,
        knowledge_base_id: str,
        query: str,
        top_k: int = 5,
        knowledge_ids: Sequence[str] | None = None,
    ) -> list[KnowledgeChunkResult]:
        """The ``top_k`` chunks (1–20) best matching ``query`` (1–2048 characters).

        ``knowledge_ids`` restricts the search to those sources (at most 100).
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        if len(query) > _MAX_QUERY:
            raise ValueError(f"query must be at most {_MAX_QUERY} characters, got {len(query)}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= _MAX_TOP:
            raise ValueError(f"top_k must be an integer from 1 to {_MAX_TOP}, got {top_k!r}")
        body: dict[str, object] = {"query": query, "top": top_k}
        if knowledge_ids is not None:
            ids = [knowledge_ids] if isinstance(knowledge_ids, str) else list(knowledge_ids)
            if len(ids) > _MAX_KNOWLEDGE_IDS:
                raise ValueError(
                    f"knowledge_ids may hold at most {_MAX_KNOWLEDGE_IDS} ids, got {len(ids)}"
                )
            if ids:
                body["knowledgeIds"] = ids
        path = encode_path("/v2/KnowledgeBases/{id}/Search", id=knowledge_base_id)
        response = await self._http.request(self._product, "POST", path, json=body)
        return parse_model(KnowledgeSearchResponse, response).chunks
