"""What a callback changes on the session lasts to the next turn, on every store backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from messaging_helpers import eventually
from tests._redis import REDIS_URL, redis_listening

from tac.channels import SMSChannel
from tac.models.session import ConversationSession
from tac.state import InMemorySessionStore, SessionStore

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield InMemorySessionStore()
        return
    if not redis_listening():
        pytest.skip("no Redis on 127.0.0.1:6379 (make test starts one)")
    from tac.state.redis import RedisSessionStore

    redis_store = RedisSessionStore.from_url(REDIS_URL, prefix=f"tac-msg-{uuid.uuid4().hex}:")
    yield redis_store
    await redis_store.aclose()


async def test_metadata_set_in_the_callback_reaches_the_next_turn(start_app, store) -> None:
    async def agent(message: str, session: ConversationSession, memory: Any) -> str:
        count = int(session.metadata.get("count", 0)) + 1
        session.metadata["count"] = count
        session.metadata.setdefault("said", []).append(message)
        return f"turn {count}"

    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent, session_store=store)
    customer = app.sandbox.customer("sms")
    for n in (1, 2, 3):
        assert (await customer.ask(f"m{n}", timeout=5)).text == f"turn {n}"
    stored = await store.get_session(customer.conversation_id)
    assert stored is not None
    assert stored.metadata["said"] == ["m1", "m2", "m3"]
    assert stored.metadata["channel_id"]  # what the channel itself records is kept too


async def test_a_session_ended_during_the_callback_stays_ended(start_app, store) -> None:
    async def agent(message: str, session: ConversationSession, memory: Any) -> str:
        session.metadata["last"] = message
        if message == "bye":
            await app.tac.end_session(session.conversation_id, reason="handoff")
        return f"ok {message}"

    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent, session_store=store)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("hello", timeout=5)).text == "ok hello"
    assert (await customer.ask("bye", timeout=5)).text == "ok bye"
    await eventually(lambda: app.ended == [customer.conversation_id])
    assert await store.get_session(customer.conversation_id) is None
    assert await store.session_count() == 0
    assert await store.pop_expired_sessions() == []
