"""The knowledge and memory tools, against fake clients implementing their protocols."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from tac.models.memory import (
    MemoryRetrievalRequest,
    MemoryRetrievalResponse,
    ObservationInfo,
    SummaryInfo,
)
from tac.models.session import AuthorInfo, ConversationSession
from tac.tools import (
    create_knowledge_tool,
    create_memory_tool,
    retrieve_profile_memory,
    search_knowledge,
)

pytestmark = pytest.mark.unit


@dataclass
class KnowledgeBase:
    id: str
    display_name: str
    description: str | None = None
    status: str = "ACTIVE"


@dataclass
class Chunk:
    content: str
    knowledge_id: str | None
    created_at: datetime | None
    score: float | None


@dataclass
class FakeKnowledgeClient:
    base: KnowledgeBase
    chunks: list[Chunk]
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def get_knowledge_base(self, id: str) -> KnowledgeBase:
        self.calls.append(("get", id))
        return self.base

    async def search_knowledge_base(
        self,
        knowledge_base_id: str,
        query: str,
        top_k: int = 5,
        knowledge_ids: list[str] | None = None,
    ) -> list[Chunk]:
        self.calls.append(("search", knowledge_base_id, query, top_k))
        return self.chunks[:top_k]


WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _knowledge_client() -> FakeKnowledgeClient:
    return FakeKnowledgeClient(
        KnowledgeBase("know_kb_1", "Return Policy - EU", "Rules for returns in the EU."),
        [
            Chunk("Returns within 30 days.", "know_1", WHEN, 0.92),
            Chunk("Refunds take 5 days.", None, None, None),
        ],
    )


async def test_knowledge_tool_defaults_come_from_the_knowledge_base() -> None:
    client = _knowledge_client()
    tool = await create_knowledge_tool(client, "know_kb_1", top_k=1)
    assert tool.name == "search_return_policy_eu"
    assert tool.description == (
        "Rules for returns in the EU. The input MUST be a question in the form of a string."
    )
    assert tool.params_json_schema == {
        "additionalProperties": False,
        "properties": {
            "query": {
                "description": "The question to look up, in natural language.",
                "type": "string",
            }
        },
        "required": ["query"],
        "type": "object",
    }
    result = await tool(query="How long do I have?")
    assert result == [
        {
            "content": "Returns within 30 days.",
            "knowledge_id": "know_1",
            "score": 0.92,
            "created_at": "2026-03-01T12:00:00+00:00",
        }
    ]
    assert client.calls == [("get", "know_kb_1"), ("search", "know_kb_1", "How long do I have?", 1)]


async def test_knowledge_tool_result_survives_the_agents_sdk_path() -> None:
    tool = await create_knowledge_tool(_knowledge_client(), "know_kb_1", name="kb", description="d")
    output = await tool.invoke('{"query": "refunds?"}')
    assert [hit["content"] for hit in json.loads(output)] == [
        "Returns within 30 days.",
        "Refunds take 5 days.",
    ]


async def test_knowledge_tool_skips_the_fetch_when_name_and_description_given() -> None:
    client = _knowledge_client()
    tool = await create_knowledge_tool(client, "know_kb_1", name="faq", description="FAQ search.")
    assert (tool.name, tool.description) == ("faq", "FAQ search.")
    assert client.calls == []


async def test_knowledge_tool_rejects_bad_top_k() -> None:
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        await create_knowledge_tool(_knowledge_client(), "know_kb_1", top_k=0)


async def test_search_knowledge_returns_plain_dicts() -> None:
    hits = await search_knowledge("q", _knowledge_client(), "know_kb_1", 5)
    assert hits[1] == {
        "content": "Refunds take 5 days.",
        "knowledge_id": None,
        "score": None,
        "created_at": None,
    }
    json.dumps(hits)


@dataclass
class FakeMemoryClient:
    profiles: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    lookups: list[tuple[str, str]] = field(default_factory=list)
    recalls: list[tuple[str, MemoryRetrievalRequest]] = field(default_factory=list)

    async def retrieve_memory(
        self, profile_id: str, request: MemoryRetrievalRequest
    ) -> MemoryRetrievalResponse:
        self.recalls.append((profile_id, request))
        return MemoryRetrievalResponse(
            observations=[ObservationInfo(id="obs_1", content="Prefers email", created_at=WHEN)],
            summaries=[SummaryInfo(id="sum_1", content="Asked about refunds")],
        )

    async def lookup_profile(self, id_type: str, value: str) -> list[str]:
        self.lookups.append((id_type, value))
        return self.profiles.get((id_type, value), [])


def _session(address: str | None, channel: str = "sms", profile_id: str | None = None) -> Any:
    return ConversationSession(
        conversation_id="conv_1",
        channel=channel,
        profile_id=profile_id,
        author_info=AuthorInfo(address=address),
    )


async def test_memory_tool_uses_the_session_profile() -> None:
    client = FakeMemoryClient()
    tool = create_memory_tool(client, _session("+15550001111", profile_id="mem_profile_1"))
    assert tool.name == "retrieve_profile_memory"
    assert list(tool.params_json_schema["properties"]) == ["query"]
    result = await tool(query="  refunds  ")
    assert result["observations"] == [
        {"id": "obs_1", "content": "Prefers email", "createdAt": "2026-03-01T12:00:00Z"}
    ]
    assert result["summaries"] == [{"id": "sum_1", "content": "Asked about refunds"}]
    assert client.lookups == []
    assert [(pid, req.query) for pid, req in client.recalls] == [("mem_profile_1", "refunds")]


@pytest.mark.parametrize(
    ("address", "channel", "key"),
    [
        ("+15550001111", "sms", ("phone", "+15550001111")),
        ("whatsapp:+15550001111", "whatsapp", ("phone", "+15550001111")),
        ("rcs:+15550001111", "rcs", ("phone", "+15550001111")),
        ("ann@example.com", "chat", None),
        ("ann@example.com", "sms", ("email", "ann@example.com")),
        ("web-visitor-7", "sms", None),
    ],
)
async def test_memory_tool_resolves_the_profile_by_address(
    address: str, channel: str, key: tuple[str, str] | None
) -> None:
    client = FakeMemoryClient(profiles={key: ["mem_profile_9"]} if key else {})
    tool = create_memory_tool(client, _session(address, channel), name="memory", description="M.")
    assert (tool.name, tool.description) == ("memory", "M.")
    first = await tool(query="anything")
    second = await tool(query="again")
    if key is None:
        assert client.lookups == []
        assert first["observations"] == []
        assert "note" in first
    else:
        assert client.lookups == [key], "the resolved profile is remembered"
        assert [pid for pid, _ in client.recalls] == ["mem_profile_9", "mem_profile_9"]
        assert first == second


async def test_memory_tool_without_a_matching_profile_returns_empty_with_note() -> None:
    client = FakeMemoryClient()
    result = await create_memory_tool(client, _session("+15550002222"))(query="x")
    assert result == {
        "observations": [],
        "summaries": [],
        "communications": [],
        "note": "No customer profile is known for this conversation, so there is no stored memory.",
    }
    assert client.lookups == [("phone", "+15550002222")]
    assert client.recalls == []


async def test_retrieve_profile_memory_trims_and_bounds_the_query() -> None:
    client = FakeMemoryClient()
    await retrieve_profile_memory("x" * 2000, client, "mem_profile_1")
    await retrieve_profile_memory("   ", client, "mem_profile_1")
    assert len(client.recalls[0][1].query or "") == 1024
    assert client.recalls[1][1].query is None
