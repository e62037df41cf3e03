"""Store fixtures: every backend, and for Redis two "instances" sharing one keyspace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from _store_backends import REDIS_URL, Stores
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tac.state import InMemorySessionStore, SessionStore
from tac.state.redis import RedisSessionStore

SKIP_REASON = (
    "Redis is not reachable at 127.0.0.1:6379 (`make test` starts it with "
    "scripts/ensure-services.sh)"
)

_reachable: bool | None = None


async def _redis_reachable() -> bool:
    global _reachable
    if _reachable is None:
        probe = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
        try:
            _reachable = bool(await probe.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            _reachable = False
        finally:
            await probe.aclose()
    return _reachable


async def _delete_prefix(prefix: str) -> None:
    cleaner = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in cleaner.scan_iter(match=f"{prefix}*")]
        if keys:
            await cleaner.delete(*keys)
    finally:
        await cleaner.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A fresh key prefix on the local Redis, deleted afterwards (skips if Redis is down)."""
    if not await _redis_reachable():
        pytest.skip(SKIP_REASON)
    prefix = f"tactest:{uuid.uuid4().hex}:"
    yield prefix
    await _delete_prefix(prefix)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    """A text client on the local Redis (skips if Redis is down)."""
    if not await _redis_reachable():
        pytest.skip(SKIP_REASON)
    client: aioredis.Redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    """``a`` and ``b`` share state; for Redis they are two stores over separate clients."""
    if request.param == "memory":
        store = InMemorySessionStore()
        yield Stores("memory", store, store)
        await store.aclose()
        return
    if not await _redis_reachable():
        pytest.skip(SKIP_REASON)
    prefix = f"tactest:{uuid.uuid4().hex}:"
    # One client decodes replies and one does not: the store must work with either.
    text = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    raw = aioredis.Redis.from_url(REDIS_URL)
    try:
        yield Stores(
            "redis",
            RedisSessionStore(text, prefix=prefix),
            RedisSessionStore(raw, prefix=prefix),
        )
    finally:
        await text.aclose()
        await raw.aclose()
        await _delete_prefix(prefix)


@pytest.fixture
def store(stores: Stores) -> SessionStore:
    return stores.a
