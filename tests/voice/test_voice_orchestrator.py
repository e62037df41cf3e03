"""Full Orchestrator mode and the Calls API, over loopback WebSockets.

Twilio's REST side is an ``httpx.MockTransport`` answering with Twilio's example payloads
(the sandbox's Orchestrator replaces it in the end-to-end tests).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from tests._examples import example
from tests.voice._harness import ACCOUNT, AGENT_NUMBER, FROM, VoiceApp

from tac.channels.voice import CallOptions, VoiceChannelConfig
from tac.models.session import ConversationSession
from tac.models.voice import InitiateVoiceConversationOptions, VoiceTwiMLOptionsConversationRelay

pytestmark = pytest.mark.integration

CONFIGURATION = "conv_configuration_11xdgxvf5tyw1swz67d269h6m0"
CONVERSATION = "conv_conversation_16g8fe2qfxzxe1drxegxq3q0kr"
PROFILE = "mem_profile_1rh5048d9qrfn67babyc2dpgcr"


class FakeTwilio:
    """Orchestrator, Memory and Calls answers; the conversation appears after ``delay_polls``."""

    def __init__(self, delay_polls: int = 0, *, never: bool = False) -> None:
        self.delay_polls = delay_polls
        self.never = never
        self.requests: list[httpx.Request] = []

    def count(self, path_part: str) -> int:
        return sum(1 for r in self.requests if path_part in r.url.path)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v2/Conversations":
            polls = self.count("/v2/Conversations") - self.count("/Participants")
            body = example("orchestrator-conversations-list-response.json")
            if self.never or polls <= self.delay_polls:
                body["conversations"] = []
            else:
                assert request.url.params["status"] == "ACTIVE"
                body["conversations"][0]["id"] = CONVERSATION
            return httpx.Response(200, json=body)
        if path.endswith("/Participants"):
            body = copy.deepcopy(example("orchestrator-participants-list-response.json"))
            for participant in body["participants"]:
                for address in participant["addresses"]:
                    address["channel"] = "VOICE"
            return httpx.Response(200, json=body)
        if path.startswith("/v2/ControlPlane/Configurations/"):
            return httpx.Response(200, json=example("orchestrator-configuration-response.json"))
        if path.endswith("/Recall"):
            return httpx.Response(200, json=example("memory-recall-response.json"))
        if "/Profiles/" in path and request.method == "GET":
            return httpx.Response(200, json=example("memory-profile-response.json"))
        if path.endswith("/Calls.json"):
            return httpx.Response(201, json=example("voice-call-resource.json"))
        if "/Calls/" in path:
            return httpx.Response(200, json=example("voice-call-resource.json"))
        return httpx.Response(404, json={"code": 20404, "message": "not found", "status": 404})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


def orchestrated(fake: FakeTwilio, **config: Any) -> VoiceApp:
    return VoiceApp(
        config=VoiceChannelConfig(**config),
        transport=fake.transport(),
        conversation_configuration_id=CONFIGURATION,
    )


async def test_orchestrator_call_finds_its_conversation_and_memory() -> None:
    fake = FakeTwilio(delay_polls=2)
    async with orchestrated(fake, memory_mode="always") as app:
        turns: list[tuple[ConversationSession, Any]] = []
        setups: list[str] = []
        ended: list[str] = []

        @app.tac.on_setup
        def on_setup(session: ConversationSession) -> None:
            setups.append(session.conversation_id)

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            turns.append((session, memory))
            return "hi"

        @app.tac.on_conversation_ended
        def on_end(session: ConversationSession) -> None:
            ended.append(session.conversation_id)

        async with app.call() as call:
            await call.say("what did I order?")
            text, _ = await call.reply()
            assert text == "hi"
            assert await app.tac.session_store.conversation_for_call(call.call_sid) == CONVERSATION
        await app.settled()
        session, memory = turns[0]
        assert session.conversation_id == CONVERSATION
        assert session.call_sid == call.call_sid
        assert session.profile_id == PROFILE
        assert session.author_info is not None
        assert session.author_info.address == FROM
        assert session.author_info.participant_id == "conv_participant_17q8zv16r7622ccgcw2r15207g"
        assert session.ai_agent_info is not None
        assert session.ai_agent_info.address == AGENT_NUMBER
        assert memory is not None
        assert memory.observations
        assert setups == [CONVERSATION]
        # ended by the socket closing, without any CLOSED webhook (anchor §14.2)
        assert ended == [CONVERSATION]
        assert await app.tac.session_store.conversation_for_call(call.call_sid) is None
        lookups = [r for r in fake.requests if r.url.path == "/v2/Conversations"]
        assert len(lookups) == 3
        assert {r.url.params["channelId"] for r in lookups} == {call.call_sid}


async def test_conversation_not_found_in_time_degrades_to_relay_only() -> None:
    fake = FakeTwilio(never=True)
    async with orchestrated(fake, memory_mode="always", orchestrator_lookup_timeout=0.2) as app:
        turns: list[tuple[ConversationSession, Any]] = []
        ended: list[str] = []

        @app.tac.on_message_ready
        async def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            turns.append((session, memory))
            return "still answering"

        app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
        async with app.call() as call:
            await call.say("hello")
            text, _ = await call.reply()
            assert text == "still answering"
        await app.settled()
        session, memory = turns[0]
        assert session.conversation_id == call.call_sid
        assert memory is not None
        assert not memory.observations
        assert ended == [call.call_sid]
        assert fake.count("/Recall") == 0


async def test_conversation_id_parameter_skips_the_lookup() -> None:
    fake = FakeTwilio()
    async with orchestrated(fake) as app:
        sessions: list[ConversationSession] = []

        @app.tac.on_message_ready
        def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            sessions.append(session)
            return "ok"

        async with app.call(
            custom_parameters={"conversationId": "conv_conversation_given"}
        ) as call:
            await call.say("hi")
            await call.reply()
        await app.settled()
        assert sessions[0].conversation_id == "conv_conversation_given"
        assert fake.count("/v2/Conversations") == fake.count("/Participants") == 1


async def test_closed_webhook_does_not_end_a_live_call() -> None:
    fake = FakeTwilio()
    async with orchestrated(fake) as app:
        ended: list[str] = []
        app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
        app.tac.on_message_ready(lambda message, session, memory: "ok")
        async with app.call() as call:
            await call.say("hi")
            await call.reply()
            closed = {"eventType": "CONVERSATION_UPDATED", "data": {"id": CONVERSATION}}
            closed["data"]["status"] = "CLOSED"
            await app.channel.process_webhook(closed)
            assert ended == []
        await app.settled()
        assert ended == [CONVERSATION]


async def test_outbound_call_through_the_calls_api() -> None:
    fake = FakeTwilio()
    async with VoiceApp(
        transport=fake.transport(),
        config=VoiceChannelConfig(default_call_options=CallOptions(timeout=25)),
    ) as app:
        app.channel.on_call_status(lambda event: None)
        app.channel.on_amd(lambda event: None)
        result = await app.channel.initiate_outbound_conversation(
            InitiateVoiceConversationOptions(
                to=FROM,
                twiml_options=VoiceTwiMLOptionsConversationRelay(welcome_greeting="Hi, it's us"),
                call_options=CallOptions(machine_detection="Enable", async_amd=True),
            )
        )
        assert result.call_sid == example("voice-call-resource.json")["sid"]
        request = fake.requests[-1]
        assert request.url.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
        form = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert form["To"] == FROM
        assert form["From"] == AGENT_NUMBER
        assert form["Timeout"] == "25"
        assert form["MachineDetection"] == "Enable"
        assert form["AsyncAmd"] == "true"
        assert form["StatusCallback"] == f"{app.url}/twilio/call-events/status"
        assert form["AsyncAmdStatusCallback"] == f"{app.url}/twilio/call-events/amd"
        assert "RecordingStatusCallback" not in form
        assert f'url="ws://127.0.0.1:{app.port}/ws"' in form["Twiml"]
        assert 'welcomeGreeting="Hi, it\'s us"' in form["Twiml"]

        assert await app.channel.end_call("CA123") is True
        hang_up = fake.requests[-1]
        assert hang_up.url.path.endswith("/Calls/CA123.json")
        assert parse_qs(hang_up.content.decode()) == {"Status": ["completed"]}


async def test_end_call_failure_goes_to_on_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": 20404, "message": "nope", "status": 404})

    async with VoiceApp(transport=httpx.MockTransport(refuse)) as app:
        errors: list[dict[str, Any]] = []
        app.tac.on_error(lambda exc, context: errors.append(context))
        assert await app.channel.end_call("CAgone") is False
        assert errors == [{"call_sid": "CAgone", "channel": "voice"}]


async def test_memory_once_is_fetched_on_the_first_utterance_only() -> None:
    fake = FakeTwilio()
    async with orchestrated(fake, memory_mode="once") as app:
        memories: list[Any] = []

        @app.tac.on_message_ready
        def on_message(message: str, session: ConversationSession, memory: Any) -> str:
            memories.append(memory)
            return "ok"

        async with app.call() as call:
            for text in ("one", "two"):
                await call.say(text)
                await call.reply()
        await app.settled()
        assert len(memories) == 2
        assert all(m is not None and m.observations for m in memories)
        assert fake.count("/Recall") == 1
