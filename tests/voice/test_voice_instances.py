"""Voice on several instances (one Redis): the same event has the same effect wherever it lands,
and every voice turn saves its session (the turn engine's last step)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from tests._redis import REDIS_URL, redis_listening
from tests.voice._harness import VoiceApp

from tac.channels.voice.conversation_relay.provider import CallNotConnectedError
from tac.models.session import ConversationSession
from tac.state import InMemorySessionStore

pytestmark = pytest.mark.integration

needs_redis = pytest.mark.skipif(not redis_listening(), reason="no Redis on 127.0.0.1:6379")


def _store(prefix: str) -> Any:
    from tac.state.redis import RedisSessionStore

    return RedisSessionStore.from_url(REDIS_URL, prefix=prefix)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_what_a_voice_callback_changes_is_saved_every_turn(backend: str) -> None:
    if backend == "redis" and not redis_listening():
        pytest.skip("no Redis on 127.0.0.1:6379")
    store = InMemorySessionStore() if backend == "memory" else _store(f"tac-vs-{uuid.uuid4()}:")
    ended: list[dict[str, Any]] = []
    async with VoiceApp(session_store=store) as app:

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            session.metadata["tier"] = "gold"
            session.metadata["heard"] = [*session.metadata.get("heard", []), message]
            return "ok"

        app.tac.on_conversation_ended(lambda session: ended.append(dict(session.metadata)))
        async with app.call() as call:
            await call.say("one")
            await call.reply()
            await call.say("two")
            await call.reply()

            async def saved() -> bool:  # saved right after the reply went out
                stored = await store.get_session(call.call_sid)
                return stored is not None and stored.metadata.get("heard") == ["one", "two"]

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not await saved():
                assert loop.time() < deadline, "the second turn's session was not saved"
                await asyncio.sleep(0.01)
        await app.settled()
    assert len(ended) == 1
    assert ended[0]["tier"] == "gold"
    assert ended[0]["heard"] == ["one", "two"]


@needs_redis
async def test_a_quiet_live_call_outlives_a_short_session_ttl() -> None:
    store = _store(f"tac-vttl-{uuid.uuid4()}:")
    ended: list[str] = []
    async with VoiceApp(session_store=store, session_ttl_seconds=0.6) as app:
        app.tac.on_message_ready(lambda message, session, memory: "ok")
        app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
        await app.tac.start()
        async with app.call() as call:
            await call.say("hello")
            await call.reply()
            for _ in range(3):  # quiet for several TTLs; the sweeper runs meanwhile
                await asyncio.sleep(0.6)
                await app.tac.sweep_expired_sessions()
            assert ended == []
            await call.say("still here")
            assert (await call.reply())[0] == "ok"
        await app.settled()
    assert ended == [call.call_sid]


@needs_redis
async def test_events_for_a_call_live_elsewhere_act_on_its_instance() -> None:
    prefix = f"tac-vx-{uuid.uuid4()}:"
    ended: list[str] = []
    async with (
        VoiceApp(session_store=_store(prefix)) as a,
        VoiceApp(session_store=_store(prefix)) as b,
    ):
        for app in (a, b):
            app.tac.on_message_ready(lambda message, session, memory: "ok")
            app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
        async with a.call() as call:
            await call.say("hello")
            await call.reply()

            # CLOSED for the live call reaches B: it never ends a live call's session.
            body = json.dumps(
                {
                    "eventType": "CONVERSATION_UPDATED",
                    "data": {"id": call.call_sid, "status": "CLOSED"},
                }
            ).encode()
            response = await _signed_webhook(b, body)
            assert response.status_code == 200
            await b.server.tasks.drain(5)
            assert ended == []
            assert await b.tac.get_session(call.call_sid) is not None

            # A call-end callback landing on B while the call is live on A: nothing ends yet.
            await b.channel.handle_twilio_provider_callback(
                {"CallSid": call.call_sid, "SessionStatus": "ended", "AccountSid": "AC1"}
            )
            assert ended == []

            # A handoff asked of B is carried out over A's WebSocket.
            handoff = json.dumps({"reason": "supervisor"})
            await _eventually_sent(lambda: b.channel.hang_up(call.call_sid, handoff_data=handoff))
            assert await call.frame() == {"type": "end", "handoffData": handoff}
        await a.settled()
    assert ended == [call.call_sid]


async def _signed_webhook(app: VoiceApp, body: bytes) -> httpx.Response:
    import hashlib

    url = f"{app.url}/webhook?bodySHA256={hashlib.sha256(body).hexdigest()}"
    headers = {
        "X-Twilio-Signature": app.sign(url),
        "I-Twilio-Idempotency-Token": uuid.uuid4().hex,
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient() as http:
        return await http.post(url, content=body, headers=headers)


async def _eventually_sent(send: Any, timeout: float = 5.0) -> None:
    """Retry until the call's instance has subscribed to its command channel."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await send()
            return
        except CallNotConnectedError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
