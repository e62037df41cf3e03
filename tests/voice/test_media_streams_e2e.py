"""Speech-to-speech calls end to end: the sandbox's Media Streams phone ↔ the app ↔ a fake
realtime model, over real sockets, with speech made by Debian's ``espeak-ng``.

The phone streams μ-law at real pace and plays what comes back at real pace, so what the caller
*heard* is known on its side; the bridge must truncate the model's answer to that (from the
marks it got back), not to what it sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.voice._harness import ACCOUNT, TOKEN, VoiceApp

from tac.channels.voice.media_streams.openai_realtime import (
    InitiateVoiceConversationOptionsOpenAIRealtime,
    OpenAIRealtimeProviderConfig,
)
from tac.models.session import ConversationSession
from tac.sandbox import Sandbox
from tac.testing import FakeRealtimeModel
from tac.tools import create_studio_handoff_tool, function_tool
from tac_sandbox import StreamCaller
from tac_sandbox.audio import AudioUnavailable, speech_wav, wav_to_mulaw

pytestmark = pytest.mark.integration

SESSION = {"model": "gpt-realtime", "instructions": "You help with orders."}


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """WAV files of a few sentences, spoken by espeak-ng."""
    folder = tmp_path_factory.mktemp("speech")
    sentences = {
        "order": "Where is my order?",
        "stop": "Wait, stop, I have a question.",
        "human": "Let me talk to a person please.",
    }
    try:
        return {key: speech_wav(text, folder / f"{key}.wav") for key, text in sentences.items()}
    except AudioUnavailable as exc:
        pytest.skip(f"no speech for the phone: {exc}")


def model_for_speech() -> FakeRealtimeModel:
    # espeak's pauses between words are short; a turn ends after half a second of quiet
    return FakeRealtimeModel(silence_ms=500)


def config(model: FakeRealtimeModel, **fields: Any) -> OpenAIRealtimeProviderConfig:
    return OpenAIRealtimeProviderConfig(
        openai_api_key="sk-test",
        base_url=model.base_url,
        default_session_config=dict(SESSION),
        **fields,
    )


def phone(app: VoiceApp) -> StreamCaller:
    return StreamCaller(app.url, account_sid=ACCOUNT, auth_token=TOKEN, to="+18005550100")


def test_wav_becomes_mulaw_at_8_khz(speech: dict[str, Path]) -> None:
    audio = wav_to_mulaw(speech["order"])
    assert 500 < len(audio) // 8 < 3000  # about a second of speech
    assert len(set(audio)) > 50  # speech, not silence


async def test_a_call_with_a_reply(speech: dict[str, Path]) -> None:
    model = model_for_speech()
    model.reply("It ships today.", audio_ms=600, user_transcript="Where is my order?")
    ended: list[ConversationSession] = []
    async with model.serve(), VoiceApp(config=config(model)) as app:
        app.tac.on_conversation_ended(ended.append)
        async with phone(app) as caller:
            await caller.dial()
            assert caller.twiml is not None
            assert caller.twiml.parameters["_tac_from"] == caller.from_
            spoken = caller.say_wav(speech["order"])
            await caller.wait_until_heard(600, timeout=15)
            await caller.until(lambda: len(caller.marks_echoed) == 6)
            await caller.hang_up()
        await app.until(lambda: bool(ended))
    assert caller.heard_ms == 600
    assert caller.clears == 0
    session = model.sessions[0]
    assert spoken <= session.audio_ms  # the speech, then the line's silence
    assert ended[0].metadata["transcript"] == [
        {"role": "user", "text": "Where is my order?"},
        {"role": "assistant", "text": "It ships today."},
    ]


async def test_barge_in_mid_answer_truncates_to_what_was_heard(speech: dict[str, Path]) -> None:
    model = model_for_speech()
    model.reply("Let me read you our whole shipping policy.", audio_ms=4000)
    model.reply("Sure, what is it?", audio_ms=400)
    interrupts: list[Any] = []
    async with model.serve(), VoiceApp(config=config(model)) as app:
        app.tac.on_interrupt(lambda session, event: interrupts.append(event))
        async with phone(app) as caller:
            await caller.dial()
            caller.say_wav(speech["order"])
            await caller.wait_for_audio(4000, timeout=15)  # the model sent it all at once
            await caller.wait_until_heard(600, timeout=15)
            caller.say_wav(speech["stop"])
            await caller.until(lambda: caller.clears == 1, timeout=15)
            heard_at_clear = next(e for e in caller.events if e["kind"] == "clear")["heard_ms"]
            await caller.until(lambda: len(model.truncations) == 1)
            await caller.wait_for_audio(4400, timeout=15)  # the next answer still plays
            await caller.hang_up()
    item, audio_end_ms = model.truncations[0]
    assert item == model.sessions[0].items[0]
    # what the caller heard (from the marks it echoed), never what the bridge had sent
    assert 600 <= audio_end_ms <= heard_at_clear < 4000
    assert audio_end_ms % 100 == 0
    assert interrupts[0].duration_until_interrupt_ms == audio_end_ms


async def test_a_tool_call(speech: dict[str, Path]) -> None:
    asked: list[str] = []

    @function_tool
    def order_status(order_id: str) -> str:
        """The status of an order.

        Args:
            order_id: the order number
        """
        asked.append(order_id)
        return "shipped"

    model = model_for_speech()
    model.call_tool("order_status", {"order_id": "4521"}).reply("It shipped.", audio_ms=200)
    async with (
        model.serve(),
        VoiceApp(config=config(model, tools=[order_status])) as app,
        phone(app) as caller,
    ):
        await caller.dial()
        caller.say_wav(speech["order"])
        await caller.wait_until_heard(200, timeout=15)
        await caller.hang_up()
    assert asked == ["4521"]
    assert json.loads(model.sessions[0].tool_outputs[0][1]) == "shipped"


async def test_outbound_call_with_memory_and_a_handoff(speech: dict[str, Path]) -> None:
    customer = "+14155550177"
    model = model_for_speech()
    model.call_tool("handoff", {"reason": "asked for a person"}).reply(
        "Connecting you to a colleague.", audio_ms=300
    )
    async with model.serve(), Sandbox.start(app_url="http://127.0.0.1:9") as sandbox:
        env = sandbox.env
        auth = (env["TWILIO_API_KEY"], env["TWILIO_API_SECRET"])
        async with httpx.AsyncClient(auth=auth) as http:
            store = sandbox.identity.memory_store_id
            profiles = f"{sandbox.url}/memory/v1/Stores/{store}/Profiles"
            created = await http.post(profiles, json={"traits": {"Contact": {"phone": customer}}})
            observation = {"content": "Is a gold member", "source": "test"}
            await http.post(
                f"{profiles}/{created.json()['id']}/Observations",
                json={"observations": [{**observation, "occurredAt": "2026-01-01T00:00:00Z"}]},
            )

            def tools(session: ConversationSession) -> list[Any]:
                return [create_studio_handoff_tool(app.tac, session)]

            app = VoiceApp(
                env=env, config=config(model, memory_mode="once", tools_for_session=tools)
            )
            await sandbox.set_app_url(app.url)
            async with app:
                result = await app.channel.initiate_outbound_conversation(
                    InitiateVoiceConversationOptionsOpenAIRealtime(
                        to=customer, session_config={"voice": "cedar"}
                    )
                )
                streams = sandbox.app.state.sandbox.service("voice.stream_phone")
                caller: StreamCaller = await streams.next_call()
                assert caller.call_sid == result.call_sid
                caller.say_wav(speech["human"])
                await caller.until(lambda: bool(caller.redirects), timeout=20)
                await app.until(lambda: not app.channel.provider.calls)  # type: ignore[attr-defined]
            handoffs = (await http.get(f"{sandbox.url}/sandbox/studio/handoffs")).json()
    assert caller.heard_ms == 300  # the goodbye was heard before the call left the stream
    assert caller.redirects[0]["status"] == 200
    handoff = handoffs["handoffs"][0]
    assert handoff["callSid"] == result.call_sid
    assert handoff["handoffData"]["attributes"] == {"reason": "asked for a person"}
    assert handoff["handoffData"]["conversationId"].startswith("conv_conversation_")
    update = model.sessions[0].events[0]["session"]
    assert update["voice"] == "cedar"  # the outbound call's own session config
    assert "Is a gold member" in update["instructions"]
