"""tac_google's REST connectors (Dialogflow CX, CX Agent Studio, Agent Studio on Agent Engine)
against a local stand-in of the Google endpoints over real HTTP, answering the sandbox's
messages and calls."""

from __future__ import annotations

import pytest

pytest.importorskip("google.adk", reason="needs google-adk (opentac[google])")

import asyncio
import base64
import json
from array import array
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from google.adk.agents import Agent
from google.oauth2.credentials import Credentials

from tac import TAC, TACConfig
from tac.channels import VoiceChannelConfig
from tac.sandbox import serve_app
from tac_google.connectors import (
    ConversationalAgentsConnector,
    CXAgentStudioConnector,
    GoogleAPIError,
    StudioAgentEngineConnector,
    VoiceS2SChannel,
    VoiceS2SConfig,
)
from tac_google.connectors.conversational_agents_connector import dialogflow_session_id
from tests.connectors._adk_fakes import ScriptedLlm, texts
from tests.connectors._google_standin import TOKEN, GoogleStandIn, df_text

pytestmark = pytest.mark.integration

DF_AGENT = "projects/acme/locations/us-central1/agents/support"
CES_APP = "projects/acme/locations/us/apps/support"
ENGINE = "projects/acme/locations/us-central1/reasoningEngines/42"


@pytest_asyncio.fixture
async def google() -> AsyncIterator[tuple[GoogleStandIn, str]]:
    stand_in = GoogleStandIn()
    async with serve_app(stand_in.app) as url:
        yield stand_in, url


async def token() -> str:
    return TOKEN


def bare_tac() -> TAC:
    """A TAC in ConversationRelay-only mode (voice alone), for what needs no sandbox."""
    return TAC(
        TACConfig(
            account_sid="AC" + "0" * 32,
            auth_token="t",
            api_key="SK",
            api_secret="s",
            phone_number="+18005550100",
        )
    )


def queries(stand_in: GoogleStandIn) -> list[str]:
    return [c.body["queryInput"]["text"]["text"] for c in stand_in.of(":detectIntent")]


# -- Conversational Agents (Dialogflow CX) -----------------------------------------------------


async def test_dialogflow_answers_sms_with_memory_once(start_app, google) -> None:
    stand_in, url = google
    stand_in.dialogflow = lambda body: df_text("Your order", "ships Monday.")

    def build(tac: Any) -> list[Any]:
        connector = ConversationalAgentsConnector(
            tac,
            DF_AGENT,
            language_code="en-GB",
            sms_config={"memory_mode": "always"},
            token_provider=token,
            api_base_url=url,
        )
        return connector.channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("Where is my order?")).text == "Your order ships Monday."
    assert (await customer.ask("Thanks")).text == "Your order ships Monday."
    first, second = stand_in.of(":detectIntent")
    session = f"{DF_AGENT}/sessions/{dialogflow_session_id(str(customer.conversation_id))}"
    assert first.path == second.path == f"/v3/{session}:detectIntent"
    assert first.body["queryInput"]["languageCode"] == "en-GB"
    memory_then_message, message = queries(stand_in)
    assert memory_then_message.startswith("# Customer Context")
    assert memory_then_message.endswith("\n\nWhere is my order?")
    assert message == "Thanks"  # unchanged memory is not sent again
    assert "tac-google/" in first.headers["user-agent"]
    assert "x-goog-user-project" not in first.headers  # not a user's credentials


async def test_dialogflow_end_interaction_hangs_up_a_call(start_app, google) -> None:
    stand_in, url = google
    replies = iter([df_text("How can I help?"), df_text("Goodbye!", endInteraction={})])
    stand_in.dialogflow = lambda body: next(replies)
    connectors: list[ConversationalAgentsConnector] = []

    def build(tac: Any) -> list[Any]:
        connectors.append(
            ConversationalAgentsConnector(tac, DF_AGENT, token_provider=token, api_base_url=url)
        )
        return connectors[0].channels.messaging

    app = await start_app(
        channels=build, setup=lambda tac: None, voice=lambda tac: connectors[0].voice
    )
    call = await app.sandbox.call()
    assert (await call.ask("hello")).text == "How can I help?"
    assert (await call.ask("that's all")).text == "Goodbye!"
    ended = await call.wait_ended()
    assert ended["handoffData"] == "call_ended"
    assert queries(stand_in) == ["hello", "that's all"]


async def test_dialogflow_live_agent_handoff_reaches_flex(start_app, google) -> None:
    stand_in, url = google
    handoff = {"metadata": {"reason": "billing dispute", "queue": "billing"}}
    stand_in.dialogflow = lambda body: df_text("Connecting you.", liveAgentHandoff=handoff)

    def build(tac: Any) -> list[Any]:
        connector = ConversationalAgentsConnector(
            tac, DF_AGENT, token_provider=token, api_base_url=url
        )
        return connector.channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("A person please")).text == "Connecting you."
    tasks = await app.sandbox.client.request(
        "GET", "/sandbox/flex/tasks", params={"conversationId": customer.conversation_id}
    )
    assert tasks["tasks"][0]["attributes"] == {"queue": "billing", "reason": "billing dispute"}


async def test_dialogflow_errors_reach_on_error(start_app, google) -> None:
    _, url = google

    def build(tac: Any) -> list[Any]:
        async def wrong_token() -> str:
            return "expired"

        bad = ConversationalAgentsConnector(
            tac, DF_AGENT, token_provider=wrong_token, api_base_url=url
        )
        return bad.channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    await customer.send("hi")
    for _ in range(200):
        if app.errors:
            break
        await asyncio.sleep(0.02)
    error = app.errors[0][0]
    assert isinstance(error, GoogleAPIError)
    assert (error.status, error.code) == (401, "UNAUTHENTICATED")
    assert "invalid authentication credentials" in str(error)


async def test_expired_user_credentials_are_refreshed_once(google) -> None:
    """Real google-auth user credentials whose token the stand-in refuses: refreshed (off the
    event loop) at its token endpoint, the request sent again with the quota project."""
    stand_in, url = google
    stand_in.dialogflow = lambda body: df_text("ok")
    tac = bare_tac()
    credentials = Credentials(
        token="ya29.stale",
        refresh_token="1//refresh",
        token_uri=f"{url}/token",
        client_id="client",
        client_secret="secret",
    )
    try:
        connector = ConversationalAgentsConnector(
            tac, DF_AGENT, credentials=credentials, api_base_url=url
        )
        answer = await connector.rest.post_json(f"{url}/v3/x:detectIntent", {})
    finally:
        await tac.aclose()
    assert answer["queryResult"]["responseMessages"] == [{"text": {"text": ["ok"]}}]
    stale, refresh, fresh = stand_in.calls
    assert stale.headers["authorization"] == "Bearer ya29.stale"
    assert refresh.path == "/token"
    assert "grant_type=refresh_token" in refresh.body
    assert fresh.headers["authorization"] == f"Bearer {TOKEN}"
    assert fresh.headers["x-goog-user-project"] == "acme"  # user credentials: the quota project
    assert credentials.token == TOKEN


def test_resource_names_and_defaults_are_checked() -> None:
    tac = bare_tac()
    with pytest.raises(ValueError, match="projects/<project>/locations/<location>/agents"):
        ConversationalAgentsConnector(tac, "agents/support")
    with pytest.raises(ValueError, match="apps/<app-id>"):
        CXAgentStudioConnector(tac, DF_AGENT)
    with pytest.raises(ValueError, match="apps/<app-id>"):
        VoiceS2SChannel(tac, DF_AGENT)
    with pytest.raises(ValueError, match="reasoningEngines"):
        StudioAgentEngineConnector(tac, "projects/acme/locations/us/agents/1")
    df = ConversationalAgentsConnector(bare_tac(), "projects/p/locations/global/agents/a")
    assert df.base_url == "https://dialogflow.googleapis.com"
    regional = StudioAgentEngineConnector(bare_tac(), ENGINE)
    assert regional.base_url == f"https://us-central1-aiplatform.googleapis.com/v1/{ENGINE}"
    assert dialogflow_session_id("conv_1") == dialogflow_session_id("conv_1")
    assert len(dialogflow_session_id("conv_" + "x" * 60)) == 36


# -- CX Agent Studio (CES) ---------------------------------------------------------------------


def ces_reply(*texts: str, end: dict[str, Any] | None = None) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = [{"text": t} for t in texts]
    if end is not None:
        outputs.append({"endSession": {"metadata": end}})
    return {"outputs": outputs}


async def test_cx_agent_studio_on_sms_opens_a_new_session_after_end(start_app, google) -> None:
    stand_in, url = google
    replies = iter(
        [ces_reply("Hi! How can I help?"), ces_reply("Bye.", end={}), ces_reply("Hello again.")]
    )
    stand_in.ces = lambda body: next(replies)
    connectors: list[CXAgentStudioConnector] = []

    def build(tac: Any) -> list[Any]:
        connectors.append(
            CXAgentStudioConnector(
                tac,
                CES_APP,
                sms_config={"memory_mode": "always"},
                token_provider=token,
                api_base_url=url,
            )
        )
        return connectors[0].channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    assert connectors[0].voice is None  # no voice_config, no voice channel
    assert connectors[0].voice_s2s is None
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("hi")).text == "Hi! How can I help?"
    assert (await customer.ask("bye")).text == "Bye."
    assert (await customer.ask("one more thing")).text == "Hello again."
    cid = customer.conversation_id
    sessions = [c.body["config"]["session"] for c in stand_in.of(":runSession")]
    base = f"{CES_APP}/sessions/{cid}"
    assert sessions == [base, base, f"{base}-1"]
    assert stand_in.of(":runSession")[0].path == f"/v1/{base}:runSession"
    inputs = [c.body["inputs"][0]["text"] for c in stand_in.of(":runSession")]
    assert inputs[0].startswith("# Customer Context")
    assert inputs[0].endswith("\n\nhi")
    assert inputs[1:] == ["bye", "one more thing"]


async def test_cx_agent_studio_end_session_hangs_up_a_call(start_app, google) -> None:
    stand_in, url = google
    replies = iter(
        [ces_reply("Your order ships Monday."), ces_reply(end={"session_escalated": False})]
    )
    stand_in.ces = lambda body: next(replies)
    connectors: list[CXAgentStudioConnector] = []

    def build(tac: Any) -> list[Any]:
        connectors.append(
            CXAgentStudioConnector(
                tac,
                CES_APP,
                voice_config=VoiceChannelConfig(),
                token_provider=token,
                api_base_url=url,
            )
        )
        return connectors[0].channels.messaging

    app = await start_app(
        channels=build, setup=lambda tac: None, voice=lambda tac: connectors[0].voice
    )
    assert connectors[0].voice is connectors[0].voice_cascaded is connectors[0].channels.voice
    call = await app.sandbox.call()
    assert (await call.ask("Where is my order?")).text == "Your order ships Monday."
    assert (await call.ask("ok thanks")).text == "Thank you for calling. Goodbye!"
    ended = await call.wait_ended()
    assert ended["handoffData"] == "call_ended"
    assert [c.body["inputs"][0]["text"] for c in stand_in.of(":runSession")][1] == "ok thanks"


# -- Agent Studio apps on Agent Engine ---------------------------------------------------------


class DeployedAgent:
    """What ``vertexai.Client().agent_engines.get(...)`` returns, as far as the connector reads."""

    class api_resource:  # the SDK's attribute name
        name = ENGINE


async def test_studio_agent_engine_on_sms_and_a_call(start_app) -> None:
    llm = ScriptedLlm(script=["Hello from Agent Studio.", "It ships Monday."])
    stand_in = GoogleStandIn(agent=Agent(name="studio_app", model=llm))
    connectors: list[StudioAgentEngineConnector] = []
    async with serve_app(stand_in.app) as url:

        def build(tac: Any) -> list[Any]:
            connectors.append(
                StudioAgentEngineConnector(
                    tac,
                    DeployedAgent(),
                    sms_config={"memory_mode": "always"},
                    token_provider=lambda: TOKEN,
                    api_base_url=url,
                )
            )
            return connectors[0].channels.messaging

        app = await start_app(
            channels=build, setup=lambda tac: None, voice=lambda tac: connectors[0].voice
        )
        customer = app.sandbox.customer("sms")
        assert (await customer.ask("hi")).text == "Hello from Agent Studio."
        cid = str(customer.conversation_id)
        (created,) = stand_in.of("/sessions")
        session_id = created.query["sessionId"]
        assert session_id == cid.lower().replace("_", "-").strip("-")
        assert created.path == f"/v1/{ENGINE}/sessions"
        query = stand_in.of(":streamQuery")[0].body["input"]
        assert query["session_id"] == session_id
        assert query["message"].startswith("<MEMORY>\n# Customer Context")
        assert query["message"].endswith("<USER_MESSAGE>\nhi\n</USER_MESSAGE>")
        await app.tac.end_session(cid)
        (deleted,) = [c for c in stand_in.calls if c.method == "DELETE"]
        assert deleted.path == f"/v1/{ENGINE}/sessions/{session_id}"
        assert (
            await stand_in.sessions.list_sessions(app_name="engine", user_id=None)
        ).sessions == []

        call = await app.sandbox.call()
        assert (await call.ask("When does it ship?")).text == "It ships Monday."
        await call.hang_up()
    assert texts(llm.seen[1])[-1][1].endswith("<USER_MESSAGE>\nWhen does it ship?\n</USER_MESSAGE>")


async def test_studio_agent_engine_reuses_a_session_that_exists(start_app) -> None:
    llm = ScriptedLlm(script=["First.", "Second."])
    stand_in = GoogleStandIn(agent=Agent(name="studio_app", model=llm))
    async with serve_app(stand_in.app) as url:
        made: list[StudioAgentEngineConnector] = []

        def build(tac: Any) -> list[Any]:
            made.append(
                StudioAgentEngineConnector(tac, ENGINE, token_provider=token, api_base_url=url)
            )
            return made[0].channels.messaging

        app = await start_app(channels=build, setup=lambda tac: None)
        customer = app.sandbox.customer("sms")
        assert (await customer.ask("one")).text == "First."
        made[0]._sessions.clear()  # as after a restart: the session is still on Agent Engine
        assert (await customer.ask("two")).text == "Second."
    first, second = stand_in.of("/sessions")
    assert first.query == second.query
    assert ("model", "First.") in texts(llm.seen[1])  # the same session, its history kept
    message = stand_in.of(":streamQuery")[1].body["input"]["message"]
    assert message == "<USER_MESSAGE>\ntwo\n</USER_MESSAGE>"


# -- CX Agent Studio native speech-to-speech (Media Streams <-> CES BidiRunSession) ------------


class CESBidiStandIn:
    """CES ``BidiRunSession`` over a real WebSocket: after ``listen_ms`` of the caller's audio,
    speaks ``speak_ms`` of a tone (LINEAR16, 48 kHz) and ends the session."""

    def __init__(self, listen_ms: int = 200, speak_ms: int = 600) -> None:
        self.listen_ms = listen_ms
        self.speak_ms = speak_ms
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.messages: list[dict[str, Any]] = []
        self.audio_in = 0  # bytes of LINEAR16 received

    async def __call__(self, socket: Any) -> None:
        self.paths.append(socket.request.path)
        self.headers.append({k.lower(): v for k, v in socket.request.headers.raw_items()})
        spoke = False
        async for raw in socket:
            message = json.loads(raw)
            audio = message.get("realtimeInput", {}).get("audio")
            if audio is None:
                self.messages.append(message)
                continue
            self.audio_in += len(base64.b64decode(audio))
            if not spoke and self.audio_in >= self.listen_ms * 32:  # 16 kHz, 16-bit
                spoke = True
                tone = array("h", [8000, -8000] * 480).tobytes()  # 20 ms at 48 kHz
                for _ in range(self.speak_ms // 20):
                    payload = base64.b64encode(tone).decode()
                    await socket.send(json.dumps({"sessionOutput": {"audio": payload}}))
                await socket.send(json.dumps({"endSession": {"metadata": {}}}))


async def test_cx_agent_studio_speech_to_speech_through_media_streams() -> None:
    from websockets.asyncio.server import serve

    from tac_sandbox import StreamCaller
    from tests.voice._harness import ACCOUNT, AGENT_NUMBER, VoiceApp
    from tests.voice._harness import TOKEN as AUTH_TOKEN

    ces = CESBidiStandIn()
    async with serve(ces, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        connectors: list[CXAgentStudioConnector] = []

        def make(tac: Any) -> Any:
            connectors.append(
                CXAgentStudioConnector(
                    tac,
                    CES_APP,
                    voice_config=VoiceS2SConfig(welcome_greeting="Hi!", deployment_id="dep-1"),
                    token_provider=token,
                    api_base_url=f"http://127.0.0.1:{port}",
                )
            )
            return connectors[0].voice

        app = VoiceApp(channel_factory=make)
        ended: list[Any] = []
        async with app:
            app.tac.on_conversation_ended(ended.append)
            caller = StreamCaller(
                app.url, account_sid=ACCOUNT, auth_token=AUTH_TOKEN, to=AGENT_NUMBER
            )
            async with caller:
                await caller.dial()
                await caller.wait_until_heard(600, timeout=10)
                await caller.wait_ended(timeout=10)  # CES ended the session: the call is over
            await app.until(lambda: bool(ended))
    connector = connectors[0]
    assert connector.voice is connector.voice_s2s
    assert isinstance(connector.voice_s2s, VoiceS2SChannel)
    assert connector.voice_cascaded is None
    assert caller.heard_ms == 600  # every word heard before the hang-up
    assert ces.paths == ["/ws/google.cloud.ces.v1.SessionService/BidiRunSession/locations/us"]
    assert ces.headers[0]["authorization"] == f"Bearer {TOKEN}"
    config, kickoff = ces.messages[:2]
    assert config["config"] == {
        "session": f"{CES_APP}/sessions/{ended[0].conversation_id}",
        "inputAudioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": 16000},
        "outputAudioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": 48000},
        "deployment": "dep-1",
    }
    assert kickoff == {"realtimeInput": {"text": "Hi!"}}
    assert ces.audio_in >= 200 * 32  # the caller's audio, at 16 kHz


def test_mulaw_and_resampling() -> None:
    from tac_google.connectors.cx_agent_studio.voice_s2s._audio import (
        Downsampler,
        Upsampler,
        mulaw_decode,
        mulaw_encode,
    )

    assert mulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80])).tolist() == [0, 0, -32124, 32124]
    assert mulaw_encode([0, 32767, -32768, 1000]) == bytes([0xFF, 0x80, 0x00, 0xCE])
    assert all(
        abs(mulaw_decode(mulaw_encode([s]))[0] - s) <= max(8, abs(s) // 16)
        for s in range(-32000, 32000, 37)
    )
    up = Upsampler()
    pcm = array("h")
    pcm.frombytes(up.convert(mulaw_encode([1000] * 160)))
    assert len(pcm) == 320  # 20 ms at 16 kHz
    assert pcm[0] == mulaw_decode(mulaw_encode([1000]))[0] // 2  # from the silence before
    assert set(pcm[1:]) == {mulaw_decode(mulaw_encode([1000]))[0]}
    down = Downsampler(48000)
    assert down.convert(array("h", [600] * 965).tobytes()) == mulaw_encode([600] * 160)
    assert len(down.convert(array("h", [600] * 1).tobytes())) == 1  # 5 left over + 1
    with pytest.raises(ValueError, match="multiple of 8000"):
        Downsampler(44100)


async def test_dialogflow_handoff_without_a_studio_flow_ends_the_call(google) -> None:
    from tests.voice._harness import VoiceApp

    stand_in, url = google
    handoff = {"metadata": {"queue": "billing"}}
    stand_in.dialogflow = lambda body: df_text("Transferring you.", liveAgentHandoff=handoff)
    app = VoiceApp(
        channel_factory=lambda tac: (
            ConversationalAgentsConnector(
                tac, DF_AGENT, token_provider=token, api_base_url=url
            ).voice
        )
    )
    async with app:
        async with app.call() as call:
            await call.say("A person please")
            assert (await call.reply())[0] == "Transferring you."
            assert await call.frame() == {"type": "end", "handoffData": '{"queue": "billing"}'}
        await app.settled()


def test_agent_ids_are_checked_with_the_form_they_need() -> None:
    from tac_google.connectors._rest import parse_agent_id

    assert parse_agent_id("/projects/p/locations/us-east1/agents/a/", "agents") == (
        "projects/p/locations/us-east1/agents/a",
        "p",
        "us-east1",
    )
    with pytest.raises(ValueError, match=r"agent_id must be '.+/agents/<agent-id>', got 'a'"):
        parse_agent_id("a", "agents")
    with pytest.raises(ValueError, match=r"'.+/apps/<app-id>', got '.+/agents/a'"):
        parse_agent_id("projects/p/locations/l/agents/a", "apps")
