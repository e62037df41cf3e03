"""The Redis :class:`~tac.state.SessionStore` backend, shared by every instance of an app.

Keys (``prefix`` defaults to ``"tac:"``; every key has a TTL):

==============================  ===========================================================
``tac:session:{id}``            the session as JSON; TTL = idle TTL + ``margin_seconds``
``tac:session-deadlines``       sorted set: conversation id → idle deadline (ms, server time)
``tac:memory:{id}``             the ``once`` memory cache as JSON
``tac:handoff:{id}``            the pending handoff data
``tac:call:{call_sid}``         the conversation id a voice call belongs to
``tac:claim:{key}``             ``leased`` (TTL = 1 h while its event waits or runs) or
                                ``done`` (TTL = 24 h by default)
``tac:inbound:{id}``            an accepted webhook (hash: owner, state, body, token, …; 1 h)
``tac:inbound-leases``          sorted set: event id → lease deadline (ms, server time)
``tac:closed:{id}``             a conversation CLOSED before its session was created
==============================  ===========================================================

Every decision that several instances could race on runs as one Lua script, so it is atomic
on the server. Idle deadlines use the Redis server's clock (``TIME``), never an instance's, so
instances whose clocks disagree still agree on which sessions are due.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

try:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript
    from redis.exceptions import NoScriptError, ResponseError
except ImportError as exc:
    raise ImportError(
        'RedisSessionStore needs the redis package: pip install "opentac[redis]"'
    ) from exc

from tac.core.logging import get_logger
from tac.models.session import ConversationSession
from tac.state.base import DEFAULT_LEASE_SECONDS, DONE_TTL_SECONDS, ClaimResult
from tac.state.inbound import InboundEvent, InboundLog
from tac.state.live_calls import LiveCalls, RedisLiveCalls

_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack_command
except ImportError:  # redis-py packs (slower)
    _pack_command = None

__all__ = ["RedisSessionStore"]

logger = get_logger("state.redis")

DEFAULT_MARGIN_SECONDS = 3600.0
POOL_SIZE = 100
"""Connections of a :meth:`RedisSessionStore.from_url` store (redis-py's default)."""
POOL_WAIT_SECONDS = 5.0
"""How long a call waits for a free connection before failing (a webhook then gets 503)."""

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

# ARGV: prefix, id, ttl_ms.
_CLOSE = (
    _LUA_HELPERS
    + """
local data = end_one(ARGV[1], ARGV[2])
if not data then
  redis.call('SET', ARGV[1] .. 'closed:' .. ARGV[2], '1', 'PX', ARGV[3])
end
return data
"""
)

# KEYS: claim keys (ARGV[1] of them), inbound, leases[, session]. ARGV: n, id, owner, lease_ms,
# hold_ms, body, token, conversation id, keys as JSON.
_ACCEPT = (
    _LUA_HELPERS
    + """
local n = tonumber(ARGV[1])
for i = 1, n do
  local held = redis.call('GET', KEYS[i])
  if held then
    return {held}
  end
end
local hold = tonumber(ARGV[5])
for i = 1, n do
  redis.call('SET', KEYS[i], 'leased', 'PX', hold)
end
redis.call('HSET', KEYS[n + 1], 'owner', ARGV[3], 'state', 'q', 'body', ARGV[6],
  'token', ARGV[7], 'cid', ARGV[8], 'keys', ARGV[9])
redis.call('PEXPIRE', KEYS[n + 1], hold)
track(KEYS[n + 2], ARGV[2], tonumber(ARGV[4]), hold)
local session = false
if KEYS[n + 3] then
  session = redis.call('GET', KEYS[n + 3])
end
return {'claimed', session}
"""
)

# KEYS: inbound, session, deadlines. ARGV: owner, session JSON ('' = none), ttl_ms, keep_ms, cid.
_BEFORE_SEND = (
    _LUA_HELPERS
    + """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 's')
if ARGV[2] ~= '' then
  local keep = tonumber(ARGV[4])
  if redis.call('SET', KEYS[2], ARGV[2], 'XX', 'PX', keep) then
    track(KEYS[3], ARGV[5], tonumber(ARGV[3]), keep)
  end
end
return 1
"""
)

# ARGV: prefix, owner, done_ms, ttl_ms, keep_ms, then per event: id, n, n keys, cid, session.
_FINISH = (
    _LUA_HELPERS
    + """
local prefix, owner = ARGV[1], ARGV[2]
local done, ttl, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local leases = prefix .. 'inbound-leases'
local i = 6
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local ikey = prefix .. 'inbound:' .. id
  local held = redis.call('HGET', ikey, 'owner')
  if (not held) or held == owner then
    for k = 1, n do
      redis.call('SET', prefix .. 'claim:' .. ARGV[i + 1 + k], 'done', 'PX', done)
    end
    redis.call('DEL', ikey)
    redis.call('ZREM', leases, id)
    local cid, data = ARGV[i + n + 2], ARGV[i + n + 3]
    if data ~= '' then
      if redis.call('SET', prefix .. 'session:' .. cid, data, 'XX', 'PX', keep) then
        track(prefix .. 'session-deadlines', cid, ttl, keep)
      end
    end
  end
  i = i + n + 4
end
return 1
"""
)

# KEYS: leases. ARGV: prefix, owner, lease_ms, ids...
_RENEW = (
    _LUA_HELPERS
    + """
local deadline = now_ms() + tonumber(ARGV[3])
local lost = {}
for i = 4, #ARGV do
  if redis.call('HGET', ARGV[1] .. 'inbound:' .. ARGV[i], 'owner') == ARGV[2] then
    redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""
)

# KEYS: leases. ARGV: prefix, owner, lease_ms, limit.
_TAKE_OVER = (
    _LUA_HELPERS
    + """
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  local ikey = ARGV[1] .. 'inbound:' .. id
  local f = redis.call('HMGET', ikey, 'state', 'body', 'token', 'cid', 'keys')
  if not f[2] then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('HSET', ikey, 'owner', ARGV[2])
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
    table.insert(out, {f[1], f[2], f[3] or '', f[4] or '', f[5]})
  end
end
return out
"""
)

# KEYS: inbound, leases. ARGV: id, owner.
_GIVE_BACK = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'owner', '')
  redis.call('ZADD', KEYS[2], 'XX', 0, ARGV[1])
end
return 1
"""

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


class _Batch:
    """Runs the scripts called in one event-loop tick as one pipeline (one write, one read).

    Under load many webhooks are claimed, and many sends recorded, in the same tick. A round
    trip's fixed cost in the client (the pool, a socket write, a wakeup to read) outweighs a
    script's own, so sending them together cuts the CPU per script and keeps the connection
    pool small. Each call still is one script: atomic on its own, as when sent alone.

    One batch is on its way at a time: the calls made meanwhile go out together next, over
    the same pooled connection, so the busier the instance the larger the batches. They are
    packed by ``hiredis`` when it is installed (redis-py's own packing of a script's dozen
    arguments costs more than the rest of the round trip). A batch is not retried: a failed
    one fails its callers, which answer 503 (a webhook) or try again (a send record, done
    marks).
    """

    __slots__ = ("_calls", "_client", "_connection", "_sender")

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._calls: list[tuple[AsyncScript, list[Any], list[Any], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._connection: Any = None

    def __call__(
        self, script: AsyncScript, keys: list[Any], args: list[Any]
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        sender = self._sender
        if sender is not None and sender.get_loop() is not loop:  # its loop was closed
            self._calls, self._connection = [], None
            sender = None
        self._calls.append((script, keys, args, future))
        if sender is None:  # starts after this tick's other calls joined
            self._sender = loop.create_task(self._send_all())
        return future

    async def _send_all(self) -> None:
        """Send batches until none is waiting: the calls made while one batch is on its way
        go out together as the next, over the same connection."""
        pool = self._client.connection_pool
        try:
            self._connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            while self._calls:
                calls, self._calls = self._calls, []
                await self._run(calls)
        except BaseException as exc:
            calls, self._calls = self._calls, []
            for *_, future in calls:
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                elif not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._sender = None  # a call from now on starts a new sender
            connection, self._connection = self._connection, None
            if connection is not None:
                await pool.release(connection)

    async def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write; their replies (an error reply as its exception)."""
        connection = self._connection
        try:
            if _pack_command is None:
                packed = connection.pack_commands(commands)
            else:  # takes str, bytes and int arguments as they are
                packed = [_pack_command(command) for command in commands]
            await connection.send_packed_command(packed)
            results: list[Any] = []
            for _ in commands:
                try:
                    results.append(await connection.read_response())
                except ResponseError as exc:
                    results.append(exc)
        except BaseException:
            await connection.disconnect()  # replies may be left unread: reconnect next time
            raise
        return results

    async def _run(
        self, calls: list[tuple[AsyncScript, list[Any], list[Any], asyncio.Future[Any]]]
    ) -> None:
        def evalsha(call: tuple[AsyncScript, list[Any], list[Any], Any]) -> tuple[Any, ...]:
            script, keys, args, _ = call
            return ("EVALSHA", script.sha, len(keys), *keys, *args)

        try:
            results = await self._pipeline([evalsha(call) for call in calls])
            missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            if missing:  # Redis restarted (or flushed its scripts): load them, run those again
                scripts = {id(calls[i][0]): calls[i][0] for i in missing}.values()
                loads = [("SCRIPT", "LOAD", script.script) for script in scripts]
                again = await self._pipeline(loads + [evalsha(calls[i]) for i in missing])
                for i, result in zip(missing, again[len(loads) :], strict=True):
                    results[i] = result
        except asyncio.CancelledError:
            for *_, future in calls:
                future.cancel()
            raise
        except Exception as exc:
            for *_, future in calls:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), result in zip(calls, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


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
        self._close = client.register_script(_CLOSE)
        inbound = RedisInboundLog(self)
        self.inbound: InboundLog = inbound
        self.live_calls: LiveCalls = RedisLiveCalls(client, prefix, inbound.owner)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "tac:",
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
    ) -> RedisSessionStore:
        """A store over a new client for ``url`` (``redis://``, ``rediss://``, ``unix://``).

        The store owns that client: :meth:`aclose` closes it. Its pool holds up to
        ``POOL_SIZE`` connections (``?max_connections=N`` in the URL says otherwise); when
        all are busy, a call waits for one up to ``POOL_WAIT_SECONDS`` instead of failing.
        """
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=POOL_SIZE, timeout=POOL_WAIT_SECONDS
        )
        client: aioredis.Redis = aioredis.Redis.from_pool(pool)
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

    async def close_conversation(
        self, conversation_id: str, ttl_seconds: float
    ) -> ConversationSession | None:
        raw = await self._close(
            args=[self._prefix, conversation_id, _ms(ttl_seconds, "ttl_seconds")]
        )
        return None if raw is None else self._decode(raw)

    async def was_closed(self, conversation_id: str) -> bool:
        return bool(await self._client.exists(self._key("closed", conversation_id)))

    async def ping(self) -> None:
        """Raise if Redis cannot be reached (the readiness probe)."""
        await self._client.ping()

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
        await self.live_calls.aclose()
        if self._owns_client:
            self._owns_client = False
            await self._client.aclose()


HOLD_SECONDS = 3600.0
"""How long an accepted event (and its leased claims) waits for some instance to run it."""


class RedisInboundLog:
    """The durable :class:`~tac.state.inbound.InboundLog` of a :class:`RedisSessionStore`.

    Accepted events live in ``inbound:{id}`` hashes; their leases in a sorted set scored by
    deadline (server time). Each instance has an owner id; only the owner renews, records the
    send, and finishes an event, so an instance presumed dead cannot undo a takeover.
    """

    durable = True

    def __init__(self, store: RedisSessionStore) -> None:
        client = store._client
        self._store = store
        self._client = client
        self._prefix = store._prefix
        self._leases = f"{store._prefix}inbound-leases"
        self.owner = uuid.uuid4().hex[:16]
        self._accept = client.register_script(_ACCEPT)
        self._before_send = client.register_script(_BEFORE_SEND)
        self._finish = client.register_script(_FINISH)
        self._renew = client.register_script(_RENEW)
        self._take_over = client.register_script(_TAKE_OVER)
        self._give_back = client.register_script(_GIVE_BACK)
        self._hold_ms = _ms(HOLD_SECONDS, "hold")
        self._batch = _Batch(client)

    async def accept(
        self, event: InboundEvent, lease_seconds: float
    ) -> tuple[ClaimResult, ConversationSession | None]:
        prefix = self._prefix
        keys = [f"{prefix}claim:{key}" for key in event.keys]
        keys.append(f"{prefix}inbound:{event.id}")
        keys.append(self._leases)
        if event.conversation_id:
            keys.append(f"{prefix}session:{event.conversation_id}")
        result = await self._batch(
            self._accept,
            keys,
            [
                len(event.keys),
                event.id,
                self.owner,
                _ms(lease_seconds, "lease_seconds"),
                self._hold_ms,
                event.body,
                event.token or "",
                event.conversation_id or "",
                json.dumps(event.keys),
            ],
        )
        outcome = ClaimResult(_text(result[0]))
        raw = result[1] if len(result) > 1 else None
        session = self._store._decode(raw) if raw else None
        return outcome, session

    async def before_send(
        self, event: InboundEvent, session: ConversationSession | None, ttl_seconds: float
    ) -> bool:
        ttl_ms = _ms(ttl_seconds, "ttl_seconds")
        cid = session.conversation_id if session is not None else ""
        sent = await self._batch(
            self._before_send,
            [
                f"{self._prefix}inbound:{event.id}",
                f"{self._prefix}session:{cid}",
                self._store._deadlines_key,
            ],
            [
                self.owner,
                session.model_dump_json() if session is not None else "",
                ttl_ms,
                ttl_ms + self._store._margin_ms,
                cid,
            ],
        )
        return bool(int(sent))

    async def finish(
        self,
        events: Sequence[tuple[InboundEvent, ConversationSession | None]],
        ttl_seconds: float,
        done_ttl_seconds: float = DONE_TTL_SECONDS,
    ) -> None:
        if not events:
            return
        ttl_ms = _ms(ttl_seconds, "ttl_seconds")
        args: list[Any] = [
            self._prefix,
            self.owner,
            _ms(done_ttl_seconds, "done_ttl_seconds"),
            ttl_ms,
            ttl_ms + self._store._margin_ms,
        ]
        for event, session in events:
            args += [event.id, len(event.keys), *event.keys]
            if session is None:
                args += ["", ""]
            else:
                args += [session.conversation_id, session.model_dump_json()]
        await self._batch(self._finish, [], args)

    async def release(self, event: InboundEvent) -> None:
        await self._give_back(
            keys=[f"{self._prefix}inbound:{event.id}", self._leases], args=[event.id, self.owner]
        )

    async def renew(self, events: Sequence[InboundEvent], lease_seconds: float) -> list[str]:
        if not events:
            return []
        lost = await self._renew(
            keys=[self._leases],
            args=[
                self._prefix,
                self.owner,
                _ms(lease_seconds, "lease_seconds"),
                *(e.id for e in events),
            ],
        )
        return [_text(item) for item in lost]

    async def take_over(self, lease_seconds: float, limit: int = 50) -> list[InboundEvent]:
        rows = await self._take_over(
            keys=[self._leases],
            args=[self._prefix, self.owner, _ms(lease_seconds, "lease_seconds"), limit],
        )
        events = []
        for state, body, token, cid, keys in rows:
            events.append(
                InboundEvent(
                    keys=tuple(json.loads(_text(keys))),
                    body=_text(body),
                    token=_text(token) or None,
                    conversation_id=_text(cid) or None,
                    sending=_text(state) == "s",
                )
            )
        return events
