"""The voice routes over real loopback HTTP and WebSockets, signed like Twilio signs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests.voice._harness import ACCOUNT, FROM, VoiceApp
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tac.channels.voice import CallNotConnectedError, VoiceChannelConfig
from tac.models.session import Channel, ConversationSession, PendingHandoffData
from tac.models.voice import InterruptMessage
from tac.state.memory import InMemorySessionStore

pytestmark = pytest.mark.integration


async def test_twiml_route_answers_signed_calls_only() -> None:
    async with VoiceApp() as app:
        form = {"CallSid": "CA1", "AccountSid": ACCOUNT, "From": FROM, "To": "+18005550100"}
        ok = await app.post("/twiml", form)
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("application/xml")
        assert f'url="ws://127.0.0.1:{app.port}/ws"' in ok.text
        assert f'action="{app.url}/conversation-relay-callback"' in ok.text
        forged = await app.post("/twiml", form, signature="Zm9yZ2Vk")
        assert forged.status_code == 403


async def test_forged_websocket_signature_is_refused_before_accept() -> None:
    async with VoiceApp() as app:
        # closed before accept: uvicorn turns the 1008 close into an HTTP 403 handshake answer
        with pytest.raises(InvalidStatus) as info:
            await app.open(signature="Zm9yZ2Vk")
        assert info.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            await app.open(signature=app.sign(app.websocket_url() + "/other"))
        assert app.channel._relay().calls == {}


def test_forged_websocket_signature_closes_with_1008() -> None:
    app = VoiceApp()
    with TestClient(app.server.app) as client:
        with pytest.raises(WebSocketDisconnect) as info:  # noqa: SIM117
            with client.websocket_connect("/ws", headers={"X-Twilio-Signature": "Zm9yZ2Vk"}):
                pass
        assert info.value.code == 1008
    app._socket.close()


async def test_full_reply_and_session_end_on_hang_up() -> None:
    async with VoiceApp() as app:
        seen: list[tuple[str, ConversationSession, Any]] = []
        ended: list[str] = []
        setups: list[dict[str, str]] = []

        @app.tac.on_setup
        async def on_setup(session: ConversationSession) -> None:
            setups.append(dict(session.custom_parameters))

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            seen.append((message, session, memory))
            return f"You said: {message}"

        @app.tac.on_conversation_ended
        def on_end(session: ConversationSession) -> None:
            ended.append(session.conversation_id)

        async with app.call(custom_parameters={"orderId": "42"}) as call:
            await call.say("hello there")
            text, frames = await call.reply()
            assert text == "You said: hello there"
            assert frames == [{"type": "text", "token": "You said: hello there", "last": True}]
        await app.settled()
        message, session, memory = seen[0]
        assert message == "hello there"
        assert session.conversation_id == call.call_sid
        assert session.call_sid == call.call_sid
        assert session.channel == Channel.VOICE
        assert session.author_info is not None
        assert session.author_info.address == FROM
        assert session.custom_parameters == {"orderId": "42"}
        assert setups == [{"orderId": "42"}]
        assert memory is None
        assert ended == [call.call_sid]


async def test_streamed_reply_as_tokens_then_final() -> None:
    async with VoiceApp() as app:

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> Any:
            async def tokens() -> AsyncIterator[str]:
                for token in ("One ", "two ", "", "three."):
                    yield token

            return tokens()

        async with app.call() as call:
            await call.say("count")
            text, frames = await call.reply()
        assert text == "One two three."
        assert frames == [
            {"type": "text", "token": "One ", "last": False},
            {"type": "text", "token": "two ", "last": False},
            {"type": "text", "token": "three.", "last": False},
            {"type": "text", "token": "", "last": True},
        ]


async def test_seed_style_send_response_from_the_callback() -> None:
    async with VoiceApp(config=VoiceChannelConfig(memory_mode="always")) as app:
        memories: list[Any] = []

        async def handle_message_ready(message: str, context: Any, memory: Any) -> None:
            memories.append(memory)
            await app.channel.send_response(
                conversation_id=context.conversation_id, response=f"echo {message}"
            )

        app.tac.on_message_ready(handle_message_ready)
        async with app.call() as call:
            await call.say("ping")
            text, _ = await call.reply()
        assert text == "echo ping"
        # ConversationRelay-only mode: memory modes still give a (empty) TACMemoryResponse
        assert memories[0] is not None
        assert not memories[0].observations


async def test_partial_prompts_are_not_turns() -> None:
    async with VoiceApp() as app:
        turns: list[str] = []

        @app.tac.on_message_ready
        def on_message(message: str, session: Any, memory: Any) -> str:
            turns.append(message)
            return "ok"

        async with app.call() as call:
            await call.say("hel", last=False)
            await call.say("hello th", last=False)
            await call.say("hello there", last=True)
            text, _ = await call.reply()
        assert text == "ok"
        assert turns == ["hello there"]


async def test_interrupt_cancels_the_generator_and_reports_what_was_heard() -> None:
    async with VoiceApp() as app:
        cancelled = asyncio.Event()
        interrupts: list[InterruptMessage] = []
        started = asyncio.Event()

        @app.tac.on_message_ready
        async def on_message(message: str, session: Any, memory: Any) -> Any:
            if message != "first":
                return "second reply"

            async def slow() -> AsyncIterator[str]:
                try:
                    yield "Life is a complex "
                    started.set()
                    await asyncio.sleep(30)
                    yield "never spoken"
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

            return slow()

        @app.tac.on_interrupt
        async def on_interrupt(session: Any, interrupt: InterruptMessage) -> None:
            interrupts.append(interrupt)

        async with app.call() as call:
            await call.say("first")
            assert await call.frame() == {
                "type": "text",
                "token": "Life is a complex ",
                "last": False,
            }
            await asyncio.wait_for(started.wait(), 5)
            await call.interrupt("Life is a", 460)
            # the interrupted reply is closed with an empty final token
            assert await call.frame() == {"type": "text", "token": "", "last": True}
            await asyncio.wait_for(cancelled.wait(), 5)
            await call.say("second")
            text, _ = await call.reply()
            assert text == "second reply"
        assert len(interrupts) == 1
        assert interrupts[0].utterance_until_interrupt == "Life is a"
        assert interrupts[0].duration_until_interrupt_ms == 460


async def test_dtmf_reaches_on_dtmf_and_send_digits() -> None:
    async with VoiceApp() as app:
        digits: list[str] = []

        @app.tac.on_dtmf
        async def on_dtmf(session: ConversationSession, digit: str) -> None:
            digits.append(digit)
            await app.channel.send_digits(session.conversation_id, "1w2")

        async with app.call() as call:
            await call.press("5")
            assert await call.frame() == {"type": "sendDigits", "digits": "1w2"}
        assert digits == ["5"]


async def test_voice_controls_language_play_and_hang_up() -> None:
    async with VoiceApp() as app:
        async with app.call() as call:
            await app.until(lambda: call.call_sid in app.channel._relay().calls)
            await app.channel.set_language(call.call_sid, tts="es-MX", transcription="es-MX")
            await app.channel.play(call.call_sid, "https://example.com/a.mp3", loop=2)
            await app.channel.hang_up(call.call_sid)
            assert await call.frame() == {
                "type": "language",
                "ttsLanguage": "es-MX",
                "transcriptionLanguage": "es-MX",
            }
            assert await call.frame() == {
                "type": "play",
                "source": "https://example.com/a.mp3",
                "loop": 2,
            }
            assert await call.frame() == {"type": "end"}
            with pytest.raises(CallNotConnectedError):
                await app.channel.send_response(call.call_sid, "after end")
        with pytest.raises(CallNotConnectedError):
            await app.channel.play("CA-unknown", "https://example.com/a.mp3")


async def test_pending_handoff_is_sent_after_the_final_text() -> None:
    async with VoiceApp() as app:
        handoff = json.dumps({"reason": "wants a human"})

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> Any:
            if message == "session":
                session.pending_handoff_data = PendingHandoffData(handoff_data=handoff)
            else:
                await app.tac.session_store.set_pending_handoff(
                    session.conversation_id, handoff, 60
                )

            async def tokens() -> AsyncIterator[str]:
                yield "Transferring you now."

            return tokens()

        for how in ("session", "store"):
            async with app.call() as call:
                await call.say(how)
                text, _ = await call.reply()
                assert text == "Transferring you now."
                assert await call.frame() == {"type": "end", "handoffData": handoff}
        await app.settled()


async def test_callback_error_goes_to_on_error_and_the_call_continues() -> None:
    async with VoiceApp() as app:
        errors: list[tuple[BaseException, dict[str, Any]]] = []

        @app.tac.on_error
        def on_error(exc: BaseException, context: dict[str, Any]) -> None:
            errors.append((exc, context))

        @app.tac.on_message_ready
        async def on_message(message: str, session: Any, memory: Any) -> str:
            if message == "boom":
                raise RuntimeError("agent failed")
            return "fine"

        async with app.call() as call:
            await call.say("boom")
            await app.until(lambda: bool(errors))
            await call.say("again")
            text, _ = await call.reply()
            assert text == "fine"
        assert isinstance(errors[0][0], RuntimeError)
        assert errors[0][1]["conversation_id"] == call.call_sid


async def test_malformed_frames_are_dropped_and_setup_is_required() -> None:
    async with VoiceApp() as app:

        @app.tac.on_message_ready
        def on_message(message: str, session: Any, memory: Any) -> str:
            return "still here"

        async with app.call() as call:
            await call.connection.send("not json")
            await call.send({"type": "prompt", "voicePrompt": 5})
            await call.send({"type": "info", "name": "agentSpeaking", "value": "on"})
            await call.say("hi")
            text, _ = await call.reply()
            assert text == "still here"
        connection = await app.open()
        await connection.send(json.dumps({"type": "prompt", "voicePrompt": "no setup"}))
        with pytest.raises(ConnectionClosed) as info:
            await connection.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        await app.settled()


async def test_action_callback_and_call_events() -> None:
    async with VoiceApp() as app:
        statuses: list[Any] = []
        amds: list[Any] = []

        @app.channel.on_call_status
        def on_status(event: Any) -> None:  # sync handlers work (anchor §14.20)
            statuses.append(event)

        @app.channel.on_amd
        async def on_amd(event: Any) -> None:
            amds.append(event)

        @app.channel.on_session_end_twiml
        def after(payload: Any) -> str | None:
            if payload.handoff_data:
                return "<Response><Dial>+15550001111</Dial></Response>"
            return None

        base = {"AccountSid": ACCOUNT, "CallSid": "CA7"}
        action = await app.post(
            "/conversation-relay-callback",
            {**base, "SessionStatus": "ended", "HandoffData": '{"a":1}'},
        )
        assert action.status_code == 200
        assert "<Dial>" in action.text
        plain = await app.post("/conversation-relay-callback", base)
        assert plain.text.endswith("<Response />")
        status = await app.post(
            "/twilio/call-events/status", {**base, "CallStatus": "busy", "CallDuration": "0"}
        )
        amd = await app.post("/twilio/call-events/amd", {**base, "AnsweredBy": "human"})
        recording = await app.post("/twilio/call-events/recording", base)
        other = await app.post(
            "/twilio/call-events/status", {"AccountSid": "ACother", "CallSid": "CA8"}
        )
        missing = await app.post("/twilio/call-events/status", {"CallStatus": "busy"})
        forged = await app.post("/twilio/call-events/status", base, signature="Zm9yZ2Vk")
        assert [r.status_code for r in (status, amd, recording, other)] == [200] * 4
        assert missing.status_code == 400
        assert "call_sid" in missing.text
        assert forged.status_code == 403
        assert [e.call_sid for e in statuses] == ["CA7"]
        assert statuses[0].is_unreached
        assert [e.answered_by for e in amds] == ["human"]


async def test_200_concurrent_calls_then_hang_up_leave_nothing() -> None:
    async with VoiceApp() as app:
        ended: list[str] = []

        @app.tac.on_message_ready
        async def on_message(message: str, session: Any, memory: Any) -> str:
            return message.upper()

        @app.tac.on_conversation_ended
        async def on_end(session: ConversationSession) -> None:
            ended.append(session.conversation_id)

        async def one(index: int) -> str:
            async with app.call(call_sid=f"CA{index:032d}") as call:
                await call.say(f"call {index}")
                text, _ = await call.reply(timeout=30)
                return text

        replies = await asyncio.gather(*(one(i) for i in range(200)))
        assert replies == [f"CALL {i}" for i in range(200)]
        await app.settled(timeout=30)
        assert await app.tac.session_store.session_count() == 0
        assert app.channel._relay().calls == {}
        assert sorted(ended) == sorted(f"CA{i:032d}" for i in range(200))


async def test_hang_up_mid_reply_stops_the_reply_quietly() -> None:
    async with VoiceApp() as app:
        errors: list[BaseException] = []
        app.tac.on_error(lambda exc, context: errors.append(exc))

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> Any:
            async def tokens() -> AsyncIterator[str]:
                yield "Goodbye."
                await app.channel.hang_up(session.conversation_id)
                yield "never spoken"

            return tokens()

        async with app.call() as call:
            await call.say("bye")
            assert await call.frame() == {"type": "text", "token": "Goodbye.", "last": False}
            assert await call.frame() == {"type": "end"}
        await app.settled()
        assert errors == []


async def test_store_outage_at_setup_closes_the_call_and_reports() -> None:
    class BrokenStore(InMemorySessionStore):
        async def create_session(
            self, session: ConversationSession, ttl_seconds: float
        ) -> tuple[ConversationSession, bool]:
            raise ConnectionError("store down")

    async with VoiceApp(session_store=BrokenStore()) as app:
        errors: list[dict[str, Any]] = []
        app.tac.on_error(lambda exc, context: errors.append(context))
        async with app.call() as call:
            with pytest.raises(ConnectionClosed) as info:
                await call.frame()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1011
        await app.settled()
        assert errors[0]["stage"] == "setup"
        assert errors[0]["call_sid"] == call.call_sid


async def test_non_ascii_signature_is_refused_not_crashed() -> None:
    async with VoiceApp() as app:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                app.url + "/twiml",
                data={"CallSid": "CA1"},
                headers={"X-Twilio-Signature": "ünïcode".encode("latin-1")},
            )
        assert response.status_code == 403
