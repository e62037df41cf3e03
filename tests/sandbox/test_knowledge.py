"""Enterprise Knowledge v2 in the sandbox: knowledge bases, sources, folders and Search."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _products_support import KNOWLEDGE, asgi_client, ctx_of, make_app, serve, twilio_client
from twilio.rest.knowledge.v2.knowledge import KnowledgeList
from twilio.rest.knowledge.v2.search import SearchList

from tac_sandbox.products.knowledge import chunk_text

pytestmark = pytest.mark.integration

SHIPPING = (
    "# Shipping policy\n\n"
    "Standard shipping takes 3-5 business days within the continental US. "
    "Expedited shipping takes 1-2 business days.\n\n"
    "Orders placed after 2pm ET ship the next business day."
)
RETURNS = "Returns are accepted within 30 days of delivery. Refunds go to the original card."


@pytest.fixture
def app() -> Any:
    return make_app([KNOWLEDGE])


def _kb(app: Any) -> str:
    return ctx_of(app).identity.knowledge_base_id


async def test_official_client_knowledge_base_source_and_search(app: Any) -> None:
    kb = _kb(app)
    async with serve(app) as url:
        knowledge = twilio_client(app, url).knowledge.v2

        def scenario() -> tuple[Any, Any, Any]:
            base = knowledge.knowledge_bases(kb).fetch()
            source = knowledge.knowledge(kb).create(
                knowledge_core=KnowledgeList.KnowledgeCore(
                    {
                        "name": "shipping",
                        "description": "Shipping policy",
                        "source": {"type": "Text", "content": SHIPPING},
                    }
                )
            )
            knowledge.knowledge(kb).create(
                knowledge_core=KnowledgeList.KnowledgeCore(
                    {"name": "returns", "source": {"type": "Text", "content": RETURNS}}
                )
            )
            found = knowledge.search(kb).create(
                knowledge_search=SearchList.KnowledgeSearch(
                    {"query": "How long does standard shipping take?", "top": 5}
                )
            )
            return base, source, found

        base, source, found = await asyncio.to_thread(scenario)
    assert base.id == kb
    assert base.status == "ACTIVE"
    assert source.id.startswith("know_knowledge_")
    assert source.status == "COMPLETED"
    chunks = found.chunks
    assert chunks[0]["knowledgeId"] == source.id
    assert "Standard shipping takes 3-5 business days" in chunks[0]["content"]
    assert chunks[0]["chunkIndex"] == 0
    assert all(set(c) >= {"content", "knowledgeId", "createdAt", "score"} for c in chunks)
    assert [c["score"] for c in chunks] == sorted((c["score"] for c in chunks), reverse=True)


async def test_folder_of_files_is_loaded_chunked_and_searchable(app: Any, tmp_path: Path) -> None:
    (tmp_path / "shipping.md").write_text(SHIPPING, encoding="utf-8")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "returns.txt").write_text(RETURNS, encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    kb = _kb(app)
    async with asgi_client(app) as http:
        loaded = (await http.post("/sandbox/knowledge/load", json={"path": str(tmp_path)})).json()
        reloaded = (await http.post("/sandbox/knowledge/load", json={"path": str(tmp_path)})).json()
        found = (
            await http.post(
                f"/knowledge/v2/KnowledgeBases/{kb}/Search",
                json={"query": "refund after delivery", "top": 1},
            )
        ).json()
        listed = (await http.get(f"/knowledge/v2/KnowledgeBases/{kb}/Knowledge")).json()
        chunks = (
            await http.get(
                f"/knowledge/v2/KnowledgeBases/{kb}/Knowledge/{loaded['knowledgeIds'][1]}/Chunks"
            )
        ).json()
    assert len(loaded["knowledgeIds"]) == 2
    assert reloaded["knowledgeIds"] == loaded["knowledgeIds"]
    assert len(listed["knowledge"]) == 2
    assert [c["content"] for c in found["chunks"]] == [RETURNS]
    assert found["chunks"][0]["documentTitle"] == "returns"
    assert chunks["chunks"][0]["documentTitle"] == "Shipping policy"
    assert chunks["chunks"][0]["content"].startswith("# Shipping policy\n\nStandard shipping")


async def test_folder_from_environment_at_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "faq.txt").write_text(RETURNS, encoding="utf-8")
    monkeypatch.setenv("OPENTAC_SANDBOX_KNOWLEDGE_DIR", str(tmp_path))
    app = make_app([KNOWLEDGE])
    async with serve(app) as url:
        knowledge = twilio_client(app, url).knowledge.v2
        found = await asyncio.to_thread(
            lambda: knowledge.search(_kb(app)).create(
                knowledge_search=SearchList.KnowledgeSearch({"query": "returns", "top": 3})
            )
        )
    assert [c["content"] for c in found.chunks] == [RETURNS]


async def test_search_filters_by_knowledge_ids_and_drops_unrelated_chunks(app: Any) -> None:
    kb = _kb(app)
    async with asgi_client(app) as http:
        sources = []
        for text in (SHIPPING, RETURNS):
            created = await http.post(
                f"/knowledge/v2/KnowledgeBases/{kb}/Knowledge",
                json={"source": {"type": "Text", "content": text}},
            )
            assert created.status_code == 201
            sources.append(created.json()["id"])
        only_returns = (
            await http.post(
                f"/knowledge/v2/KnowledgeBases/{kb}/Search",
                json={"query": "shipping refunds", "top": 20, "knowledgeIds": [sources[1]]},
            )
        ).json()
        nothing = (
            await http.post(
                f"/knowledge/v2/KnowledgeBases/{kb}/Search",
                json={"query": "zebra", "top": 20},
            )
        ).json()
    assert {c["knowledgeId"] for c in only_returns["chunks"]} == {sources[1]}
    assert nothing == {"chunks": []}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"query": "x", "top": 0}, "top"),
        ({"query": "x", "top": 21}, "top"),
        ({"query": "x"}, "top"),
        ({"query": "x" * 2049, "top": 5}, "query"),
        ({"top": 5}, "query"),
        ({"query": "x", "top": 5, "filter": 1}, "filter"),
        ({"query": "x", "top": "five"}, "top"),
    ],
)
async def test_search_validation_is_twilio_shaped(app: Any, body: Any, fragment: str) -> None:
    async with asgi_client(app) as http:
        response = await http.post(f"/knowledge/v2/KnowledgeBases/{_kb(app)}/Search", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 20001
    assert fragment in response.json()["message"]


async def test_unknown_base_unsupported_source_and_bad_folder(app: Any) -> None:
    kb = _kb(app)
    async with asgi_client(app) as http:
        missing = await http.get("/knowledge/v2/ControlPlane/KnowledgeBases/know_knowledgebase_x")
        web = await http.post(
            f"/knowledge/v2/KnowledgeBases/{kb}/Knowledge",
            json={"source": {"type": "Web", "url": "https://example.com"}},
        )
        folder = await http.post("/sandbox/knowledge/load", json={"path": "/no/such/folder"})
        etag = (await http.get(f"/knowledge/v2/ControlPlane/KnowledgeBases/{kb}")).headers["etag"]
    assert missing.status_code == 404
    assert web.status_code == 400
    assert "Web" in web.json()["message"]
    assert folder.status_code == 400
    assert "not a folder" in folder.json()["message"]
    assert etag == '"1"'


async def test_control_plane_creates_another_base(app: Any) -> None:
    async with asgi_client(app) as http:
        created = await http.post(
            "/knowledge/v2/ControlPlane/KnowledgeBases",
            json={"displayName": "help-center", "description": "Help articles"},
        )
        bad = await http.post(
            "/knowledge/v2/ControlPlane/KnowledgeBases",
            json={"displayName": "has spaces", "description": "x"},
        )
        listed = (await http.get("/knowledge/v2/ControlPlane/KnowledgeBases")).json()
    assert created.status_code == 202
    assert bad.status_code == 400
    assert "displayName" in bad.json()["message"]
    names = {b["displayName"] for b in listed["knowledgeBases"]}
    assert names == {"sandbox-knowledge", "help-center"}


async def test_knowledge_outage_is_503(app: Any) -> None:
    async with asgi_client(app) as http:
        await http.put("/sandbox/faults/knowledge", json={"outage": True})
        response = await http.post(
            f"/knowledge/v2/KnowledgeBases/{_kb(app)}/Search", json={"query": "x", "top": 1}
        )
    assert response.status_code == 503


def test_chunking_keeps_paragraphs_and_headings_together() -> None:
    text = "# Title\n\n" + "First paragraph. " * 10 + "\n\n" + "Second. " * 150
    chunks = chunk_text(text, limit=400)
    assert chunks[0].startswith("# Title\n\nFirst paragraph.")
    assert all(len(chunk) <= 400 for chunk in chunks[1:])
    assert "".join(chunks).count("Second.") == 150
