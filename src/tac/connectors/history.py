"""Conversation history for agents: bounded, per conversation, ended with the session.

A :class:`ConversationHistory` keeps the messages of each conversation as JSON objects
(``{"role": "user" | "assistant" | ..., "content": ...}``; richer items, such as the OpenAI
Agents SDK's, are kept as they are). Two backends: :class:`InMemoryConversationHistory` (one
process) and :class:`RedisConversationHistory` (shared by instances). Both keep at most
``max_items`` per conversation (the oldest go first) and forget a conversation idle for
``ttl_seconds``; connectors also :meth:`~ConversationHistory.clear` it when its session ends.

On a voice interrupt, :meth:`~ConversationHistory.trim_last_reply` cuts the last reply down to
what the caller heard (ConversationRelay's ``utteranceUntilInterrupt``), so the next model
call sees the conversation as the caller lived it.
"""

from __future__ import annotations

import copy
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = [
    "ConversationHistory",
    "HistoryItem",
    "InMemoryConversationHistory",
    "RedisConversationHistory",
    "apply_heard",
    "create_history",
]

HistoryItem = dict[str, Any]
"""One message or item of a conversation, as a JSON object."""

DEFAULT_MAX_ITEMS = 100
DEFAULT_TTL_SECONDS = 86400.0
DEFAULT_MAX_CONVERSATIONS = 10_000


@runtime_checkable
class ConversationHistory(Protocol):
    """Where connectors keep each conversation's messages (bounded; ended with the session)."""

    max_items: int

    async def get(self, conversation_id: str) -> list[HistoryItem]:
        """The conversation's items, oldest first (a copy; empty when unknown)."""
        ...

    async def append(self, conversation_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Add items at the end, dropping the oldest beyond ``max_items``."""
        ...

    async def trim_last_reply(self, conversation_id: str, heard: str) -> bool:
        """Cut the reply after the last user message down to ``heard`` (see :func:`apply_heard`).

        ``False`` when there is no reply to trim.
        """
        ...

    async def clear(self, conversation_id: str) -> None:
        """Forget the conversation."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


# -- trimming -------------------------------------------------------------------------------


def _is_reply(item: Mapping[str, Any]) -> bool:
    return item.get("role") == "assistant" and item.get("type", "message") == "message"


def _key(item: Mapping[str, Any]) -> str:
    """Where an item keeps its content (Agent Framework says ``contents``)."""
    return "contents" if "contents" in item and "content" not in item else "content"


def _text_of(item: Mapping[str, Any]) -> str:
    content = item.get(_key(item))
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _with_text(item: Mapping[str, Any], text: str) -> HistoryItem:
    new = copy.deepcopy(dict(item))
    key = _key(item)
    content = new.get(key)
    if isinstance(content, list):
        parts: list[Any] = []
        placed = False
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                if not placed:
                    parts.append({**part, "text": text})
                    placed = True
                continue
            parts.append(part)
        if not placed:
            parts.append({"type": "output_text" if key == "content" else "text", "text": text})
        new[key] = parts
    else:
        new[key] = text
    return new


def _is_prompt(item: Mapping[str, Any]) -> bool:
    """A user message, unless it only carries tool results (the Bedrock Converse, Strands and
    Anthropic shape: ``{"role": "user", "content": [{"toolResult": …}]}``)."""
    if item.get("role") != "user":
        return False
    content = item.get("content")
    if not isinstance(content, list) or not content:
        return True
    return not all(
        isinstance(part, Mapping) and ("toolResult" in part or part.get("type") == "tool_result")
        for part in content
    )


def _squash(text: str) -> str:
    return " ".join(text.split())


def apply_heard(items: Sequence[Mapping[str, Any]], heard: str) -> list[HistoryItem] | None:
    """``items`` with the last reply cut to what the caller heard; ``None`` if nothing changes.

    The reply is every assistant message after the last user message (text spoken before and
    after a tool call are two messages; a user message holding only tool results is part of the
    reply). Messages wholly heard are kept; the first one heard
    only in part keeps the heard part; later ones are dropped, as is everything the caller
    never heard. Tool calls and their results stay: they happened.
    """
    start = 0
    for index in range(len(items) - 1, -1, -1):
        if _is_prompt(items[index]):
            start = index + 1
            break
    replies = [i for i in range(start, len(items)) if _is_reply(items[i])]
    if not replies:
        return None
    remaining = _squash(heard)
    result: list[HistoryItem] = [dict(item) for item in items[:start]]
    changed = False
    exhausted = False
    for index in range(start, len(items)):
        item = items[index]
        if not _is_reply(item):
            result.append(dict(item))
            continue
        if exhausted:
            changed = True
            _append_calls(result, item)
            continue
        said = _squash(_text_of(item))
        if said and remaining.startswith(said):
            remaining = remaining[len(said) :].lstrip()
            result.append(dict(item))
            continue
        changed = True
        exhausted = True
        if remaining:
            result.append(_with_text(item, remaining))
            remaining = ""
        else:
            _append_calls(result, item)
    return result if changed else None


def _append_calls(result: list[HistoryItem], item: Mapping[str, Any]) -> None:
    """Keep what an unheard reply holds besides text (a Converse ``toolUse``): it happened."""
    content = item.get(_key(item))
    if not isinstance(content, list):
        return
    calls = [p for p in content if not (isinstance(p, Mapping) and isinstance(p.get("text"), str))]
    if calls:
        result.append({**copy.deepcopy(dict(item)), _key(item): copy.deepcopy(calls)})


# -- in-process backend ---------------------------------------------------------------------


class InMemoryConversationHistory:
    """History in this process's memory: ``max_items`` per conversation, at most
    ``max_conversations`` conversations (least recently used dropped first), each forgotten
    after ``ttl_seconds`` without use."""

    def __init__(
        self,
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_items < 1 or max_conversations < 1 or ttl_seconds <= 0:
            raise ValueError("max_items, max_conversations and ttl_seconds must be positive")
        self.max_items = max_items
        self.ttl_seconds = ttl_seconds
        self.max_conversations = max_conversations
        self._clock = clock
        self._items: OrderedDict[str, tuple[deque[str], float]] = OrderedDict()

    def __len__(self) -> int:
        """Conversations currently held (expired ones are dropped first)."""
        self._expire()
        return len(self._items)

    def _expire(self) -> None:
        now = self._clock()
        while self._items:
            key, (_, deadline) = next(iter(self._items.items()))
            if deadline > now:
                break
            del self._items[key]

    def _touch(self, conversation_id: str) -> deque[str]:
        self._expire()
        entry = self._items.pop(conversation_id, None)
        items = entry[0] if entry is not None else deque(maxlen=self.max_items)
        self._items[conversation_id] = (items, self._clock() + self.ttl_seconds)
        while len(self._items) > self.max_conversations:
            self._items.popitem(last=False)
        return items

    async def get(self, conversation_id: str) -> list[HistoryItem]:
        self._expire()
        entry = self._items.get(conversation_id)
        if entry is None:
            return []
        return [json.loads(raw) for raw in entry[0]]

    async def append(self, conversation_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        encoded = [_encode(item) for item in items]
        self._touch(conversation_id).extend(encoded)

    async def trim_last_reply(self, conversation_id: str, heard: str) -> bool:
        self._expire()
        entry = self._items.get(conversation_id)
        if entry is None:
            return False
        trimmed = apply_heard([json.loads(raw) for raw in entry[0]], heard)
        if trimmed is None:
            return False
        entry[0].clear()
        entry[0].extend(_encode(item) for item in trimmed)
        return True

    async def clear(self, conversation_id: str) -> None:
        self._items.pop(conversation_id, None)

    async def aclose(self) -> None:
        self._items.clear()


def _encode(item: Mapping[str, Any]) -> str:
    if not isinstance(item, Mapping):
        raise TypeError(f"history items must be JSON objects, got {type(item).__name__}")
    return json.dumps(dict(item), ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models inside framework items
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# -- Redis backend --------------------------------------------------------------------------


class RedisConversationHistory:
    """History in Redis, shared by every instance: one list per conversation at
    ``{prefix}{conversation_id}`` capped at ``max_items`` (``LTRIM``) and expiring
    ``ttl_seconds`` after its last write. Trimming after an interrupt is an optimistic
    transaction (``WATCH``), so a concurrent append is never lost."""

    def __init__(
        self,
        client: Any,
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        prefix: str = "tac:history:",
    ) -> None:
        if max_items < 1 or ttl_seconds <= 0:
            raise ValueError("max_items and ttl_seconds must be positive")
        self._redis = client
        self.max_items = max_items
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisConversationHistory:
        """A history on the Redis at ``url`` (nothing connects until first use)."""
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:
            raise ImportError(
                'RedisConversationHistory needs the redis package: pip install "opentac[redis]"'
            ) from exc
        return cls(aioredis.Redis.from_url(url, decode_responses=True), **options)

    def _key(self, conversation_id: str) -> str:
        return self.prefix + conversation_id

    async def get(self, conversation_id: str) -> list[HistoryItem]:
        raw = await self._redis.lrange(self._key(conversation_id), 0, -1)
        return [json.loads(entry) for entry in raw]

    async def append(self, conversation_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        if not items:
            return
        key = self._key(conversation_id)
        encoded = [_encode(item) for item in items]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *encoded)
            pipe.ltrim(key, -self.max_items, -1)
            pipe.pexpire(key, self.ttl_ms)
            await pipe.execute()

    async def trim_last_reply(self, conversation_id: str, heard: str) -> bool:
        from redis.exceptions import WatchError

        key = self._key(conversation_id)
        while True:
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.lrange(key, 0, -1)
                    trimmed = apply_heard([json.loads(entry) for entry in raw], heard)
                    if trimmed is None:
                        await pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.delete(key)
                    if trimmed:
                        pipe.rpush(key, *[_encode(item) for item in trimmed])
                        pipe.pexpire(key, self.ttl_ms)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def clear(self, conversation_id: str) -> None:
        await self._redis.delete(self._key(conversation_id))

    async def aclose(self) -> None:
        await self._redis.aclose()


def create_history(tac: TAC, *, max_items: int = DEFAULT_MAX_ITEMS) -> ConversationHistory:
    """The history that matches the app's state store: Redis when ``TAC_STATE_URL`` names one,
    else in-process. Either forgets a conversation idle for ``TAC_SESSION_TTL_SECONDS``."""
    ttl = tac.config.session_ttl_seconds
    url = tac.config.state_url
    if url:
        return RedisConversationHistory.from_url(url, max_items=max_items, ttl_seconds=ttl)
    return InMemoryConversationHistory(max_items=max_items, ttl_seconds=ttl)
