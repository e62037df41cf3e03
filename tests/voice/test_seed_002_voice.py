"""Seed 002's voice snippets, run verbatim (tests/seeds/snippets/seed_002_voice_*.py).

The harness supplies what the snippets leave undefined (``tac``, ``generate_response``,
``cancel_pending_operations``, the model names) and plays the caller over a real WebSocket.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.voice._harness import VoiceApp

from tac import TAC
from tac.channels.voice import VoiceChannel
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

pytestmark = pytest.mark.integration

SNIPPETS = Path(__file__).resolve().parents[1] / "seeds" / "snippets"


def run_snippet(name: str, namespace: dict[str, Any]) -> None:
    path = SNIPPETS / f"{name}.py"
    exec(compile(path.read_text(), str(path), "exec"), namespace)


async def test_seed_002_voice_snippets() -> None:
    cancelled: list[str] = []
    namespace: dict[str, Any] = {
        "ConversationSession": ConversationSession,
        "TACMemoryResponse": TACMemoryResponse,
    }

    async def generate_response(message: str, **kwargs: Any) -> str:
        return f"You said {message}."

    async def cancel_pending_operations(conversation_id: str) -> None:
        cancelled.append(conversation_id)

    namespace["generate_response"] = generate_response
    namespace["cancel_pending_operations"] = cancel_pending_operations

    def build(tac: TAC) -> VoiceChannel:
        namespace["tac"] = tac
        run_snippet("seed_002_voice_configure", namespace)
        channel: VoiceChannel = namespace["voice_channel"]
        return channel

    async with VoiceApp(channel_factory=build) as app:
        assert app.channel.memory_mode == "always"
        run_snippet("seed_002_voice_send_response", namespace)
        run_snippet("seed_002_voice_interrupt", namespace)
        app.tac.on_message_ready(namespace["handle_message_ready"])
        async with app.call() as call:
            await call.say("where is my order")
            text, _ = await call.reply()
            assert text == "You said where is my order."
            await call.interrupt("You said")
            await app.until(lambda: bool(cancelled))
        await asyncio.wait_for(app.settled(), 10)
        assert cancelled == [call.call_sid]
