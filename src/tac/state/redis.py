"""The Redis :class:`~tac.state.SessionStore` backend, shared by every instance of an app.

Keys (``prefix`` defaults to ``"tac:"``; every key has a TTL):

==============================  ===========================================================
``tac:session:{id}``            the session as JSON; TTL = idle TTL + ``margin_seconds``
``tac:session-deadlines``       sorted set: conversation id → idle deadline (ms, server time)
``tac:memory:{id}``             the ``once`` memory cache as JSON
``tac:handoff:{id}``            the pending handoff data
``tac:call:{call_sid}``         the conversation id a voice call belongs to
``tac:claim:{key}``             ``leased`` (TTL = lease) or ``done`` (TTL = 24 h by default)
==============================  ===========================================================

Every decision that several instances could race on runs as one Lua script, so it is atomic
on the server. Idle deadlines use the Redis server's clock (``TIME``), never an instance's, so
instances whose clocks disagree still agree on which sessions are due.
"""

from __future__ import annotations

import json
import math
from typing import Any

try:
    import redis.asyncio as aioredis
except ImportError as exc:
    raise ImportError(
        'RedisSessionStore needs the redis package: pip install "opentac[redis]"'
    ) from exc

from tac.core.logging import get_logger
from tac.models.session import ConversationSession
from tac.state.base import DEFAULT_LEASE_SECONDS, DONE_TTL_SECONDS, ClaimResult

__all__ = ["RedisSessionStore"]

logger = get_logger("state.redis")

DEFAULT_MARGIN_SECONDS = 3600.0

# Helpers shared by the scripts. ``prefix`` is passed in ARGV because the sweeper's script
# reaches keys it only learns from the sorted set (so Redis Cluster is not supported).
_LUA_HELPERS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function track(zkey, id, ttl_ms, keep_ms)
  redis.call('ZADD', zkey, now_ms() + ttl_ms, id)
  if redis.call('PTTL', zkey) < keep_ms then
    redis.call('PEXPIRE', zkey, keep_ms)
  end
end

local function end_one(prefix, id)
  local skey = prefix .. 'session:' .. id
  local data = redis.call('GET', skey)
  redis.call('ZREM', prefix .. 'session-deadlines', id)
  redis.call('DEL', skey, prefix .. 'memory:' .. id, prefix .. 'handoff:' .. id)
  if not data then
    return false
  end
  local ok, decoded = pcall(cjson.decode, data)
  if ok and type(decoded) == 'table' and type(decoded['call_sid']) == 'string' then
    local ckey = prefix .. 'call:' .. decoded['call_sid']
    if redis.call('GET', ckey) == id then
      redis.call('DEL', ckey)
    end
  end
  return data
end
"""

# KEYS: session, deadlines. ARGV: id, json, ttl_ms, keep_ms.
_CREATE = (
    _LUA_HELPERS
    + """
local keep = tonumber(ARGV[4])
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', keep) then
  track(KEYS[2], ARGV[1], tonumber(ARGV[3]), keep)
  return {1, ARGV[2]}
end
return {0, redis.call('GET', KEYS[1])}
"""
)

# KEYS: session, deadlines. ARGV: id, json, ttl_ms, keep_ms.
_SAVE = (
    _LUA_HELPERS
    + """
local keep = tonumber(ARGV[4])
if not redis.call('SET', KEYS[1], ARGV[2], 'XX', 'PX', keep) then
  return 0
end
track(KEYS[2], ARGV[1], tonumber(ARGV[3]), keep)
return 1
"""
)

# ARGV: prefix, id.
_END = (
    _LUA_HELPERS
    + """
return end_one(ARGV[1], ARGV[2])
"""
)

# KEYS: deadlines. ARGV: prefix, limit.
_POP_EXPIRED = (
    _LUA_HELPERS
    + """
local limit = tonumber(ARGV[2])
local now = now_ms()
local out = {}
while #out < limit do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - #out)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local data = end_one(ARGV[1], id)
    if data then
      table.insert(out, id)
      table.insert(out, data)
    end
  end
end
return out
"""
)

# KEYS: claim. ARGV: lease_ms.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then
  return held
end
redis.call('SET', KEYS[1], 'leased', 'PX', ARGV[1])
return 'claimed'
"""

# KEYS: claim.
_RELEASE = """
if redis.call('GET', KEYS[1]) == 'leased' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: any.
_GETDEL = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('DEL', KEYS[1])
end
return value
"""


def _ms(seconds: float, name: str) -> int:
    """Whole milliseconds for a TTL, at least 1 (a TTL of zero means "already expired")."""
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {seconds!r}")
    return max(1, math.ceil(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisSessionStore:
    """A :class:`~tac.state.SessionStore` in Redis, for several instances of one app.

    ``RedisSessionStore(client)`` uses a ``redis.asyncio.Redis`` client you own and never
    closes it; :meth:`from_url` creates a client that :meth:`aclose` closes. Nothing connects
    before the first call. A session key lives ``margin_seconds`` past its idle deadline, so
    Redis drops a session that no sweeper ends; :meth:`pop_expired_sessions` normally ends it
    first. Sessions come back as copies: save a session after changing it. Needs Redis 5 or
    later (not Cluster); errors from Redis (``redis.exceptions.RedisError``) propagate.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "tac:",
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
    ) -> None:
        self._client = client
        self._owns_client = False
        self._prefix = prefix
        self._margin_ms = _ms(margin_seconds, "margin_seconds")
        self._deadlines_key = f"{prefix}session-deadlines"
        self._create = client.register_script(_CREATE)
        self._save = client.register_script(_SAVE)
        self._end = client.register_script(_END)
        self._pop_expired = client.register_script(_POP_EXPIRED)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._getdel = client.register_script(_GETDEL)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "tac:",
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
    ) -> RedisSessionStore:
        """A store over a new client for ``url`` (``redis://``, ``rediss://``, ``unix://``).

        The store owns that client: :meth:`aclose` closes it.
        """
        client: aioredis.Redis = aioredis.Redis.from_url(url, decode_responses=True)
        store = cls(client, prefix=prefix, margin_seconds=margin_seconds)
        store._owns_client = True
        return store

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def _decode(self, raw: Any) -> ConversationSession:
        return ConversationSession.model_validate_json(_text(raw))

    # -- sessions ----------------------------------------------------------------------

    async def get_session(self, conversation_id: str) -> ConversationSession | None:
        raw = await self._client.get(self._key("session", conversation_id))
        return None if raw is None else self._decode(raw)

    async def create_session(
        self, session: ConversationSession, ttl_seconds: float
    ) -> tuple[ConversationSession, bool]:
        ttl_ms = _ms(ttl_seconds, "ttl_seconds")
        data = session.model_dump_json()
        created, raw = await self._create(
            keys=[self._key("session", session.conversation_id), self._deadlines_key],
            args=[session.conversation_id, data, ttl_ms, ttl_ms + self._margin_ms],
        )
        if int(created):
            return session, True
        return self._decode(raw), False

    async def save_session(self, session: ConversationSession, ttl_seconds: float) -> bool:
        ttl_ms = _ms(ttl_seconds, "ttl_seconds")
        saved = await self._save(
            keys=[self._key("session", session.conversation_id), self._deadlines_key],
            args=[
                session.conversation_id,
                session.model_dump_json(),
                ttl_ms,
                ttl_ms + self._margin_ms,
            ],
        )
        return bool(int(saved))

    async def end_session(self, conversation_id: str) -> ConversationSession | None:
        raw = await self._end(args=[self._prefix, conversation_id])
        return None if raw is None else self._decode(raw)

    async def pop_expired_sessions(self, limit: int = 100) -> list[ConversationSession]:
        if limit < 1:
            return []
        flat = await self._pop_expired(keys=[self._deadlines_key], args=[self._prefix, limit])
        sessions: list[ConversationSession] = []
        for conversation_id, raw in zip(flat[::2], flat[1::2], strict=True):
            try:
                sessions.append(self._decode(raw))
            except ValueError:
                logger.warning(
                    "dropped an expired session that could not be read",
                    extra={"tac": {"conversation_id": _text(conversation_id)}},
                    exc_info=True,
                )
        return sessions

    async def session_count(self) -> int:
        return int(await self._client.zcard(self._deadlines_key))

    # -- calls -------------------------------------------------------------------------

    async def link_call(self, call_sid: str, conversation_id: str, ttl_seconds: float) -> None:
        await self._client.set(
            self._key("call", call_sid), conversation_id, px=_ms(ttl_seconds, "ttl_seconds")
        )

    async def conversation_for_call(self, call_sid: str) -> str | None:
        raw = await self._client.get(self._key("call", call_sid))
        return None if raw is None else _text(raw)

    async def unlink_call(self, call_sid: str) -> None:
        await self._client.delete(self._key("call", call_sid))

    # -- memory cache ------------------------------------------------------------------

    async def get_cached_memory(self, conversation_id: str) -> dict[str, Any] | None:
        raw = await self._client.get(self._key("memory", conversation_id))
        if raw is None:
            return None
        value = json.loads(_text(raw))
        return value if isinstance(value, dict) else None

    async def set_cached_memory(
        self, conversation_id: str, memory: dict[str, Any], ttl_seconds: float
    ) -> None:
        """Cache ``memory`` (JSON-serialisable, as the core produces it)."""
        await self._client.set(
            self._key("memory", conversation_id),
            json.dumps(memory, separators=(",", ":")),
            px=_ms(ttl_seconds, "ttl_seconds"),
        )

    async def clear_cached_memory(self, conversation_id: str) -> None:
        await self._client.delete(self._key("memory", conversation_id))

    # -- idempotency -------------------------------------------------------------------

    async def claim(self, key: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> ClaimResult:
        result = await self._claim(
            keys=[self._key("claim", key)], args=[_ms(lease_seconds, "lease_seconds")]
        )
        return ClaimResult(_text(result))

    async def complete(self, key: str, ttl_seconds: float = DONE_TTL_SECONDS) -> None:
        await self._client.set(
            self._key("claim", key), ClaimResult.DONE.value, px=_ms(ttl_seconds, "ttl_seconds")
        )

    async def release(self, key: str) -> None:
        await self._release(keys=[self._key("claim", key)])

    # -- handoffs ----------------------------------------------------------------------

    async def set_pending_handoff(
        self, conversation_id: str, handoff_data: str, ttl_seconds: float
    ) -> None:
        await self._client.set(
            self._key("handoff", conversation_id),
            handoff_data,
            px=_ms(ttl_seconds, "ttl_seconds"),
        )

    async def pop_pending_handoff(self, conversation_id: str) -> str | None:
        raw = await self._getdel(keys=[self._key("handoff", conversation_id)])
        return None if raw is None else _text(raw)

    # -- housekeeping ------------------------------------------------------------------

    async def purge_expired(self) -> int:
        """Nothing to do: Redis expires claims, caches, links and handoffs by their TTL."""
        return 0

    async def aclose(self) -> None:
        """Close the client if this store created it (:meth:`from_url`)."""
        if self._owns_client:
            self._owns_client = False
            await self._client.aclose()
