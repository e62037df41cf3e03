"""Every python snippet of docs/tools.md runs, in order, in one namespace."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tac.models.memory import MemoryRetrievalRequest, MemoryRetrievalResponse, ObservationInfo

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "tools.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _snippets() -> list[str]:
    return FENCE.findall(DOC.read_text(encoding="utf-8"))


@dataclass
class _KnowledgeBase:
    id: str
    display_name: str
    description: str | None


@dataclass
class _Chunk:
    content: str
    knowledge_id: str | None = None
    created_at: Any = None
    score: float | None = None


class _KnowledgeClient:
    async def get_knowledge_base(self, id: str) -> _KnowledgeBase:
        return _KnowledgeBase(id, "Pizza FAQ", "Questions about our pizzas.")

    async def search_knowledge_base(
        self, knowledge_base_id: str, query: str, top_k: int = 5
    ) -> list[_Chunk]:
        return [_Chunk("We bake with olive oil.")]


class _MemoryClient:
    async def retrieve_memory(
        self, profile_id: str, request: MemoryRetrievalRequest
    ) -> MemoryRetrievalResponse:
        return MemoryRetrievalResponse(observations=[ObservationInfo(id="o", content="Likes tea")])

    async def lookup_profile(self, id_type: str, value: str) -> list[str]:
        return []


def test_the_page_has_snippets() -> None:
    assert len(_snippets()) >= 8


def test_docs_snippets_run(
    server: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, base_url = server
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    namespace: dict[str, Any] = {"__name__": "docs_tools"}
    for index, snippet in enumerate(_snippets()):
        code = compile(snippet, f"{DOC.name}[snippet {index}]", "exec")
        exec(code, namespace)
    printed = capsys.readouterr().out
    assert "order_pizza\nOrder a pizza for the customer.\n" in printed
    assert "large thin pizza with basil\nvalidation_error\nacct_1: 42.00 EUR\n" in printed

    # The snippets that define functions: call them as an application would.
    knowledge, memory = asyncio.run(
        namespace["build_tools"](_KnowledgeClient(), _MemoryClient(), namespace["session"])
    )
    assert knowledge.name == "search_pizza_faq"
    assert asyncio.run(knowledge(query="oil?"))[0]["content"] == "We bake with olive oil."
    assert asyncio.run(memory(query="drinks"))["note"].startswith("No customer profile")

    answer = asyncio.run(
        namespace["reply"]("A pizza please", namespace["session"], namespace["memory"])
    )
    assert answer == "Hello!"
    ((kind, body),) = fake.requests
    assert kind == "responses"
    assert body["instructions"].startswith("You take pizza orders.\n\n# Customer Context\n")
    assert "- Allergic to nuts" in body["instructions"]
