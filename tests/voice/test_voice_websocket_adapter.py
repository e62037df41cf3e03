"""The reference SDK's WebSocket pieces: ``FastAPIWebSocketAdapter`` and ``WebSocketProtocol``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import WebSocket
from tests.voice._harness import ACCOUNT, AGENT_NUMBER, FROM, VoiceApp
from websockets.asyncio.client import connect

from tac.channels.websocket_manager import WebSocketManager
from tac.channels.websocket_protocol import WebSocketDisconnectError, WebSocketProtocol
from tac.server import FastAPIWebSocketAdapter

pytestmark = pytest.mark.integration


async def test_a_route_of_your_own_serves_calls_through_the_adapter() -> None:
    async with VoiceApp() as app:
        app.tac.on_message_ready(lambda message, session, memory: f"heard {message}")
        seen: list[bool] = []

        async def my_socket(websocket: WebSocket) -> None:
            adapter = FastAPIWebSocketAdapter(websocket)
            seen.append(isinstance(adapter, WebSocketProtocol))
            await app.channel.handle_websocket(adapter)

        app.server.app.add_api_websocket_route("/my-relay", my_socket)
        async with connect(f"ws://127.0.0.1:{app.port}/my-relay") as relay:
            await relay.send(
                json.dumps(
                    {
                        "type": "setup",
                        "sessionId": "VX1",
                        "accountSid": ACCOUNT,
                        "callSid": "CA" + "7" * 32,
                        "from": FROM,
                        "to": AGENT_NUMBER,
                        "direction": "inbound",
                        "callStatus": "RINGING",
                        "customParameters": {},
                    }
                )
            )
            await relay.send(json.dumps({"type": "prompt", "voicePrompt": "hi", "last": True}))
            tokens = []
            while True:
                frame: dict[str, Any] = json.loads(await relay.recv())
                if frame.get("type") == "text":
                    tokens.append(frame["token"])
                    if frame.get("last"):
                        break
        assert "".join(tokens) == "heard hi"
        assert seen == [True]
        await app.settled()


async def test_handle_websocket_names_what_it_takes() -> None:
    async with VoiceApp() as app:
        with pytest.raises(TypeError, match="FastAPIWebSocketAdapter"):
            await app.channel.handle_websocket(object())  # type: ignore[arg-type]


async def test_adapter_maps_a_disconnect_and_the_manager_tracks_sockets() -> None:
    class Closed:
        async def receive_json(self) -> Any:
            from fastapi import WebSocketDisconnect

            raise WebSocketDisconnect(1000)

    adapter = FastAPIWebSocketAdapter(Closed())  # type: ignore[arg-type]
    with pytest.raises(WebSocketDisconnectError):
        await adapter.receive_json()
    manager = WebSocketManager()
    manager.add_websocket("conv_1", adapter)
    assert manager.has_websocket("conv_1")
    assert manager.get_websocket("conv_1") is adapter
    manager.remove_websocket("conv_1")
    manager.remove_websocket("conv_1")
    assert manager.get_websocket("conv_1") is None
    assert len(manager) == 0
