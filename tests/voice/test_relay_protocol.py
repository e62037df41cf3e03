"""The ConversationRelay state machine: JSON frames in, typed events and JSON frames out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests._examples import EXAMPLES

from tac.channels.voice.conversation_relay._protocol import (
    RelayProtocol,
    RelayProtocolError,
    RelayState,
    RelayStateError,
    UnknownMessage,
)
from tac.models.voice import (
    DTMFMessage,
    ErrorMessage,
    InfoMessage,
    InterruptMessage,
    PromptMessage,
    SetupMessage,
)

pytestmark = pytest.mark.unit


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def example_json(name: str) -> Any:
    return json.loads(example(name))


@pytest.fixture
def relay() -> RelayProtocol:
    protocol = RelayProtocol()
    protocol.receive(example("relay-setup.json"))
    return protocol


def test_setup_must_come_first() -> None:
    protocol = RelayProtocol()
    with pytest.raises(RelayProtocolError, match="first message must be 'setup'"):
        protocol.receive(example("relay-prompt.json"))
    assert protocol.state is RelayState.AWAITING_SETUP


def test_setup_opens_the_session_and_carries_custom_parameters() -> None:
    protocol = RelayProtocol()
    event = protocol.receive(example("relay-setup.json"))
    assert isinstance(event, SetupMessage)
    assert protocol.state is RelayState.OPEN
    assert event.call_sid == "CAe1cd00daf51a4164a268c52c2c3a93f1"
    assert event.custom_parameters == {"profileId": "mem_profile_1rh5048d9qrfn67babyc2dpgcr"}
    assert event.caller_address == "+14155550123"
    assert not event.is_outbound


@pytest.mark.parametrize("direction", ["outbound", "outbound-api", "OUTBOUND"])
def test_outbound_setup_uses_the_called_number_as_customer(direction: str) -> None:
    data = example_json("relay-setup-outbound.json")
    data["direction"] = direction
    event = RelayProtocol().receive(json.dumps(data))
    assert isinstance(event, SetupMessage)
    assert event.is_outbound
    assert event.caller_address == "+14155550123"


def test_setup_twice_is_an_error(relay: RelayProtocol) -> None:
    with pytest.raises(RelayProtocolError, match="twice"):
        relay.receive(example("relay-setup.json"))


def test_setup_without_call_sid_is_refused() -> None:
    with pytest.raises(RelayProtocolError, match="callSid"):
        RelayProtocol().receive('{"type": "setup"}')


def test_final_and_partial_prompts(relay: RelayProtocol) -> None:
    final = relay.receive(example("relay-prompt.json"))
    partial = relay.receive(example("relay-prompt-partial.json"))
    assert isinstance(final, PromptMessage)
    assert final.last is True
    assert final.voice_prompt == "Hi, I'd like to check the status of my order."
    assert final.lang == "en-US"
    assert isinstance(partial, PromptMessage)
    assert partial.last is False


def test_prompt_without_last_is_final(relay: RelayProtocol) -> None:
    event = relay.receive('{"type":"prompt","voicePrompt":"hi"}')
    assert isinstance(event, PromptMessage)
    assert event.last is True


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"prompt","voicePrompt":3,"last":true}',
        '{"type":"prompt","voicePrompt":"x","last":"yes"}',
        '{"type":"prompt","voicePrompt":"x","lang":5}',
    ],
)
def test_malformed_prompts_are_refused(relay: RelayProtocol, frame: str) -> None:
    with pytest.raises(RelayProtocolError, match="invalid prompt"):
        relay.receive(frame)
    assert relay.state is RelayState.OPEN


def test_interrupt_carries_what_was_heard(relay: RelayProtocol) -> None:
    event = relay.receive(example("relay-interrupt.json"))
    assert isinstance(event, InterruptMessage)
    assert event.utterance_until_interrupt == "Your order shipped on Monday and should"
    assert event.duration_until_interrupt_ms == 1240


def test_interrupt_duration_as_string_is_accepted(relay: RelayProtocol) -> None:
    event = relay.receive(
        '{"type":"interrupt","utteranceUntilInterrupt":"a","durationUntilInterruptMs":"460"}'
    )
    assert isinstance(event, InterruptMessage)
    assert event.duration_until_interrupt_ms == 460


def test_dtmf_error_info_and_unknown(relay: RelayProtocol) -> None:
    dtmf = relay.receive(example("relay-dtmf.json"))
    error = relay.receive(example("relay-error.json"))
    info = relay.receive(example("relay-info-tokens-played.json"))
    unknown = relay.receive('{"type":"somethingNew","x":1}')
    assert isinstance(dtmf, DTMFMessage)
    assert dtmf.digit == "1"
    assert isinstance(error, ErrorMessage)
    assert error.description.startswith("Invalid message received")
    assert isinstance(info, InfoMessage)
    assert (info.name, info.value) == ("tokensPlayed", "Your order shipped on Monday.")
    assert isinstance(unknown, UnknownMessage)
    assert unknown.type == "somethingNew"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"no": "type"}', "no 'type'"),
        ('{"type": "dtmf"}', "invalid dtmf"),
    ],
)
def test_broken_frames(relay: RelayProtocol, frame: str, message: str) -> None:
    with pytest.raises(RelayProtocolError, match=message):
        relay.receive(frame)


def test_text_frames_match_twilio_examples(relay: RelayProtocol) -> None:
    assert json.loads(relay.text("Your order shipped ", last=False)) == example_json(
        "relay-text-stream-chunk.json"
    )
    assert relay.reply_open
    assert json.loads(relay.text("", last=True)) == example_json("relay-text-stream-final.json")
    assert not relay.reply_open
    options = relay.text(
        "Please hold while I look that up.",
        last=True,
        lang="en-US",
        interruptible=False,
        preemptible=True,
    )
    assert json.loads(options) == example_json("relay-text-options.json")


def test_tokens_are_not_trimmed_and_keep_unicode(relay: RelayProtocol) -> None:
    frame = relay.text("  ¿Qué tal? ", last=False)
    assert json.loads(frame)["token"] == "  ¿Qué tal? "
    assert "¿" in frame


def test_play_digits_language_match_twilio_examples(relay: RelayProtocol) -> None:
    play = relay.play(
        "https://api.twilio.com/cowbell.mp3", loop=1, preemptible=False, interruptible=True
    )
    assert json.loads(play) == example_json("relay-play.json")
    assert json.loads(relay.send_digits("9www4085551212")) == example_json("relay-send-digits.json")
    language = relay.language(tts="es-MX", transcription="es-MX")
    assert json.loads(language) == example_json("relay-language.json")
    assert json.loads(relay.language(tts="sv-SE")) == {"type": "language", "ttsLanguage": "sv-SE"}


@pytest.mark.parametrize("digits", ["", "12a", "1 2"])
def test_send_digits_validates(relay: RelayProtocol, digits: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        relay.send_digits(digits)


def test_language_needs_one_side(relay: RelayProtocol) -> None:
    with pytest.raises(ValueError, match="tts and/or transcription"):
        relay.language()


def test_play_needs_a_source(relay: RelayProtocol) -> None:
    with pytest.raises(ValueError, match="source"):
        relay.play("")


def test_end_with_handoff_then_nothing_more(relay: RelayProtocol) -> None:
    expected = example_json("relay-end-handoff.json")
    frame = relay.end(expected["handoffData"])
    assert json.loads(frame) == expected
    assert relay.state is RelayState.ENDING
    with pytest.raises(RelayStateError, match="ending"):
        relay.text("too late", last=True)


def test_plain_end(relay: RelayProtocol) -> None:
    assert json.loads(relay.end()) == example_json("relay-end.json")


def test_nothing_is_sent_before_setup_or_after_close(relay: RelayProtocol) -> None:
    with pytest.raises(RelayStateError, match="awaiting_setup"):
        RelayProtocol().text("x", last=True)
    relay.close()
    with pytest.raises(RelayStateError, match="closed"):
        relay.play("https://x/a.mp3")


def test_non_string_token_and_handoff_are_type_errors(relay: RelayProtocol) -> None:
    with pytest.raises(TypeError, match="token"):
        relay.text(5, last=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handoff_data"):
        relay.end({"a": 1})  # type: ignore[arg-type]
