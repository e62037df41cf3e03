"""Helpers for the sandbox product tests: build an app, call it, serve it on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from twilio.rest import Client

from tac.sandbox import SandboxSettings, create_app, twilio_http_client
from tac_sandbox._context import SandboxContext

MEMORY = "tac_sandbox.products.memory"
KNOWLEDGE = "tac_sandbox.products.knowledge"
STUDIO = "tac_sandbox.products.studio"
CALLS = "tac_sandbox.products.calls"
INTELLIGENCE = "tac_sandbox.products.intelligence"
ALL = (MEMORY, KNOWLEDGE, STUDIO, CALLS, INTELLIGENCE)


def make_app(products: Iterable[str] = ALL, db: str = ":memory:", **settings: Any) -> FastAPI:
    return create_app(SandboxSettings(db=db, **settings), products=list(products))


def ctx_of(app: FastAPI) -> SandboxContext:
    ctx: SandboxContext = app.state.sandbox
    return ctx


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process with the sandbox's API key."""
    ident = ctx_of(app).identity
    token = base64.b64encode(f"{ident.api_key}:{ident.api_secret}".encode()).decode()
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox",
        headers={"Authorization": f"Basic {token}"},
    )


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def twilio_client(app: FastAPI, url: str) -> Client:
    """The official ``twilio`` client with the sandbox's API key, pointed at ``url``."""
    ident = ctx_of(app).identity
    return Client(
        ident.api_key,
        ident.api_secret,
        ident.account_sid,
        http_client=twilio_http_client(url),
    )
