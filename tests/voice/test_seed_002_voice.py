"""Seed 002's voice snippets, run verbatim (tests/seeds/snippets/seed_002_voice_*.py).

The harness supplies what the snippets leave undefined (``tac``, ``generate_response``,
``cancel_pending_operations``, the model names); the app runs with the sandbox's environment
(as ``opentac sandbox --write-env`` writes it) and the sandbox's phone calls it.
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
from tac.sandbox import Sandbox

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

    async with Sandbox.start(app_url="http://127.0.0.1:9") as sandbox:
        env = dict(sandbox.env)
        del env["TWILIO_CONVERSATION_CONFIGURATION_ID"]  # ConversationRelay-only mode
        app = VoiceApp(env=env, channel_factory=build)
        await sandbox.set_app_url(app.url)
        async with app:
            assert app.channel.memory_mode == "always"
            run_snippet("seed_002_voice_send_response", namespace)
            run_snippet("seed_002_voice_interrupt", namespace)
            app.tac.on_message_ready(namespace["handle_message_ready"])
            async with sandbox.caller() as caller:
                await caller.dial()
                assert await caller.ask("where is my order") == "You said where is my order."
                await caller.interrupt("You said")
                await app.until(lambda: bool(cancelled))
                await caller.hang_up()
            await asyncio.wait_for(app.settled(), 10)
        assert cancelled == [caller.call_sid]
