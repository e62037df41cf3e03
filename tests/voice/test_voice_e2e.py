"""End to end through the sandbox: its phone (``Caller``) calls the app over real HTTP and
WebSockets, signed like Twilio; its Orchestrator, Memory, Studio and Calls API answer the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.voice._harness import VoiceApp

from tac.channels.voice import (
    CallOptions,
    CallStatusEvent,
    VoiceChannelConfig,
    VoiceTwiMLOptionsConversationRelay,
)
from tac.models.session import ConversationSession, PendingHandoffData
from tac.models.voice import InitiateVoiceConversationOptions, InterruptMessage
from tac.sandbox import Sandbox

pytestmark = pytest.mark.integration

RELAY_OPTIONS = VoiceTwiMLOptionsConversationRelay(dtmf_detection=True, partial_prompts=True)


@asynccontextmanager
async def sandbox_and_app(
    *, orchestrator: bool = False, **config: Any
) -> AsyncIterator[tuple[Sandbox, VoiceApp]]:
    config.setdefault("default_twiml_options", RELAY_OPTIONS)
    async with Sandbox.start(app_url="http://127.0.0.1:9") as sandbox:
        env = dict(sandbox.env)
        if not orchestrator:
            del env["TWILIO_CONVERSATION_CONFIGURATION_ID"]
        app = VoiceApp(env=env, config=VoiceChannelConfig(**config))
        await sandbox.set_app_url(app.url)
        async with app:
            yield sandbox, app
            await app.settled()


async def test_streamed_reply_dtmf_partials_and_language() -> None:
    async with sandbox_and_app() as (sandbox, app):
        turns: list[str] = []
        digits: list[str] = []

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> Any:
            turns.append(message)
            if message == "en español":
                await app.channel.set_language(
                    session.conversation_id, tts="es-MX", transcription="es-MX"
                )
                return "Claro."

            async def tokens() -> AsyncIterator[str]:
                for token in ("You ", "said: ", message):
                    yield token

            return tokens()

        @app.tac.on_dtmf
        def on_dtmf(session: ConversationSession, digit: str) -> None:
            digits.append(digit)

        async with sandbox.caller() as caller:
            await caller.dial(custom_parameters={"orderId": "42"})
            reply = await caller.ask("Where is my order?")
            assert reply == "You said: Where is my order?"
            assert list(reply.tokens) == ["You ", "said: ", "Where is my order?", ""]
            await caller.say("I want to check my order", partials=True)
            assert await caller.next_reply() == "You said: I want to check my order"
            await caller.press("12#")
            await app.until(lambda: len(digits) == 3)
            assert await caller.ask("en español") == "Claro."
            assert caller.tts_language == "es-MX"
            await caller.hang_up()
        assert turns == ["Where is my order?", "I want to check my order", "en español"]
        assert digits == ["1", "2", "#"]
        assert caller.end_reason == "hangup"
        assert caller.action_callbacks[0]["fields"]["CallStatus"] == "completed"


async def test_interrupt_cancels_the_generator_and_reports_what_was_heard() -> None:
    async with sandbox_and_app() as (sandbox, app):
        cancelled = asyncio.Event()
        interrupts: list[InterruptMessage] = []

        @app.tac.on_message_ready
        async def on_message(message: str, session: Any, memory: Any) -> Any:
            async def story() -> AsyncIterator[str]:
                try:
                    yield "Once upon "
                    yield "a time"
                    await asyncio.sleep(30)
                    yield " never told"
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

            return story()

        @app.tac.on_interrupt
        def on_interrupt(session: Any, interrupt: InterruptMessage) -> None:
            interrupts.append(interrupt)

        async with sandbox.caller() as caller:
            await caller.dial()
            await caller.say("tell me a story")
            await caller.wait_for(lambda: caller.partial_reply == "Once upon a time", timeout=5)
            sent = await caller.interrupt()
            assert sent["utteranceUntilInterrupt"] == "Once upon a time"
            reply = await caller.next_reply()
            assert reply.interrupted
            assert reply.heard == "Once upon a time"
            await asyncio.wait_for(cancelled.wait(), 5)
            await app.until(lambda: bool(interrupts))
            await caller.hang_up()
        assert interrupts[0].utterance_until_interrupt == "Once upon a time"


async def test_handoff_end_reaches_studio() -> None:
    async with sandbox_and_app() as (sandbox, app):
        handoff = json.dumps({"reason": "wants a human"})

        @app.tac.on_message_ready
        def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            session.pending_handoff_data = PendingHandoffData(handoff_data=handoff)
            return "Transferring you."

        async with sandbox.caller() as caller:
            await caller.dial()
            await caller.say("a human please")
            await caller.expect_reply(equals="Transferring you.")
            await caller.expect_ended("handoff")
        assert caller.handoff_data == handoff
        callback = caller.action_callbacks[0]
        assert "/Flows/" in callback["url"]
        assert callback["fields"]["HandoffData"] == handoff


async def test_orchestrator_mode_through_the_sandbox_phone() -> None:
    async with sandbox_and_app(orchestrator=True, memory_mode="always") as (sandbox, app):
        sessions: list[ConversationSession] = []
        memories: list[Any] = []
        ended: list[str] = []

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            sessions.append(session)
            memories.append(memory)
            return f"You said: {message}"

        app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
        async with sandbox.caller(from_="+14155550177") as caller:
            await caller.dial()
            assert await caller.ask("I need help") == "You said: I need help"
            await caller.hang_up()
        assert caller.conversation is not None
        conversation_id = caller.conversation["id"]
        await app.until(lambda: bool(ended))
        assert sessions[0].conversation_id == conversation_id
        assert sessions[0].call_sid == caller.call_sid
        assert sessions[0].profile_id is not None
        assert sessions[0].author_info is not None
        assert sessions[0].author_info.address == "+14155550177"
        assert memories[0] is not None
        # the session ended with the socket, without a CLOSED webhook
        assert ended == [conversation_id]
        messages = await sandbox.client.messages(conversation_id)
        assert [m["content"]["text"] for m in messages] == ["I need help", "You said: I need help"]


async def test_outbound_call_answered_by_the_sandbox() -> None:
    async with sandbox_and_app() as (sandbox, app):
        statuses: list[CallStatusEvent] = []
        amd: list[Any] = []
        app.channel.on_call_status(statuses.append)
        app.channel.on_amd(amd.append)
        app.tac.on_message_ready(lambda message, session, memory: f"Hello {message}")
        result = await app.channel.initiate_outbound_conversation(
            InitiateVoiceConversationOptions(
                to="+14155550123",
                call_options=CallOptions(
                    machine_detection="Enable",
                    async_amd=True,
                    status_callback_event=["initiated", "answered", "completed"],
                ),
            )
        )
        call = await sandbox.answered_call()
        assert str(await call.ask("there")) == "Hello there"
        await app.until(lambda: bool(amd))
        assert await app.channel.end_call(result.call_sid)
        await app.until(lambda: any(e.call_status == "completed" for e in statuses))
        assert all(e.call_sid == result.call_sid for e in statuses)
        assert amd[0].answered_by == "human"


async def test_500_calls_then_hang_up_leave_no_session() -> None:
    async with sandbox_and_app() as (sandbox, app):
        app.tac.on_message_ready(lambda message, session, memory: message.upper())

        async def one(index: int) -> str:
            async with sandbox.caller(from_=f"+1415555{index:04d}") as caller:
                await caller.dial()
                reply = await caller.ask(f"call {index}", timeout=30)
                await caller.hang_up()
                return str(reply)

        replies = await asyncio.gather(*(one(i) for i in range(500)))
        assert replies == [f"CALL {i}" for i in range(500)]
        await app.settled(timeout=30)
        assert await app.tac.session_store.session_count() == 0
        assert app.channel.provider.calls == {}  # type: ignore[attr-defined]
