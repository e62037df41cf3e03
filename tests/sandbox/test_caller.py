"""The ConversationRelay caller against a real agent served on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from _caller_support import HANDOFF_DATA, AgentState, agent_app, relay_twiml, serve

from tac_sandbox._settings import SandboxIdentity
from tac_sandbox.phone.caller import MALFORMED_LIMIT, CallEnded, Caller, CallerError, CallFailed

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ACCOUNT = "AC" + "1" * 32
TOKEN = "secret-auth-token"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent_server() -> AsyncIterator[AgentState]:
    state = AgentState(auth_token=TOKEN)
    async with serve(agent_app(state)) as url:
        state.base_url = url
        yield state


@pytest_asyncio.fixture(loop_scope="module")
async def agent(agent_server: AgentState) -> AgentState:
    agent_server.reset(TOKEN)
    return agent_server


def _caller(agent: AgentState, **options: Any) -> Caller:
    return Caller(agent.base_url, account_sid=ACCOUNT, auth_token=TOKEN, **options)


@pytest_asyncio.fixture(loop_scope="module")
async def caller(agent: AgentState) -> AsyncIterator[Caller]:
    async with _caller(agent, from_="+14155550123", to="+18005550100") as c:
        yield c


async def test_dial_posts_signed_incoming_call_fields(agent: AgentState, caller: Caller) -> None:
    await caller.dial(params={"Extra": "yes"})
    request = agent.twiml_requests[0]
    assert request["signature_ok"]
    fields = request["fields"]
    assert fields["CallSid"] == caller.call_sid
    assert fields["CallSid"].startswith("CA")
    assert fields["AccountSid"] == ACCOUNT
    assert (fields["From"], fields["To"]) == ("+14155550123", "+18005550100")
    assert (fields["Caller"], fields["Called"]) == ("+14155550123", "+18005550100")
    assert fields["CallStatus"] == "ringing"
    assert fields["Direction"] == "inbound"
    assert fields["ApiVersion"] == "2010-04-01"
    assert fields["CallerCountry"] == "US"
    assert fields["FromCountry"] == "US"
    assert fields["Extra"] == "yes"


async def test_setup_carries_call_fields_and_custom_parameters(agent: AgentState) -> None:
    agent.twiml = lambda s: relay_twiml(
        s.ws_url,
        parameters={"profileId": "mem_profile_1", "tier": "gold"},
        welcomeGreeting="Hi there!",
    )
    async with _caller(agent, from_="+14155550123", caller_name="Ada") as caller:
        await caller.dial(custom_parameters={"tier": "platinum", "extra": "1"})
        await caller.say("hello")
        await caller.next_reply()
    assert agent.ws_signature_ok == [True]
    setup = agent.frames[0]
    assert setup["type"] == "setup"
    assert setup["callSid"] == caller.call_sid
    assert setup["sessionId"].startswith("VX")
    assert len(setup["sessionId"]) == 34
    assert setup["accountSid"] == ACCOUNT
    assert (setup["from"], setup["to"]) == ("+14155550123", "+15005550006")
    assert setup["direction"] == "inbound"
    assert setup["callStatus"] == "RINGING"
    assert setup["callType"] == "PSTN"
    assert setup["callerName"] == "Ada"
    assert setup["customParameters"] == {
        "profileId": "mem_profile_1",
        "tier": "platinum",
        "extra": "1",
    }
    assert caller.transcript[0].kind == "greeting"
    assert caller.transcript[0].text == "Hi there!"


async def test_say_collects_streamed_tokens_into_a_reply(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    reply = await caller.ask("where is my order")
    assert reply == "You said: where is my order"
    assert reply.tokens == ("You ", "said: ", "where ", "is ", "my ", "order", "")
    assert reply.frames[-1] == {"type": "text", "token": "", "last": True}
    assert not reply.interrupted
    assert reply.first_token_delay is not None
    assert reply.first_token_delay >= 0
    prompt = agent.received("prompt")[0]
    assert prompt == {
        "type": "prompt",
        "voicePrompt": "where is my order",
        "lang": "en-US",
        "last": True,
    }
    second = await caller.ask("thanks")
    assert second == "You said: thanks"
    assert second.position == 1
    assert [line.speaker for line in caller.transcript] == ["caller", "agent", "caller", "agent"]
    assert caller.assert_heard("my order") is reply


async def test_partial_prompts_go_first_with_last_false(agent: AgentState, caller: Caller) -> None:
    agent.twiml = lambda s: s.default_twiml(partialPrompts="true")
    await caller.dial()
    await caller.say("check my order", partials=True)
    assert await caller.next_reply() == "You said: check my order"
    prompts = [(p["voicePrompt"], p["last"]) for p in agent.received("prompt")]
    assert prompts == [("check", False), ("check my", False), ("check my order", True)]
    await caller.say("next one", partials=["nex", "next o"])
    await caller.next_reply()
    assert [(p["voicePrompt"], p["last"]) for p in agent.received("prompt")][3:] == [
        ("nex", False),
        ("next o", False),
        ("next one", True),
    ]


async def test_partial_prompts_need_the_twiml_attribute(caller: Caller) -> None:
    await caller.dial()
    with pytest.raises(CallerError, match="partialPrompts"):
        await caller.say("hello", partials=True)


async def test_interrupt_defaults_to_what_was_heard(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    await caller.say("story")
    assert await caller.wait_for(lambda: caller.partial_reply == "Once upon a time", 5)
    frame = await caller.interrupt()
    assert frame["utteranceUntilInterrupt"] == "Once upon a time"
    assert isinstance(frame["durationUntilInterruptMs"], int)
    reply = await caller.next_reply()
    assert reply.interrupted
    assert reply.heard == "Once upon a time"
    assert reply == "Once upon a time"
    received = agent.received("interrupt")[0]
    assert received["utteranceUntilInterrupt"] == "Once upon a time"


async def test_interrupt_with_explicit_utterance(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    await caller.interrupt("Once upon", duration_ms=460)
    assert agent.interrupted.is_set() or await caller.wait_for(agent.interrupted.is_set, 5)
    assert agent.received("interrupt")[0] == {
        "type": "interrupt",
        "utteranceUntilInterrupt": "Once upon",
        "durationUntilInterruptMs": 460,
    }


async def test_interrupt_refused_when_speech_cannot_interrupt(agent: AgentState) -> None:
    agent.twiml = lambda s: s.default_twiml(interruptible="none")
    async with _caller(agent) as caller:
        await caller.dial()
        with pytest.raises(CallerError, match="interruptible='none'"):
            await caller.interrupt()


async def test_press_sends_one_dtmf_frame_per_digit(agent: AgentState, caller: Caller) -> None:
    agent.twiml = lambda s: s.default_twiml(dtmfDetection="true")
    await caller.dial()
    await caller.press("1#")
    assert await caller.next_reply() == "You pressed 1"
    assert await caller.next_reply() == "You pressed #"
    assert agent.received("dtmf") == [
        {"type": "dtmf", "digit": "1"},
        {"type": "dtmf", "digit": "#"},
    ]
    with pytest.raises(ValueError, match="digits"):
        await caller.press("x")


async def test_press_needs_dtmf_detection(caller: Caller) -> None:
    await caller.dial()
    with pytest.raises(CallerError, match="dtmfDetection"):
        await caller.press("1")


async def test_hang_up_closes_and_posts_the_signed_action_callback(
    agent: AgentState, caller: Caller
) -> None:
    await caller.dial()
    await caller.ask("hi")
    await caller.hang_up()
    assert caller.ended
    assert caller.end_reason == "hangup"
    assert caller.status == "completed"
    assert agent.close_codes == [1000]
    callback = agent.callbacks[0]
    assert callback["signature_ok"]
    fields = callback["fields"]
    assert fields["CallSid"] == caller.call_sid
    assert fields["AccountSid"] == ACCOUNT
    assert fields["CallStatus"] == "completed"
    assert fields["SessionStatus"] == "ended"
    assert fields["SessionId"] == caller.session_id
    assert fields["Direction"] == "inbound"
    assert (fields["From"], fields["To"]) == (caller.from_, caller.to)
    assert fields["SessionDuration"].isdigit()
    assert "HandoffData" not in fields
    assert caller.transcript[-1].text == "Goodbye"
    with pytest.raises(CallEnded):
        await caller.say("anyone there?")
    await caller.hang_up()
    assert len(agent.callbacks) == 1


async def test_end_with_handoff_data_posts_it_verbatim(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    await caller.say("handoff")
    assert await caller.next_reply() == "Transferring you."
    await caller.wait_ended()
    assert caller.end_reason == "handoff"
    assert caller.handoff_data == HANDOFF_DATA
    fields = agent.callbacks[0]["fields"]
    assert agent.callbacks[0]["signature_ok"]
    assert fields["HandoffData"] == HANDOFF_DATA
    assert fields["SessionStatus"] == "ended"
    assert fields["CallStatus"] == "in-progress"
    with pytest.raises(CallEnded):
        await caller.next_reply(timeout=1)


async def test_end_without_handoff_data(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    await caller.say("bye")
    await caller.wait_ended()
    assert caller.end_reason == "app-ended"
    assert caller.handoff_data is None
    assert "HandoffData" not in agent.callbacks[0]["fields"]


async def test_app_frames_play_digits_and_language_are_recorded(
    agent: AgentState, caller: Caller
) -> None:
    await caller.dial()
    reply = await caller.ask("options")
    assert reply == "Hola"
    assert reply.frames[0]["lang"] == "es-MX"
    kinds = [line.kind for line in caller.transcript if line.speaker == "agent"]
    assert kinds == ["play", "digits", "language", "reply"]
    received = [e.type for e in caller.events if e.kind == "received"]
    assert received == ["play", "sendDigits", "language", "text"]
    await caller.ask("gracias")
    assert agent.received("prompt")[-1]["lang"] == "es-MX"


async def test_malformed_frames_get_error_frames_then_1007(
    agent: AgentState, caller: Caller
) -> None:
    await caller.dial()
    await caller.say(f"garbage {MALFORMED_LIMIT}")
    await caller.wait_ended()
    assert caller.end_reason == "malformed"
    assert caller.close_code == 1007
    assert agent.close_codes == [1007]
    errors = agent.received("error")
    assert len(errors) == MALFORMED_LIMIT
    assert errors[0]["description"] == 'Invalid message received: {"type": "shout"}'
    assert errors[1]["description"] == "Invalid message received: not json"
    fields = agent.callbacks[0]["fields"]
    assert fields["SessionStatus"] == "failed"
    assert fields["ErrorCode"] == "64105"


async def test_a_valid_frame_resets_the_malformed_count(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    await caller.say(f"garbage {MALFORMED_LIMIT - 1} then ok")
    assert await caller.next_reply() == "still here"
    assert await caller.ask("hi") == "You said: hi"
    assert len(agent.received("error")) == 2 * (MALFORMED_LIMIT - 1)
    assert caller.connected
    invalid = [e for e in caller.events if e.type == "invalid"]
    assert invalid[-1].data["problem"] == "text.token is required and must be a string"


async def test_app_closing_the_socket_fails_the_session(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    await caller.say("close")
    await caller.wait_ended()
    assert caller.end_reason == "app-closed"
    assert caller.close_code == 1011
    fields = agent.callbacks[0]["fields"]
    assert (fields["SessionStatus"], fields["ErrorMessage"]) == ("failed", "WebSocket Ended")


@pytest.mark.parametrize(
    ("twiml", "message"),
    [
        ("<Response><Say>Hello</Say><Hangup/></Response>", "<Hangup> comes before <Connect>"),
        ("<Response><Say>Hello</Say></Response>", "no <Connect>"),
        ("<Response><Connect><ConversationRelay /></Connect></Response>", "needs a url"),
        ("<Response><Connect></Connect></Response>", "exactly one <ConversationRelay>"),
        ("not xml <", "not well-formed"),
        (
            '<Response><Connect><ConversationRelay url="https://x/ws"/></Connect></Response>',
            "wss://",
        ),
        (
            '<Response><Connect><ConversationRelay url="wss://x/ws" interruptible="maybe"/>'
            "</Connect></Response>",
            "interruptible",
        ),
    ],
)
async def test_bad_twiml_fails_the_call_clearly(
    agent: AgentState, twiml: str, message: str
) -> None:
    agent.twiml = lambda _: twiml
    async with _caller(agent) as caller:
        with pytest.raises(CallFailed, match=message):
            await caller.dial()
        assert caller.status == "failed"
    assert agent.ws_signature_ok == []


async def test_twiml_request_error_fails_the_call(agent: AgentState) -> None:
    agent.twiml_status = 500
    async with _caller(agent) as caller:
        with pytest.raises(CallFailed, match="with 500: agent exploded"):
            await caller.dial()


async def test_a_wrongly_signed_twiml_request_is_refused_by_the_app(agent: AgentState) -> None:
    async with Caller(agent.base_url, account_sid=ACCOUNT, auth_token="other-token") as caller:
        with pytest.raises(CallFailed, match="with 403"):
            await caller.dial()
    assert agent.twiml_requests[0]["signature_ok"] is False
    assert agent.ws_signature_ok == []


async def test_forged_websocket_signature_is_closed_1008(agent: AgentState) -> None:
    # The TwiML request is fine, but the socket's signature is made with another token.
    wrong = _caller(agent)
    wrong_token = "not-the-token"

    def twiml(state: AgentState) -> str:
        wrong.auth_token = wrong_token
        return state.default_twiml()

    agent.twiml = twiml
    with pytest.raises(CallFailed, match="refused the WebSocket"):
        await wrong.dial()
    await wrong.aclose()
    assert agent.ws_signature_ok == [False]


async def test_websocket_signature_folds_the_query_in(agent: AgentState, caller: Caller) -> None:
    agent.twiml = lambda s: relay_twiml(s.ws_url + "?token=abc123&b=2")
    await caller.dial()
    assert agent.ws_signature_ok == [True]
    assert await caller.ask("hi") == "You said: hi"


async def test_next_reply_times_out_with_the_transcript(caller: Caller) -> None:
    await caller.dial()
    with pytest.raises(TimeoutError, match="transcript"):
        await caller.next_reply(timeout=0.05)


async def test_dial_twice_is_refused(caller: Caller) -> None:
    await caller.dial()
    with pytest.raises(CallerError, match="already dialled"):
        await caller.dial()


async def test_events_record_every_frame(agent: AgentState, caller: Caller) -> None:
    await caller.dial()
    await caller.ask("hi")
    sent = [e.type for e in caller.events if e.kind == "sent"]
    assert sent == ["setup", "prompt"]
    http = [e.type for e in caller.events if e.kind == "http"]
    assert http[:3] == ["twiml-request", "twiml-response", "websocket-connect"]
    assert json.loads(json.dumps([e.to_json() for e in caller.events]))


async def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="app_url"):
        Caller("127.0.0.1:8000", account_sid=ACCOUNT, auth_token=TOKEN)
    with pytest.raises(ValueError, match="account_sid"):
        Caller("http://x", account_sid="XX", auth_token=TOKEN)
    with pytest.raises(ValueError, match="direction"):
        Caller("http://x", account_sid=ACCOUNT, auth_token=TOKEN, direction="sideways")


async def test_fluent_expectations_print_the_transcript(caller: Caller) -> None:
    await caller.dial()
    await caller.say("hello")
    reply = await caller.expect_reply("hello", equals="You said: hello")
    assert reply.position == 0
    await caller.say("again")
    with pytest.raises(AssertionError, match=r"(?s)containing 'nope'.*>> .*agent: You said: again"):
        await caller.expect_reply("nope")
    await caller.say("bye")
    with pytest.raises(AssertionError, match="ended with 'app-ended'"):
        await caller.expect_ended("handoff")
    assert (await caller.expect_ended("app-ended")).handoff_data is None


async def test_from_identity_uses_the_sandbox_account() -> None:
    identity = SandboxIdentity.generate()
    phone = Caller.from_identity(identity, "http://127.0.0.1:9", from_="+14155550100")
    assert (phone.account_sid, phone.auth_token) == (identity.account_sid, identity.auth_token)
    assert phone.to == identity.phone_number
    assert phone.from_ == "+14155550100"


async def test_an_app_closing_right_after_accept_fails_the_session(agent: AgentState) -> None:
    agent.close_after_accept = 1008
    async with _caller(agent) as caller:
        failure: CallFailed | None = None
        try:
            await caller.dial()
        except CallFailed as exc:
            failure = exc
        if failure is None:  # the close came after setup was sent: the session fails as it runs
            await caller.wait_ended()
            assert caller.end_reason == "app-closed"
        else:
            assert "code 1008" in str(failure)
        assert caller.close_code == 1008
    fields = agent.callbacks[0]["fields"]
    assert fields["SessionStatus"] == "failed"
    assert fields["ErrorMessage"] == "WebSocket Ended"
