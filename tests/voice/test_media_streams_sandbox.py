"""Media Streams in Orchestrator mode against the sandbox (Orchestrator, Memory, Intelligence).

Twilio's Media Streams side is the test's signed WebSocket client; the model is the fake
realtime model. The call gets its own conversation, the customer's memory reaches the model's
instructions, both sides' transcripts become the conversation's communications and, once the
call ends, Conversation Intelligence summarises them into the customer's memory.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.voice._harness import FROM, VoiceApp
from tests.voice._media import stream_call

from tac.channels.voice.media_streams.openai_realtime import OpenAIRealtimeProviderConfig
from tac.models.session import ConversationSession
from tac.sandbox import Sandbox
from tac.testing import FakeRealtimeModel
from tac.tools import create_memory_tool

pytestmark = pytest.mark.integration


async def seed_profile(sandbox: Sandbox, http: httpx.AsyncClient, observation: str) -> str:
    store = sandbox.identity.memory_store_id
    profiles = f"{sandbox.url}/memory/v1/Stores/{store}/Profiles"
    created = await http.post(profiles, json={"traits": {"Contact": {"phone": FROM}}})
    assert created.status_code == 202, created.text
    profile: str = created.json()["id"]
    body = {
        "observations": [
            {"content": observation, "source": "test", "occurredAt": "2026-01-01T00:00:00Z"}
        ]
    }
    answer = await http.post(f"{profiles}/{profile}/Observations", json=body)
    assert answer.status_code == 202, answer.text
    return f"{profiles}/{profile}"


async def test_orchestrated_call_memory_tools_transcripts_and_intelligence() -> None:
    model = FakeRealtimeModel()
    model.call_tool("retrieve_profile_memory", {"query": "seat"}, user_transcript="Book a seat")
    model.reply("I booked a window seat for you.", audio_ms=100)
    ended: list[ConversationSession] = []
    async with model.serve(), Sandbox.start(app_url="http://127.0.0.1:9") as sandbox:
        env = sandbox.env
        auth = (env["TWILIO_API_KEY"], env["TWILIO_API_SECRET"])
        async with httpx.AsyncClient(auth=auth) as http:
            profile_url = await seed_profile(sandbox, http, "Prefers window seats")

            def tools(session: ConversationSession) -> list[Any]:
                assert app.tac.conversation_memory_client is not None
                return [create_memory_tool(app.tac.conversation_memory_client, session)]

            config = OpenAIRealtimeProviderConfig(
                openai_api_key="sk-test",
                base_url=model.base_url,
                memory_mode="once",
                default_session_config={"model": "gpt-realtime", "instructions": "Be kind."},
                tools_for_session=tools,
            )
            app = VoiceApp(env=env, config=config)
            await sandbox.set_app_url(app.url)
            app.tac.on_conversation_ended(ended.append)
            async with app, stream_call(app, call_sid="CA" + "7" * 32) as twilio:
                await twilio.speak()
                await twilio.until(lambda: len(twilio.media) == 5)
                await twilio.played()
                provider: Any = app.channel.provider
                await app.until(lambda: len(provider.get_transcript(twilio.call_sid)) == 2)
                await twilio.stop()
                await twilio.closed.wait()
                await app.until(lambda: bool(ended))
            session = ended[0]
            conversation = session.conversation_id
            assert conversation.startswith("conv_conversation_")
            assert session.profile_id is not None
            assert profile_url.endswith(session.profile_id)
            instructions = model.sessions[0].events[0]["session"]["instructions"]
            assert instructions.startswith("Be kind.")
            assert "Prefers window seats" in instructions
            _, output = model.sessions[0].tool_outputs[0]
            assert "Prefers window seats" in output
            base = f"{sandbox.url}/conversations/v2/Conversations/{conversation}"
            communications = (await http.get(f"{base}/Communications")).json()["communications"]
            texts = [c["content"]["text"] for c in communications]
            assert texts == ["Book a seat", "I booked a window seat for you."]
            assert (await http.get(base)).json()["status"] == "CLOSED"
            summaries = (await http.get(f"{profile_url}/ConversationSummaries")).json()
            assert any(s["conversationId"] == conversation for s in summaries["summaries"])


async def test_memory_always_refreshes_the_instructions_after_each_utterance() -> None:
    model = FakeRealtimeModel()
    model.reply("Window seats it is.", audio_ms=40, user_transcript="Any seat preference?")
    async with model.serve(), Sandbox.start(app_url="http://127.0.0.1:9") as sandbox:
        env = sandbox.env
        auth = (env["TWILIO_API_KEY"], env["TWILIO_API_SECRET"])
        async with httpx.AsyncClient(auth=auth) as http:
            await seed_profile(sandbox, http, "Prefers window seats")
            config = OpenAIRealtimeProviderConfig(
                openai_api_key="sk-test",
                base_url=model.base_url,
                memory_mode="always",
                default_session_config={"model": "gpt-realtime", "instructions": "Be kind."},
            )
            app = VoiceApp(env=env, config=config)
            await sandbox.set_app_url(app.url)
            async with app, stream_call(app, call_sid="CA" + "8" * 32) as twilio:
                await twilio.speak()
                await twilio.until(lambda: bool(model.sessions))
                session = model.sessions[0]

                def updates() -> list[dict[str, Any]]:
                    return [e for e in session.events if e["type"] == "session.update"]

                await twilio.until(lambda: len(updates()) == 2)
                await twilio.stop()
    first, refreshed = updates()
    assert "Prefers window seats" in first["session"]["instructions"]
    assert refreshed["session"]["instructions"].startswith("Be kind.")
    assert "Prefers window seats" in refreshed["session"]["instructions"]
    assert set(refreshed["session"]) == {"type", "instructions"}
