"""What only the Redis backend promises: key layout, TTLs on every key, server-side clock,
and who closes the client."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest
import redis.asyncio as aioredis
from _store_backends import REDIS_URL

from tac.models.session import Channel, ConversationSession
from tac.state import ClaimResult
from tac.state.inbound import InboundEvent
from tac.state.redis import RedisSessionStore

pytestmark = pytest.mark.integration


def make_session(conversation_id: str = "CH1", **fields: object) -> ConversationSession:
    return ConversationSession(conversation_id=conversation_id, channel=Channel.VOICE, **fields)


async def test_every_key_is_readable_and_has_a_ttl(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisSessionStore(redis_client, prefix=redis_prefix, margin_seconds=600)
    await store.create_session(make_session(call_sid="CA1"), 300)
    await store.link_call("CA1", "CH1", 300)
    await store.set_cached_memory("CH1", {"a": 1}, 300)
    await store.set_pending_handoff("CH1", "{}", 300)
    await store.claim("leased-key")
    await store.claim("done-key")
    await store.complete("done-key")

    keys = sorted([key async for key in redis_client.scan_iter(match=f"{redis_prefix}*")])
    assert [key.removeprefix(redis_prefix) for key in keys] == [
        "call:CA1",
        "claim:done-key",
        "claim:leased-key",
        "handoff:CH1",
        "memory:CH1",
        "session-deadlines",
        "session:CH1",
    ]
    for key in keys:
        assert await redis_client.pttl(key) > 0, key
    session_ttl = await redis_client.pttl(f"{redis_prefix}session:CH1")
    assert 300_000 < session_ttl <= 900_000  # idle TTL plus the margin
    assert await redis_client.pttl(f"{redis_prefix}claim:done-key") > 23 * 3600 * 1000
    assert await redis_client.get(f"{redis_prefix}claim:done-key") == "done"
    assert await redis_client.get(f"{redis_prefix}claim:leased-key") == "leased"
    stored = ConversationSession.model_validate_json(
        await redis_client.get(f"{redis_prefix}session:CH1")
    )
    assert stored.call_sid == "CA1"


async def test_deadlines_use_the_server_clock(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisSessionStore(redis_client, prefix=redis_prefix)
    seconds, micros = await redis_client.time()
    before_ms = seconds * 1000 + micros // 1000
    await store.create_session(make_session(), 120)
    score = await redis_client.zscore(f"{redis_prefix}session-deadlines", "CH1")
    assert score is not None
    assert before_ms + 120_000 <= score < before_ms + 180_000


async def test_redis_drops_a_session_no_sweeper_ended(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    store = RedisSessionStore(redis_client, prefix=redis_prefix, margin_seconds=0.05)
    await store.create_session(make_session(), 0.05)
    await asyncio.sleep(0.2)
    assert await store.get_session("CH1") is None
    assert await store.pop_expired_sessions() == []
    assert await store.session_count() == 0
    assert [key async for key in redis_client.scan_iter(match=f"{redis_prefix}*")] == []


async def test_an_unreadable_expired_session_is_dropped_with_a_warning(
    redis_client: aioredis.Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisSessionStore(redis_client, prefix=redis_prefix)
    await store.create_session(make_session("CHgood"), 0.05)
    await redis_client.set(f"{redis_prefix}session:CHbad", "{not json", px=60_000)
    await redis_client.zadd(f"{redis_prefix}session-deadlines", {"CHbad": 0})
    await asyncio.sleep(0.12)
    with caplog.at_level(logging.WARNING, logger="tac.state.redis"):
        expired = await store.pop_expired_sessions()
    assert [s.conversation_id for s in expired] == ["CHgood"]
    assert "could not be read" in caplog.text
    assert await redis_client.exists(f"{redis_prefix}session:CHbad") == 0


async def test_ttls_must_be_finite(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    store = RedisSessionStore(redis_client, prefix=redis_prefix)
    with pytest.raises(ValueError, match="ttl_seconds"):
        await store.save_session(make_session(), math.inf)
    with pytest.raises(ValueError, match="lease_seconds"):
        await store.claim("k", lease_seconds=math.nan)


@pytest.mark.parametrize("packer", ["hiredis", "redis-py"])
async def test_claims_of_one_tick_share_a_round_trip_and_survive_a_script_flush(
    redis_client: aioredis.Redis,
    redis_prefix: str,
    packer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if packer == "redis-py":  # as without hiredis installed
        monkeypatch.setattr("tac.state.redis._pack_command", None)
    name = f"batch-{redis_prefix.split(':')[1]}"
    store = RedisSessionStore.from_url(f"{REDIS_URL}?client_name={name}", prefix=redis_prefix)
    try:
        await store.create_session(make_session("CHb"), 60)
        events = [
            InboundEvent(keys=(f"e{n}", f"t{n}"), body="{}", conversation_id="CHb")
            for n in range(40)
        ]
        twice = InboundEvent(keys=("e0", "t-other"), body="{}", conversation_id="CHb")
        await redis_client.script_flush()  # the first pipeline meets NOSCRIPT and loads them
        answers = await asyncio.gather(*(store.inbound.accept(e, 5) for e in [*events, twice]))
        assert [result for result, _ in answers] == [ClaimResult.CLAIMED] * 40 + [
            ClaimResult.LEASED
        ]
        assert all(s is not None and s.conversation_id == "CHb" for _, s in answers[:40])
        assert answers[40][1] is None
        sent = await asyncio.gather(*(store.inbound.before_send(e, None, 60) for e in events))
        assert sent == [True] * 40
        assert (await _client_names(redis_client)).count(name) == 1  # one connection for all
    finally:
        await store.aclose()


async def test_a_connection_redis_closed_is_replaced_before_a_batch(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    name = f"killed-{redis_prefix.split(':')[1]}"
    store = RedisSessionStore.from_url(f"{REDIS_URL}?client_name={name}", prefix=redis_prefix)
    try:
        first = InboundEvent(keys=("k1",), body="{}")
        assert (await store.inbound.accept(first, 5))[0] is ClaimResult.CLAIMED
        for entry in await redis_client.client_list():
            if entry.get("name") == name:
                await redis_client.client_kill_filter(_id=entry["id"])
        second = InboundEvent(keys=("k2",), body="{}")
        assert (await store.inbound.accept(second, 5))[0] is ClaimResult.CLAIMED
    finally:
        await store.aclose()


async def test_a_burst_larger_than_the_pool_waits_for_connections(redis_prefix: str) -> None:
    store = RedisSessionStore.from_url(f"{REDIS_URL}?max_connections=3", prefix=redis_prefix)
    try:
        await store.create_session(make_session("CHp"), 60)
        found = await asyncio.gather(*(store.get_session("CHp") for _ in range(200)))
        assert all(s is not None for s in found)
    finally:
        await store.aclose()


async def _client_names(observer: aioredis.Redis) -> list[str]:
    return [entry.get("name", "") for entry in await observer.client_list()]


async def _wait_until_gone(observer: aioredis.Redis, name: str) -> bool:
    for _ in range(100):
        if name not in await _client_names(observer):
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_given_client_is_never_closed(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    name = f"given-{redis_prefix.split(':')[1]}"
    given = aioredis.Redis.from_url(REDIS_URL, client_name=name, decode_responses=True)
    try:
        store = RedisSessionStore(given, prefix=redis_prefix)
        await store.link_call("CA1", "CH1", 60)
        await store.aclose()
        assert name in await _client_names(redis_client)
        assert await given.get(f"{redis_prefix}call:CA1") == "CH1"
    finally:
        await given.aclose()


async def test_from_url_owns_and_closes_its_client(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    name = f"owned-{redis_prefix.split(':')[1]}"
    store = RedisSessionStore.from_url(f"{REDIS_URL}?client_name={name}", prefix=redis_prefix)
    await store.link_call("CA1", "CH1", 60)
    assert await store.conversation_for_call("CA1") == "CH1"
    assert name in await _client_names(redis_client)
    await store.aclose()
    assert await _wait_until_gone(redis_client, name)
    await store.aclose()  # closing twice is harmless
