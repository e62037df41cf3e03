"""Full Orchestrator mode against the sandbox (its Conversation Orchestrator and Memory).

The call's conversation is created the way Twilio does for ``conversationConfiguration``: a
conversation whose participants' VOICE addresses carry the CallSid as ``channelId``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.voice._harness import FROM, VoiceApp

from tac.channels.voice import VoiceChannelConfig
from tac.models.session import ConversationSession
from tac.sandbox import Sandbox

pytestmark = pytest.mark.integration


async def create_call_conversation(sandbox: Sandbox, call_sid: str, agent: str) -> str:
    env = sandbox.env
    body = {
        "configurationId": env["TWILIO_CONVERSATION_CONFIGURATION_ID"],
        "participants": [
            {
                "type": "CUSTOMER",
                "addresses": [{"channel": "VOICE", "address": FROM, "channelId": call_sid}],
            },
            {
                "type": "AI_AGENT",
                "addresses": [{"channel": "VOICE", "address": agent, "channelId": call_sid}],
            },
        ],
    }
    auth = (env["TWILIO_API_KEY"], env["TWILIO_API_SECRET"])
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.post(f"{sandbox.url}/conversations/v2/Conversations", json=body)
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def test_orchestrator_mode_with_the_sandbox() -> None:
    async with Sandbox.start(app_url="http://127.0.0.1:9") as sandbox:
        app = VoiceApp(env=sandbox.env, config=VoiceChannelConfig(memory_mode="always"))
        await sandbox.set_app_url(app.url)
        turns: list[tuple[ConversationSession, Any]] = []
        ended: list[str] = []

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            turns.append((session, memory))
            return "Let me check."

        app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
        async with app:
            twiml = await app.post("/twiml", {"CallSid": "CAsandbox1", "From": FROM})
            assert "conversationConfiguration=" in twiml.text
            assert f"{sandbox.url}/webhooks/v1/Accounts/" in twiml.text  # Studio handoff
            agent = app.tac.config.phone_number
            conversation_id = await create_call_conversation(sandbox, "CAsandbox1", agent)
            async with app.call(call_sid="CAsandbox1") as call:
                await call.say("Where is my order?")
                text, _ = await call.reply()
                assert text == "Let me check."
            await app.settled()
        session, memory = turns[0]
        assert session.conversation_id == conversation_id
        assert session.call_sid == "CAsandbox1"
        assert session.profile_id is not None
        assert session.profile_id.startswith("mem_profile_")
        assert session.author_info is not None
        assert session.author_info.address == FROM
        assert session.ai_agent_info is not None
        assert session.ai_agent_info.address == agent
        assert memory is not None
        assert ended == [conversation_id]
