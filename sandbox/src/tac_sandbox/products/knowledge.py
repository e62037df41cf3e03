"""Enterprise Knowledge v2 (``https://knowledge.twilio.com``), served under ``/knowledge``.

Knowledge bases (the sandbox's default one, more through the ControlPlane), knowledge sources of
type ``Text`` through the API or loaded from a folder of ``.txt``/``.md`` files, chunked by
paragraph, and Search ranked by BM25 relevance.

Folders: ``POST /sandbox/knowledge/load {"path", "knowledgeBaseId"?}``,
``ctx.products.knowledge.load_folder(path, kb_id=None)``, or the environment variable
``OPENTAC_SANDBOX_KNOWLEDGE_DIR`` read at startup. Loading a file again replaces its chunks.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import Database, dumps, loads
from tac_sandbox._errors import bad_request, not_found
from tac_sandbox._ids import ttid
from tac_sandbox._ranking import BM25
from tac_sandbox.products._common import (
    iso,
    json_object,
    page_body,
    page_bounds,
    utcnow,
    validate,
)

FOLDER_ENV = "OPENTAC_SANDBOX_KNOWLEDGE_DIR"
CHUNK_CHARS = 800
_SUFFIXES = (".txt", ".md", ".markdown")
_DISPLAY_NAME = r"^[a-zA-Z0-9-]+$"

_SCHEMA = """
CREATE TABLE know_bases (
    id TEXT PRIMARY KEY, display_name TEXT NOT NULL, description TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL
);
CREATE TABLE know_sources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kb_id TEXT NOT NULL,
    name TEXT, description TEXT, source TEXT NOT NULL, status TEXT NOT NULL,
    title TEXT, path TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE know_chunks (
    knowledge_id TEXT NOT NULL, chunk_index INTEGER NOT NULL, content TEXT NOT NULL,
    PRIMARY KEY (knowledge_id, chunk_index)
);
"""


def chunk_text(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Split ``text`` into chunks of whole paragraphs (then sentences) up to ``limit`` chars.

    A Markdown heading stays with the paragraph that follows it.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph) <= limit:
            pieces.append(paragraph)
            continue
        sentence_chunk = ""
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            while len(sentence) > limit:
                pieces.append(sentence[:limit])
                sentence = sentence[limit:]
            if sentence_chunk and len(sentence_chunk) + 1 + len(sentence) > limit:
                pieces.append(sentence_chunk)
                sentence_chunk = sentence
            else:
                sentence_chunk = f"{sentence_chunk} {sentence}".strip()
        if sentence_chunk:
            pieces.append(sentence_chunk)
    chunks: list[str] = []
    for piece in pieces:
        previous = chunks[-1] if chunks else None
        if previous is not None and (
            _is_heading(previous) or len(previous) + 2 + len(piece) <= limit // 2
        ):
            chunks[-1] = f"{previous}\n\n{piece}"
        else:
            chunks.append(piece)
    return chunks


def _is_heading(text: str) -> bool:
    return text.startswith("#") and "\n" not in text


def _read_folder(path: str) -> list[tuple[Path, str, str]]:
    """``(file, absolute path, text)`` of each non-empty text/markdown file, sorted."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise bad_request(f"path: not a folder: {path}")
    found = []
    for file in sorted(folder.rglob("*")):
        if not file.is_file() or file.suffix.lower() not in _SUFFIXES:
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise bad_request(f"path: cannot read {file}: {exc}") from exc
        if text.strip():
            found.append((file, str(file.resolve()), text))
    return found


def _title(path: Path, text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or path.stem
    return path.stem


class _TextSource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    content: str | None = Field(default=None, max_length=1_000_000)


class _KnowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=30)
    description: str | None = Field(default=None, max_length=1024)
    source: _TextSource


class _SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2048)
    top: int = Field(ge=1, le=20)
    knowledgeIds: list[str] | None = Field(default=None, max_length=100)


class _BaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    displayName: str = Field(min_length=1, max_length=64, pattern=_DISPLAY_NAME)
    description: str = Field(min_length=1, max_length=128)


class _LoadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    knowledgeBaseId: str | None = None


class KnowledgeService:
    """Knowledge bases, sources and chunks in SQLite."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.db: Database = ctx.db

    def create_base(self, display_name: str, description: str, base_id: str | None = None) -> str:
        base_id = base_id or ttid("know_knowledgebase")
        now = iso(utcnow())
        self.db.execute(
            "INSERT INTO know_bases VALUES (?, ?, ?, ?, ?, 1)",
            (base_id, display_name, description, now, now),
        )
        return base_id

    def ensure_default_base(self) -> None:
        base_id = self.ctx.identity.knowledge_base_id
        if self.db.one("SELECT 1 FROM know_bases WHERE id = ?", (base_id,)) is None:
            self.create_base("sandbox-knowledge", "The sandbox's default knowledge base", base_id)

    def base_json(self, base_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM know_bases WHERE id = ?", (base_id,))
        if row is None:
            raise not_found("KnowledgeBase", base_id)
        return {
            "id": row["id"],
            "displayName": row["display_name"],
            "description": row["description"],
            "status": "ACTIVE",
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
            "version": row["version"],
        }

    def add_text(
        self,
        base_id: str,
        content: str,
        *,
        name: str | None = None,
        description: str | None = None,
        title: str | None = None,
        path: str | None = None,
    ) -> str:
        """Store one Text source and its chunks; return its ``know_knowledge_…`` id."""
        self.base_json(base_id)
        now = iso(utcnow())
        previous = (
            self.db.one("SELECT id FROM know_sources WHERE kb_id = ? AND path = ?", (base_id, path))
            if path
            else None
        )
        knowledge_id = str(previous["id"]) if previous is not None else ttid("know_knowledge")
        source = {"type": "Text", "content": content}
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM know_chunks WHERE knowledge_id = ?", (knowledge_id,))
            if previous is None:
                conn.execute(
                    "INSERT INTO know_sources (id, kb_id, name, description, source, status,"
                    " title, path, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, 'COMPLETED', ?, ?, ?, ?)",
                    (
                        knowledge_id,
                        base_id,
                        name,
                        description,
                        dumps(source),
                        title,
                        path,
                        now,
                        now,
                    ),
                )
            else:
                conn.execute(
                    "UPDATE know_sources SET source = ?, title = ?, updated_at = ? WHERE id = ?",
                    (dumps(source), title, now, knowledge_id),
                )
            for index, chunk in enumerate(chunk_text(content)):
                conn.execute(
                    "INSERT INTO know_chunks VALUES (?, ?, ?)", (knowledge_id, index, chunk)
                )
        return knowledge_id

    async def load_folder(self, path: str, kb_id: str | None = None) -> list[str]:
        """Load every ``.txt``/``.md`` file under ``path`` (recursively) as a Text source."""
        base_id = kb_id or self.ctx.identity.knowledge_base_id
        self.base_json(base_id)
        files = await asyncio.to_thread(_read_folder, path)
        return [
            self.add_text(base_id, text, name=file.stem[:30], title=_title(file, text), path=key)
            for file, key, text in files
        ]

    def source_json(self, row: Any) -> dict[str, Any]:
        item = {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "source": loads(row["source"]),
            "status": row["status"],
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
        }
        return {k: v for k, v in item.items() if v is not None}

    def source_row(self, base_id: str, knowledge_id: str) -> Any:
        self.base_json(base_id)
        row = self.db.one(
            "SELECT * FROM know_sources WHERE kb_id = ? AND id = ?", (base_id, knowledge_id)
        )
        if row is None:
            raise not_found("Knowledge", knowledge_id)
        return row

    def search(self, base_id: str, body: _SearchBody) -> dict[str, Any]:
        self.base_json(base_id)
        rows = self.db.query(
            "SELECT c.knowledge_id, c.chunk_index, c.content, s.created_at, s.title, s.path"
            " FROM know_chunks c JOIN know_sources s ON s.id = c.knowledge_id"
            " WHERE s.kb_id = ? ORDER BY s.seq, c.chunk_index",
            (base_id,),
        )
        if body.knowledgeIds:
            wanted = set(body.knowledgeIds)
            rows = [row for row in rows if row["knowledge_id"] in wanted]
        index = BM25([row["content"] for row in rows])
        chunks = []
        for scored in index.rank(body.query, limit=body.top):
            row = rows[scored.index]
            chunk: dict[str, Any] = {
                "content": row["content"],
                "knowledgeId": row["knowledge_id"],
                "createdAt": row["created_at"],
                "chunkIndex": row["chunk_index"],
            }
            if row["title"]:
                chunk["documentTitle"] = row["title"]
            chunk["score"] = scored.score
            chunks.append(chunk)
        return {"chunks": chunks}


def install(ctx: SandboxContext) -> None:
    """Add Knowledge v2 under ``/knowledge`` and its control endpoints."""
    ctx.db.migrate("knowledge-1", _SCHEMA)
    service = KnowledgeService(ctx)
    service.ensure_default_base()
    ctx.products.knowledge = service

    async def load_from_environment() -> None:
        folder = os.environ.get(FOLDER_ENV)
        if folder:
            await service.load_folder(folder)

    ctx.on_startup(load_from_environment)
    ctx.add_product("knowledge", _router(service))
    ctx.add_control(_control_router(service))


def _router(service: KnowledgeService) -> APIRouter:
    router = APIRouter(tags=["knowledge"])

    @router.get("/v2/ControlPlane/KnowledgeBases")
    async def list_bases(
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        offset, size = page_bounds(page_size, page_token)
        rows = service.db.query("SELECT id FROM know_bases ORDER BY created_at, id")
        bases = [service.base_json(row["id"]) for row in rows]
        return page_body("knowledgeBases", bases[offset : offset + size], offset, size, len(bases))

    @router.post("/v2/ControlPlane/KnowledgeBases")
    async def create_base(request: Request) -> JSONResponse:
        body = validate(_BaseBody, await json_object(request))
        base_id = service.create_base(body.displayName, body.description)
        status_url = (
            f"{service.ctx.settings.base_url()}/knowledge/v2/ControlPlane/KnowledgeBases/{base_id}"
        )
        return JSONResponse(
            {"message": "Knowledge base creation accepted", "statusUrl": status_url, "id": base_id},
            status_code=202,
            headers={"Location": status_url},
        )

    @router.get("/v2/ControlPlane/KnowledgeBases/{base_id}")
    async def get_base(base_id: str) -> JSONResponse:
        body = service.base_json(base_id)
        return JSONResponse(body, headers={"ETag": f'"{body["version"]}"'})

    @router.post("/v2/KnowledgeBases/{base_id}/Knowledge")
    async def create_knowledge(base_id: str, request: Request) -> JSONResponse:
        service.base_json(base_id)
        body = validate(_KnowledgeBody, await json_object(request))
        if body.source.type != "Text":
            raise bad_request(
                f"source.type {body.source.type!r} is not supported by the sandbox: use 'Text',"
                " or load files with POST /sandbox/knowledge/load"
            )
        if not body.source.content:
            raise bad_request("source.content is required for a Text source")
        knowledge_id = service.add_text(
            base_id, body.source.content, name=body.name, description=body.description
        )
        return JSONResponse(
            service.source_json(service.source_row(base_id, knowledge_id)), status_code=201
        )

    @router.get("/v2/KnowledgeBases/{base_id}/Knowledge")
    async def list_knowledge(
        base_id: str,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        service.base_json(base_id)
        offset, size = page_bounds(page_size, page_token)
        rows = service.db.query(
            "SELECT * FROM know_sources WHERE kb_id = ? ORDER BY seq", (base_id,)
        )
        items = [service.source_json(row) for row in rows]
        return page_body("knowledge", items[offset : offset + size], offset, size, len(items))

    @router.get("/v2/KnowledgeBases/{base_id}/Knowledge/{knowledge_id}")
    async def get_knowledge(base_id: str, knowledge_id: str) -> dict[str, Any]:
        return service.source_json(service.source_row(base_id, knowledge_id))

    @router.delete("/v2/KnowledgeBases/{base_id}/Knowledge/{knowledge_id}", status_code=204)
    async def delete_knowledge(base_id: str, knowledge_id: str) -> None:
        service.source_row(base_id, knowledge_id)
        with service.db.transaction() as conn:
            conn.execute("DELETE FROM know_chunks WHERE knowledge_id = ?", (knowledge_id,))
            conn.execute("DELETE FROM know_sources WHERE id = ?", (knowledge_id,))

    @router.get("/v2/KnowledgeBases/{base_id}/Knowledge/{knowledge_id}/Chunks")
    async def list_chunks(
        base_id: str,
        knowledge_id: str,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        source = service.source_row(base_id, knowledge_id)
        offset, size = page_bounds(page_size, page_token)
        rows = service.db.query(
            "SELECT * FROM know_chunks WHERE knowledge_id = ? ORDER BY chunk_index",
            (knowledge_id,),
        )
        chunks = []
        for row in rows:
            chunk = {
                "content": row["content"],
                "createdAt": source["created_at"],
                "chunkIndex": row["chunk_index"],
            }
            if source["title"]:
                chunk["documentTitle"] = source["title"]
            chunks.append(chunk)
        return page_body("chunks", chunks[offset : offset + size], offset, size, len(chunks))

    @router.post("/v2/KnowledgeBases/{base_id}/Search")
    async def search(base_id: str, request: Request) -> dict[str, Any]:
        service.base_json(base_id)
        body = validate(_SearchBody, await json_object(request))
        return service.search(base_id, body)

    return router


def _control_router(service: KnowledgeService) -> APIRouter:
    router = APIRouter(prefix="/knowledge", tags=["control"])

    @router.post("/load")
    async def load(request: Request) -> dict[str, Any]:
        """Load a folder of ``.txt``/``.md`` files into a knowledge base (default: sandbox's)."""
        body = validate(_LoadBody, await json_object(request))
        base_id = body.knowledgeBaseId or service.ctx.identity.knowledge_base_id
        ids = await service.load_folder(body.path, base_id)
        return {"knowledgeBaseId": base_id, "knowledgeIds": ids}

    return router
