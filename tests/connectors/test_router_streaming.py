"""The router (several connectors, one TAC) and the streaming helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tac import TAC, TACConfig
from tac.connectors import (
    Connector,
    ConnectorRouter,
    InMemoryConversationHistory,
    ToolFinished,
    ToolStarted,
    Turn,
    speak,
)
from tac.connectors.streaming import RunEvent, collect
from tac.models.session import ConversationSession

pytestmark = pytest.mark.unit


def make_tac() -> TAC:
    return TAC(
        TACConfig(
            account_sid="AC" + "0" * 32,
            auth_token="token",
            api_key="SKkey",
            api_secret="secret",
            phone_number="+18005550100",
            log_level="WARNING",
        )
    )


class Echo(Connector):
    def __init__(self, tac: TAC, prefix: str, **kwargs: object) -> None:
        super().__init__(tac, **kwargs)  # type: ignore[arg-type]
        self.prefix = prefix

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        yield f"{self.prefix}: "
        yield turn.message


def session(channel: str, cid: str = "conv1") -> ConversationSession:
    return ConversationSession(conversation_id=cid, channel=channel)


async def test_two_connectors_share_one_tac() -> None:
    tac = make_tac()
    seen: list[str] = []

    @tac.on_message_ready
    def fallback(message: str, s: ConversationSession, memory: object) -> str:
        seen.append(message)
        return "fallback"

    Echo(tac, "voice", channels=["voice"])
    Echo(tac, "text", channels=["sms", "WHATSAPP"])
    with pytest.raises(ValueError, match="'sms' is already handled by Echo"):
        Echo(tac, "again", channels=["sms"])
    assert await tac.trigger_message_ready("hi", session("sms"), None) == "text: hi"
    assert await tac.trigger_message_ready("hey", session("whatsapp"), None) == "text: hey"
    stream = await tac.trigger_message_ready("yo", session("voice"), None)
    assert stream is not None
    assert not isinstance(stream, str)
    assert [t async for t in stream] == ["voice: ", "yo"]
    # a channel no connector claims goes to the callback registered before
    assert await tac.trigger_message_ready("chat", session("chat"), None) == "fallback"
    assert seen == ["chat"]
    catch_all = Echo(tac, "all")
    assert ConnectorRouter.of(tac).owner("chat") is catch_all
    with pytest.raises(ValueError, match="already handles every unclaimed channel"):
        Echo(tac, "all2")


async def test_history_ends_with_the_session() -> None:
    tac = make_tac()
    history = InMemoryConversationHistory()
    echo = Echo(tac, "e", history=history)
    assert echo.history is history
    await history.append("conv1", [{"role": "user", "content": "x"}])
    await tac.start_session(session("sms"))
    assert await tac.end_session("conv1")
    assert await history.get("conv1") == []


async def test_speak_says_the_filler_while_a_tool_is_slow() -> None:
    release = asyncio.Event()

    async def run() -> AsyncIterator[RunEvent]:
        yield "Let me look. "
        yield ToolStarted("lookup")
        await release.wait()  # the tool returns only once the filler has been said
        yield ToolFinished("lookup")
        yield "Found it."

    said: list[str] = []
    async for token in speak(run(), filler="One moment.", filler_after_seconds=0.01):
        said.append(token)
        if token == "One moment.":
            release.set()
    assert said == ["Let me look. ", "One moment.", "Found it."]


async def test_speak_cancels_the_run_when_closed() -> None:
    stopped = asyncio.Event()

    async def run() -> AsyncIterator[RunEvent]:
        try:
            yield "a"
            await asyncio.Event().wait()
            yield "never"
        finally:
            stopped.set()

    stream = speak(run())
    assert await stream.__anext__() == "a"
    await stream.aclose()
    assert stopped.is_set()


async def test_speak_raises_the_runs_error() -> None:
    async def run() -> AsyncIterator[RunEvent]:
        yield "a"
        raise RuntimeError("model down")

    with pytest.raises(RuntimeError, match="model down"):
        async for _ in speak(run()):
            pass
    assert await collect(_tokens("x", ToolStarted(), "y")) == "xy"


async def _tokens(*events: RunEvent) -> AsyncIterator[RunEvent]:
    for event in events:
        yield event
