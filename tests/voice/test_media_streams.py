"""The Media Streams bridge over real sockets: Twilio's side ↔ the app ↔ a fake realtime model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tests.voice._harness import ACCOUNT, FROM, VoiceApp
from tests.voice._media import stream_call
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tac.channels.voice import VoiceChannel
from tac.channels.voice.media_streams.gpt_live import GPTLiveProviderConfig
from tac.channels.voice.media_streams.openai_realtime import (
    OpenAIRealtimeProviderConfig,
    VoiceTwiMLOptionsMediaStreams,
    generate_twiml,
)
from tac.models.session import ConversationSession
from tac.testing import FakeRealtimeModel
from tac.tools import function_tool

pytestmark = pytest.mark.integration

SESSION = {"model": "gpt-realtime", "instructions": "You are a helpful agent.", "voice": "marin"}


def realtime_config(model: FakeRealtimeModel, **fields: Any) -> OpenAIRealtimeProviderConfig:
    return OpenAIRealtimeProviderConfig(
        openai_api_key="sk-test",
        base_url=model.base_url,
        default_session_config=dict(SESSION),
        **fields,
    )


def test_generate_twiml_connects_a_stream() -> None:
    twiml = generate_twiml(
        "wss://h/ws",
        VoiceTwiMLOptionsMediaStreams(
            custom_parameters={"a": "1"},
            name="s1",
            status_callback="https://h/cb",
            action_url="https://h/act",
        ),
    )
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="https://h/act">'
        '<Stream name="s1" statusCallback="https://h/cb" url="wss://h/ws">'
        '<Parameter name="a" value="1" /></Stream></Connect></Response>'
    )
    with pytest.raises(ValueError, match="query string"):
        VoiceTwiMLOptionsMediaStreams(websocket_url="wss://h/ws?x=1")
    with pytest.raises(ValueError, match="WebSocket URL"):
        generate_twiml()


def test_model_url_follows_openai_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway:8080/v1/")
    config = OpenAIRealtimeProviderConfig()
    assert config.openai_api_key == "sk-env"
    assert config.model_base_url() == "ws://gateway:8080/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert config.model_base_url() == "wss://api.openai.com/v1"
    override = OpenAIRealtimeProviderConfig(base_url="https://x.openai.azure.com/openai/v1")
    assert override.model_base_url() == "wss://x.openai.azure.com/openai/v1"
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="openai_api_key"):
        OpenAIRealtimeProviderConfig()


async def test_twiml_route_streams_to_the_signed_websocket() -> None:
    model = FakeRealtimeModel()
    async with model.serve(), VoiceApp(config=realtime_config(model)) as app:
        form = {"CallSid": "CA1", "AccountSid": ACCOUNT, "From": FROM, "To": "+18005550100"}
        answer = await app.post("/twiml", form)
        assert answer.status_code == 200
        assert "<Connect><Stream" in answer.text
        assert f'url="ws://127.0.0.1:{app.port}/ws"' in answer.text
        assert f'<Parameter name="_tac_from" value="{FROM}" />' in answer.text
        forged = await app.post("/twiml", form, signature="Zm9yZ2Vk")
        assert forged.status_code == 403
        with pytest.raises(InvalidStatus) as info:
            await app.open(signature="Zm9yZ2Vk")
        assert info.value.response.status_code == 403
    assert model.sessions == []


async def test_a_turn_is_answered_with_audio_and_marks() -> None:
    model = FakeRealtimeModel()
    model.reply("Your order ships today.", audio_ms=200, user_transcript="Where is my order?")
    ended: list[ConversationSession] = []
    async with model.serve(), VoiceApp(config=realtime_config(model)) as app:
        app.tac.on_conversation_ended(ended.append)
        async with stream_call(app) as twilio:
            await twilio.speak()
            await twilio.until(lambda: len(twilio.marks) == 2)
            assert len(twilio.media) == 10
            # a mark after every 100 ms of audio (the default mark_interval_ms)
            events = [f["event"] for f in twilio.frames]
            assert events == (["media"] * 5 + ["mark"]) * 2
            assert all(f["streamSid"] == twilio.stream_sid for f in twilio.frames)
            await twilio.played()
            provider: Any = app.channel.provider
            await app.until(lambda: len(provider.get_transcript(twilio.call_sid)) == 2)
            await twilio.stop()
            await twilio.closed.wait()
        await app.until(lambda: bool(ended))
    session = model.sessions[0]
    assert session.path == "/v1/realtime"
    assert session.model == "gpt-realtime"
    assert session.headers["authorization"] == "Bearer sk-test"
    update = session.events[0]
    assert update["type"] == "session.update"
    audio = update["session"]["audio"]
    assert audio["input"]["format"] == {"type": "audio/pcmu"}
    assert audio["output"]["format"] == {"type": "audio/pcmu"}
    assert update["session"]["voice"] == "marin"
    assert session.audio_ms == 700  # every caller frame reached the model, undecoded
    assert session.truncations == []
    assert ended[0].metadata["transcript"] == [
        {"role": "user", "text": "Where is my order?"},
        {"role": "assistant", "text": "Your order ships today."},
    ]
    assert ended[0].metadata["stream_sid"] == "MZ" + "1" * 32
    assert ended[0].author_info is not None
    assert ended[0].author_info.address == FROM


async def test_barge_in_clears_and_truncates_to_what_was_heard() -> None:
    model = FakeRealtimeModel()
    model.reply("A long answer about shipping policies.", audio_ms=2000)
    model.reply("Sure, go ahead.", audio_ms=100)
    interrupts: list[Any] = []
    async with model.serve(), VoiceApp(config=realtime_config(model)) as app:
        app.tac.on_interrupt(lambda session, event: interrupts.append(event))
        async with stream_call(app) as twilio:
            await twilio.speak()
            await twilio.until(lambda: len(twilio.marks) == 20)
            await twilio.played(3)  # the caller heard three marks' worth: 300 ms
            provider: Any = app.channel.provider
            await app.until(lambda: provider.calls[twilio.call_sid].heard_ms == 300)
            await twilio.speak()  # and talks over the rest
            await twilio.until(lambda: twilio.clears == 1)
            await twilio.until(lambda: len(model.truncations) == 1)
            item = model.sessions[0].items[0]
            assert model.truncations == [(item, 300)]
            # the second answer still plays
            await twilio.until(lambda: len(twilio.media) == 105)
            await twilio.stop()
    assert len(interrupts) == 1
    assert interrupts[0].duration_until_interrupt_ms == 300


async def test_speech_after_everything_was_heard_truncates_nothing() -> None:
    model = FakeRealtimeModel()
    model.reply("Short.", audio_ms=100).reply("Again.", audio_ms=40)
    async with (
        model.serve(),
        VoiceApp(config=realtime_config(model)) as app,
        stream_call(app) as twilio,
    ):
        await twilio.speak()
        await twilio.until(lambda: len(twilio.marks) == 1)
        await twilio.played()
        provider: Any = app.channel.provider
        await app.until(lambda: not provider.calls[twilio.call_sid].pending_marks)
        await twilio.speak()
        # the next answer's audio comes after the bridge handled speech_started
        await twilio.until(lambda: len(twilio.media) == 7)
        assert twilio.clears == 0
        await twilio.stop()
    assert model.truncations == []


async def test_tools_run_as_realtime_function_calls() -> None:
    looked_up: list[str] = []

    @function_tool
    def order_status(order_id: str) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: the order number
        """
        looked_up.append(order_id)
        return {"status": "shipped"}

    model = FakeRealtimeModel()
    model.call_tool("order_status", {"order_id": "A1"}).reply("It shipped.", audio_ms=40)
    async with (
        model.serve(),
        VoiceApp(config=realtime_config(model, tools=[order_status])) as app,
        stream_call(app) as twilio,
    ):
        await twilio.speak()
        await twilio.until(lambda: len(twilio.media) == 2)
        await twilio.stop()
    session = model.sessions[0]
    assert looked_up == ["A1"]
    _call_id, output = session.tool_outputs[0]
    assert json.loads(output) == {"status": "shipped"}
    tools = session.events[0]["session"]["tools"]
    assert tools[0]["name"] == "order_status"
    assert tools[0]["parameters"]["required"] == ["order_id"]


async def test_dtmf_and_setup_callbacks_fire() -> None:
    model = FakeRealtimeModel()
    digits: list[str] = []
    setups: list[ConversationSession] = []
    async with model.serve(), VoiceApp(config=realtime_config(model)) as app:
        app.tac.on_dtmf(lambda session, digit: digits.append(digit))
        app.tac.on_setup(setups.append)
        async with stream_call(app, custom_parameters={"tier": "gold"}) as twilio:
            await twilio.press("5")
            await app.until(lambda: digits == ["5"])
            await twilio.stop()
    assert setups[0].custom_parameters == {"tier": "gold"}
    assert setups[0].channel == "voice"


async def test_gpt_live_call_with_a_reply() -> None:
    model = FakeRealtimeModel()
    model.reply("Hello from live.", audio_ms=60, user_transcript="Hi")
    async with model.serve():
        config = GPTLiveProviderConfig(
            openai_api_key="sk-test",
            base_url=model.base_url,
            default_session_config={"model": "gpt-live", "instructions": "Be brief."},
        )
        async with VoiceApp(config=config) as app, stream_call(app) as twilio:
            await twilio.speak()
            await twilio.until(lambda: len(twilio.media) == 3)
            await twilio.stop()
    session = model.sessions[0]
    assert session.path == "/v1/live/sessions"
    start = session.events[0]
    assert start["type"] == "session.start"
    assert start["session"]["audio"]["format"] == {"type": "audio/pcmu", "rate": 8000}
    assert start["session"]["instructions"] == "Be brief."
    assert session.events[-1]["type"] == "session.close"


async def test_gpt_live_barge_in_tells_the_model_what_the_caller_heard() -> None:
    model = FakeRealtimeModel()
    answer = " ".join(f"w{index}" for index in range(1, 21))  # 20 words in 2 s
    model.reply(answer, audio_ms=2000)
    model.reply("Sure.", audio_ms=100, user_transcript="Wait")
    async with model.serve():
        config = GPTLiveProviderConfig(
            openai_api_key="sk-test",
            base_url=model.base_url,
            default_session_config={"model": "gpt-live"},
        )
        async with VoiceApp(config=config) as app, stream_call(app) as twilio:
            await twilio.speak()
            await twilio.until(lambda: len(twilio.marks) == 20)
            await twilio.played(3)  # 300 ms heard
            provider: Any = app.channel.provider
            await app.until(lambda: provider.calls[twilio.call_sid].heard_ms == 300)
            await twilio.speak()  # the caller talks over the rest
            await twilio.until(lambda: twilio.clears == 1)
            session = model.sessions[0]
            await twilio.until(lambda: len(session.appended_instructions) == 1)
            await twilio.until(lambda: len(twilio.media) == 105)  # the next answer plays
            await twilio.stop()
    assert session.appended_instructions == [
        "The caller interrupted you after hearing only the first 0.3 s of the 2.0 s of your"
        ' last answer, about: "w1 w2 w3". They did not hear the rest: do not assume they did.'
    ]
    assert session.truncations == []  # GPT-Live has no conversation.item.truncate


@pytest.mark.parametrize(
    ("heard_ms", "spoken_ms", "text", "expected"),
    [
        (0, 900, "Hello there.", "before hearing any of your last answer"),
        (400, 0, "", "only the first 0.4 s of your last answer. They did not"),
        (400, 900, "", "only the first 0.4 s of the 0.9 s of your last answer. They"),
        (100, 900, "Hello there.", "of your last answer. They"),  # not one word's worth
    ],
)
def test_the_heard_note_says_as_much_as_is_known(
    heard_ms: int, spoken_ms: int, text: str, expected: str
) -> None:
    from tac.channels.voice.media_streams.gpt_live.provider import heard_note

    assert expected in heard_note(heard_ms, spoken_ms, text)


async def test_a_model_that_refuses_the_call_closes_the_stream() -> None:
    errors: list[BaseException] = []
    config = OpenAIRealtimeProviderConfig(
        openai_api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",  # nothing listens
        default_session_config=dict(SESSION),
    )
    async with VoiceApp(config=config) as app:
        app.tac.on_error(lambda exc, context: errors.append(exc))
        async with stream_call(app) as twilio:
            await asyncio.wait_for(twilio.closed.wait(), 10)
        await app.until(lambda: not app.channel.provider.calls)  # type: ignore[attr-defined]
    assert errors
    assert await app.tac.session_store.session_count() == 0


def test_voice_channel_takes_a_media_streams_config() -> None:
    from tac import TAC

    tac = TAC(
        {
            "account_sid": ACCOUNT,
            "auth_token": "t",
            "api_key": "SK",
            "api_secret": "s",
            "phone_number": "+18005550100",
        }
    )
    channel = VoiceChannel(
        tac,
        config=OpenAIRealtimeProviderConfig(openai_api_key="sk", default_session_config=SESSION),
    )
    assert channel.provider.provider_id == "openai_realtime"


async def test_channel_lookups_and_closed_webhooks_work_on_media_streams() -> None:
    model = FakeRealtimeModel()
    closed: list[str] = []
    async with model.serve(), VoiceApp(config=realtime_config(model)) as app:
        app.tac.on_conversation_ended(lambda session: closed.append(session.conversation_id))
        async with stream_call(app) as twilio:
            provider: Any = app.channel.provider
            await app.until(lambda: twilio.call_sid in provider.calls)
            await app.until(lambda: provider.calls[twilio.call_sid].session is not None)
            session = app.channel.get_conversation_session_by_call_sid(twilio.call_sid)
            assert session is not None
            assert app.channel.get_websocket(twilio.call_sid) is not None
            # the Orchestrator closing a live call's conversation leaves the call alone
            event = {
                "eventType": "CONVERSATION_UPDATED",
                "data": {"id": twilio.call_sid, "status": "CLOSED"},
            }
            await app.channel.process_webhook(event)
            assert closed == []
            await twilio.stop()
        await app.until(lambda: closed == [twilio.call_sid])


def test_hot_paths_read_frames_by_position_and_fall_back_on_anything_else() -> None:
    from tac.channels.voice.media_streams._bridge import _inbound_payload
    from tac.channels.voice.media_streams._protocol import string_field
    from tac.channels.voice.media_streams.shared.openai_provider import _audio_delta

    frame = (
        '{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1",'
        '"timestamp":"5","payload":"/v7+/Q=="},"streamSid":"MZ1"}'
    )
    assert _inbound_payload(frame) == "/v7+/Q=="
    assert _inbound_payload(frame.replace('"inbound"', '"outbound"')) is None
    assert _inbound_payload(frame.replace("/v7+/Q==", 'x\\"y')) is None  # not base64: parsed
    delta = '{"type":"response.output_audio.delta","item_id":"item_1","delta":"AAA="}'
    parsed = _audio_delta(delta)
    assert parsed is not None
    assert (parsed.item_id, parsed.payload) == ("item_1", "AAA=")
    assert _audio_delta(delta.replace('"item_1"', '"it\\"em"')) is None
    assert _audio_delta('{"type":"response.output_audio.delta"}') is None
    mark = '{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"m3"}}'
    assert string_field(mark, "name") == "m3"
    assert string_field(mark.replace('"m3"', '"m\\"3"'), "name") is None


async def test_caller_audio_can_reach_the_model_in_bigger_chunks() -> None:
    model = FakeRealtimeModel()
    model.reply("Ok.", audio_ms=20)
    async with (
        model.serve(),
        VoiceApp(config=realtime_config(model, input_audio_batch_ms=60)) as app,
        stream_call(app) as twilio,
    ):
        await twilio.speak(speech_ms=300, silence_ms=420)  # 36 frames of 20 ms
        await twilio.until(lambda: len(twilio.media) == 1)
        await twilio.stop()
    session = model.sessions[0]
    assert session.audio_ms == 720
    assert session.appends == 12  # three frames per message


async def test_only_base64_audio_is_spliced_into_the_models_events() -> None:
    model = FakeRealtimeModel(vad=False)
    async with (
        model.serve(),
        VoiceApp(config=realtime_config(model)) as app,
        stream_call(app) as twilio,
    ):
        for payload in ('AAA=", "type": "response.create', "AAAA"):  # spaced JSON: parsed fully
            frame = {"event": "media", "media": {"track": "inbound", "payload": payload}}
            await twilio.connection.send(json.dumps(frame))
        await twilio.until(lambda: bool(model.sessions) and model.sessions[0].appends == 1)
        await twilio.stop()
    session = model.sessions[0]
    assert session.audio_bytes == 3
    assert [e["type"] for e in session.events] == ["session.update"]  # nothing injected


def test_gpt_live_transcripts_coalesce_and_the_caller_speaking_clears_playback() -> None:
    from tac.channels.voice.media_streams.base import SpeechStarted, Transcript
    from tac.channels.voice.media_streams.gpt_live.provider import _LiveConnection

    live = _LiveConnection(websocket=None, welcome_instruction=None)
    out = live.translate({"type": "session.output_transcript.delta", "delta": "Hello "})
    out += live.translate({"type": "session.output_transcript.delta", "delta": "there."})
    assert out == []
    interrupted = live.translate({"type": "session.input_transcript.delta", "delta": "Wait"})
    assert interrupted == [Transcript("assistant", "Hello there."), SpeechStarted()]
    assert live.translate({"type": "session.input_transcript.delta", "delta": "!"}) == []
    assert live.translate({"type": "session.closed"}) == [Transcript("user", "Wait!")]


async def test_a_start_without_a_call_sid_is_refused_with_the_field_named() -> None:
    model = FakeRealtimeModel()
    async with model.serve(), VoiceApp(config=realtime_config(model)) as app:
        connection = await app.open()
        await connection.send(json.dumps({"event": "connected", "protocol": "Call"}))
        await connection.send(
            json.dumps({"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1"}})
        )
        with pytest.raises(ConnectionClosed) as info:
            await connection.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1002
        assert info.value.rcvd.reason == "invalid start: start.callSid: Field required"
    assert model.sessions == []
