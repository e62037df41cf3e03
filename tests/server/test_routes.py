"""The server builds every route in one router, from one set of paths, and runs inside the
app's own lifespan without replacing it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from starlette.routing import Route, WebSocketRoute
from tests._ports import free_port

from tac import TAC, TACConfig
from tac.channels import SMSChannel
from tac.channels.voice import VoiceChannel
from tac.server import TACFastAPIServer, TACServerConfig

pytestmark = pytest.mark.integration


def _tac() -> TAC:
    return TAC(
        TACConfig(
            account_sid="AC109031c05318848ba78ba04165baaad1",
            auth_token="test-auth-token",
            api_key="SKkey",
            api_secret="secret",
            phone_number="+18005550100",
            conversation_configuration_id="conv_configuration_00000000000000000000000000",
            public_base_url="https://tac.example.com",
            voice_websocket_path="/voice/socket",
            voice_action_path="/voice/after",
            voice_call_event_path="/voice/events",
            log_level="WARNING",
        )
    )


def test_every_path_is_served_by_the_servers_router() -> None:
    tac = _tac()
    server = TACFastAPIServer(
        tac,
        voice_channel=VoiceChannel(tac),
        messaging_channels=[SMSChannel(tac)],
        config=TACServerConfig(
            conversation_webhook_path="/in",
            twiml_path="/voice/answer",
            health_path="/live",
            ready_path=None,
        ),
    )
    http = {r.path for r in server.router.routes if isinstance(r, Route)}
    sockets = {r.path for r in server.router.routes if isinstance(r, WebSocketRoute)}
    assert http == {
        "/in",
        "/voice/answer",
        "/voice/after",
        "/voice/events/status",
        "/voice/events/amd",
        "/voice/events/recording",
        "/live",
    }
    assert sockets == {"/voice/socket"}
    assert server.paths.voice_websocket == "/voice/socket"
    # the same route objects are what the app serves
    app_routes = {id(r) for r in server.app.router.routes}
    assert all(id(r) in app_routes for r in server.router.routes)


async def test_the_apps_own_lifespan_and_routes_keep_working() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def own_lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("app up")
        yield {"greeting": "hello from the app"}
        events.append("app down")

    app = FastAPI(lifespan=own_lifespan)

    @app.get("/mine")
    async def mine(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    tac = _tac()
    server = TACFastAPIServer(
        tac,
        messaging_channels=[SMSChannel(tac)],
        config=TACServerConfig(shutdown_grace_period=1),
        app=app,
    )
    port = free_port()
    served = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.get_running_loop().create_task(served.serve())
    try:
        for _ in range(200):
            if served.started:
                break
            await asyncio.sleep(0.02)
        assert served.started
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/mine")).json() == {"greeting": "hello from the app"}
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            unsigned = await client.post("/webhook", json={"eventType": "X", "data": {}})
            assert unsigned.status_code == 403
        assert events == ["app up"]
        assert not server.draining
    finally:
        served.should_exit = True
        await asyncio.wait_for(task, 15)
    assert events == ["app up", "app down"]
    assert server.draining  # the server's lifespan ran its shutdown inside the app's
