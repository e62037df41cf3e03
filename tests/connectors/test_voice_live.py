"""VoiceLiveConnector: a ConversationRelay call answered through a local stand-in of Azure
Voice Live's realtime WebSocket (text mode), with a tool call and an interrupt."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tac.tools import function_tool
from tac_microsoft import VoiceLiveConfig, VoiceLiveConnector
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration


@function_tool
def store_hours(day: str) -> str:
    """When the store is open.

    Args:
        day: the day of the week.
    """
    return "closed" if day == "Sunday" else "9 to 5"


class VoiceLiveStandIn:
    """Voice Live's side: answers response.create from a script; records client events."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.events: list[dict[str, Any]] = []
        self.headers: dict[str, str] = {}
        self.path = ""
        self.responses = 0

    async def __call__(self, socket: ServerConnection) -> None:
        assert socket.request is not None
        self.headers = dict(socket.request.headers)
        self.path = socket.request.path
        await socket.send(json.dumps({"type": "session.created"}))
        async for raw in socket:
            event = json.loads(raw)
            self.events.append(event)
            if event["type"] == "session.update":
                await socket.send(json.dumps({"type": "session.updated"}))
            elif event["type"] == "response.create":
                await self.respond(socket, self.script.pop(0))

    async def respond(self, socket: ServerConnection, step: Any) -> None:
        self.responses += 1
        rid, item = f"resp_{self.responses}", f"item_{self.responses}"

        async def send(event: dict[str, Any]) -> None:
            await socket.send(json.dumps({"response_id": rid, **event}))

        await socket.send(json.dumps({"type": "response.created", "response": {"id": rid}}))
        if isinstance(step, dict):  # a tool call
            await send({"type": "response.function_call_arguments.done", "call_id": "c1", **step})
            await send({"type": "response.done", "response": {"id": rid, "output": []}})
            return
        message = {"type": "message", "role": "assistant", "id": item}
        await send({"type": "response.output_item.added", "item": message})
        for word in step.split(" "):
            await send({"type": "response.text.delta", "delta": word + " "})
        await send({"type": "response.done", "response": {"id": rid, "output": [message]}})


async def test_a_call_through_voice_live() -> None:
    stand_in = VoiceLiveStandIn(
        [
            {"name": "store_hours", "arguments": '{"day": "Sunday"}'},
            "We are closed on Sunday.",
            "On Monday.",
        ]
    )
    async with serve(stand_in, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        config = VoiceLiveConfig(
            endpoint=f"ws://127.0.0.1:{port}",
            model="gpt-4o",
            api_key="key-1",
            instructions="Be brief.",
            tools=[store_hours],
        )
        connectors: list[VoiceLiveConnector] = []

        def make(tac: Any) -> Any:
            connectors.append(VoiceLiveConnector(tac, config))
            return connectors[0].voice_channel

        app = VoiceApp(channel_factory=make)
        async with app:
            async with app.call() as call:
                await call.say("Are you open on Sunday?")
                text, frames = await call.reply()
                assert text.strip() == "We are closed on Sunday."
                assert len([f for f in frames if f["type"] == "text"]) > 3
                await call.interrupt("We are closed")
                await app.until(
                    lambda: any(e["type"] == "conversation.item.delete" for e in stand_in.events)
                )
                await call.say("When then?")
                assert (await call.reply())[0].strip() == "On Monday."
            await app.settled()
        assert connectors[0]._voice_sessions == {}  # closed with the call
    assert stand_in.headers["api-key"] == "key-1"
    assert stand_in.path == "/voice-live/realtime?api-version=2025-10-01&model=gpt-4o"
    kinds = [e["type"] for e in stand_in.events]
    update = stand_in.events[0]["session"]
    assert update["modalities"] == ["text"]
    assert update["tools"][0]["name"] == "store_hours"
    output = next(
        e
        for e in stand_in.events
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    )
    assert output["item"]["output"] == "closed"
    delete = kinds.index("conversation.item.delete")
    assert stand_in.events[delete]["item_id"] == "item_2"
    replaced = stand_in.events[delete + 1]["item"]
    assert replaced["role"] == "assistant"
    assert replaced["content"] == [{"type": "text", "text": "We are closed"}]
