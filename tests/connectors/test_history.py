"""ConversationHistory: bounded, expiring, trimmed to what the caller heard (both backends)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tac.connectors import (
    ConversationHistory,
    InMemoryConversationHistory,
    RedisConversationHistory,
)
from tac.connectors.history import apply_heard
from tests._redis import REDIS_URL, redis_listening


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def reply_item(text: str) -> dict[str, object]:
    """An assistant message as the OpenAI Agents SDK stores it."""
    return {
        "role": "assistant",
        "type": "message",
        "content": [{"type": "output_text", "text": text}],
    }


@pytest_asyncio.fixture(params=["memory", "redis"])
async def history(request: pytest.FixtureRequest) -> AsyncIterator[ConversationHistory]:
    if request.param == "memory":
        store: ConversationHistory = InMemoryConversationHistory(max_items=4)
    else:
        if not redis_listening():
            pytest.skip("no Redis on 127.0.0.1:6379 (make services)")
        store = RedisConversationHistory.from_url(
            REDIS_URL, max_items=4, prefix=f"test:history:{uuid.uuid4().hex}:"
        )
    try:
        yield store
    finally:
        await store.clear("c1")
        await store.aclose()


async def test_append_get_and_bound(history: ConversationHistory) -> None:
    assert await history.get("c1") == []
    await history.append("c1", [user("one"), assistant("two")])
    await history.append("c1", [user("three"), assistant("four"), user("five")])
    assert [i["content"] for i in await history.get("c1")] == ["two", "three", "four", "five"]
    await history.clear("c1")
    assert await history.get("c1") == []


async def test_trim_last_reply(history: ConversationHistory) -> None:
    await history.append("c1", [user("hi"), assistant("Your order ships Monday. Anything else?")])
    assert await history.trim_last_reply("c1", "Your order ships")
    assert await history.get("c1") == [user("hi"), assistant("Your order ships")]
    # nothing after the last user message: nothing to trim
    await history.append("c1", [user("and?")])
    assert not await history.trim_last_reply("c1", "whatever")


async def test_unknown_conversation(history: ConversationHistory) -> None:
    assert not await history.trim_last_reply("nope", "x")
    assert await history.get("nope") == []


@pytest.mark.unit
def test_apply_heard_over_tool_calls_and_parts() -> None:
    items = [
        user("where is my order?"),
        {
            "role": "assistant",
            "type": "message",
            "content": [{"type": "output_text", "text": "Let me check."}],
        },
        {"type": "function_call", "name": "lookup", "arguments": "{}", "call_id": "1"},
        {"type": "function_call_output", "call_id": "1", "output": "{}"},
        {
            "role": "assistant",
            "type": "message",
            "content": [{"type": "output_text", "text": "It ships Monday at noon."}],
        },
    ]
    trimmed = apply_heard(items, "Let me check.  It ships")
    assert trimmed is not None
    assert trimmed[:4] == items[:4]
    assert trimmed[4]["content"] == [{"type": "output_text", "text": "It ships"}]
    # heard nothing: the replies go, the tool call stays
    silent = apply_heard(items, "")
    assert silent is not None
    assert [i.get("type") for i in silent] == [None, "function_call", "function_call_output"]
    # heard everything: unchanged
    assert apply_heard(items, "Let me check. It ships Monday at noon.") is None


@pytest.mark.unit
def test_apply_heard_over_converse_tool_results() -> None:
    """Bedrock Converse / Strands messages: tool results come back in a user message, which
    is part of the reply, not the caller's prompt."""
    use = {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}
    items = [
        {"role": "user", "content": [{"text": "where is my order?"}]},
        {"role": "assistant", "content": [{"text": "Let me check."}, use]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": []}}]},
        {"role": "assistant", "content": [{"text": "It ships Monday at noon."}]},
    ]
    trimmed = apply_heard(items, "Let me check. It ships")
    assert trimmed is not None
    assert trimmed[:3] == items[:3]
    assert trimmed[3]["content"] == [{"text": "It ships"}]
    silent = apply_heard(items, "")
    assert silent is not None
    assert silent[1]["content"] == [use]  # the call stays, the unheard text goes
    assert len(silent) == 3


@pytest.mark.unit
async def test_in_memory_expiry_and_conversation_cap() -> None:
    now = [0.0]
    store = InMemoryConversationHistory(ttl_seconds=10, max_conversations=2, clock=lambda: now[0])
    await store.append("a", [user("1")])
    await store.append("b", [user("2")])
    await store.append("c", [user("3")])  # "a" is the least recently used: dropped
    assert await store.get("a") == []
    assert len(store) == 2
    now[0] = 11.0
    assert await store.get("b") == []
    assert len(store) == 0


@pytest.mark.unit
async def test_items_must_be_objects() -> None:
    store = InMemoryConversationHistory()
    with pytest.raises(TypeError, match="JSON objects"):
        await store.append("a", ["text"])  # type: ignore[list-item]
