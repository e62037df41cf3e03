"""Voice with the Redis session store (skipped when no Redis listens on 127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from tests._redis import REDIS_URL, redis_listening
from tests.voice._harness import VoiceApp

from tac.models.session import ConversationSession

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not redis_listening(), reason="no Redis on 127.0.0.1:6379")
async def test_calls_handoff_and_session_end_with_redis() -> None:
    from tac.state.redis import RedisSessionStore

    store = RedisSessionStore.from_url(REDIS_URL, prefix=f"tac-voice-{uuid.uuid4().hex}:")
    async with VoiceApp(session_store=store) as app:
        handoff = json.dumps({"reason": "human"})
        ended: list[str] = []

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            if message == "human":
                await app.tac.session_store.set_pending_handoff(
                    session.conversation_id, handoff, 60
                )
            return f"ok {session.custom_parameters['n']}"

        app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))

        async def one(index: int) -> None:
            async with app.call(custom_parameters={"n": str(index)}) as call:
                await call.say("hello")
                assert (await call.reply())[0] == f"ok {index}"
                await call.say("human")
                await call.reply()
                assert await call.frame() == {"type": "end", "handoffData": handoff}

        await asyncio.gather(*(one(i) for i in range(20)))
        await app.settled()
        assert len(ended) == 20
        assert await store.session_count() == 0
