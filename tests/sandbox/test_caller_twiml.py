"""Pure parts of the caller: TwiML checks, signatures, ConversationRelay message validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tac_sandbox._signing import sign_form, sign_websocket
from tac_sandbox._twiml import TwimlError, parse_relay_twiml
from tac_sandbox.phone.caller import validate_app_message

pytestmark = pytest.mark.unit

EXAMPLE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "twilio-examples"
    / "twiml-connect-conversation-relay.xml"
)
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="https://agent.example.com/'
    'conversation-relay-callback"><ConversationRelay conversationConfiguration="conv_configuration'
    '_11xdgxvf5tyw1swz67d269h6m0" dtmfDetection="true" interruptible="any" language="en-US" '
    'transcriptionProvider="Deepgram" ttsProvider="ElevenLabs" url="wss://agent.example.com/ws" '
    'welcomeGreeting="Hello! How can I assist you today?"><Language code="es-MX" speechModel='
    '"nova-3-general" transcriptionProvider="Deepgram" ttsProvider="Google" '
    'voice="es-MX-Standard-A" /><Parameter name="profileId" '
    'value="mem_profile_1rh5048d9qrfn67babyc2dpgcr" />'
    "</ConversationRelay></Connect></Response>"
)


def test_parses_every_attribute_language_and_parameter() -> None:
    parsed = parse_relay_twiml(TWIML)
    assert parsed.url == "wss://agent.example.com/ws"
    assert parsed.action == "https://agent.example.com/conversation-relay-callback"
    assert parsed.action_method == "POST"
    assert parsed.conversation_configuration == "conv_configuration_11xdgxvf5tyw1swz67d269h6m0"
    assert parsed.welcome_greeting == "Hello! How can I assist you today?"
    assert parsed.flag("dtmfDetection")
    assert not parsed.flag("partialPrompts")
    assert parsed.attributes["ttsProvider"] == "ElevenLabs"
    assert parsed.languages == [
        {
            "code": "es-MX",
            "speechModel": "nova-3-general",
            "transcriptionProvider": "Deepgram",
            "ttsProvider": "Google",
            "voice": "es-MX-Standard-A",
        }
    ]
    assert parsed.parameters == {"profileId": "mem_profile_1rh5048d9qrfn67babyc2dpgcr"}
    assert parsed.warnings == []


def test_parses_the_shared_example() -> None:
    assert parse_relay_twiml(EXAMPLE.read_text()) == parse_relay_twiml(TWIML)


def test_relative_action_resolves_against_the_request_url() -> None:
    twiml = '<Response><Connect action="/done" method="GET"><ConversationRelay url="ws://h/ws"/>'
    parsed = parse_relay_twiml(twiml + "</Connect></Response>", "http://app:8000/twiml")
    assert parsed.action == "http://app:8000/done"
    assert parsed.action_method == "GET"


def test_say_before_connect_is_kept_and_unknown_attributes_warn() -> None:
    parsed = parse_relay_twiml(
        "<Response><Say>One moment</Say><Pause/><Connect>"
        '<ConversationRelay url="wss://h/ws" shiny="yes"/></Connect></Response>'
    )
    assert parsed.said_before == ["One moment"]
    assert parsed.warnings == ["<ConversationRelay> has an unknown attribute 'shiny'"]


@pytest.mark.parametrize(
    ("twiml", "message"),
    [
        ("", "empty"),
        ("<Reply/>", "root element must be <Response>"),
        ('<Response><Connect method="PUT"><ConversationRelay url="wss://h"/></Connect>'
         "</Response>", "method"),
        ('<Response><Connect action="ftp://x"><ConversationRelay url="wss://h"/></Connect>'
         "</Response>", "action"),
        ('<Response><Connect><Stream url="wss://h"/></Connect></Response>', "<Stream>"),
        ('<Response><Connect><ConversationRelay url="wss://h" dtmfDetection="yes"/></Connect>'
         "</Response>", "dtmfDetection"),
        ('<Response><Connect><ConversationRelay url="wss://h" language="English!"/></Connect>'
         "</Response>", "language code"),
        ('<Response><Connect><ConversationRelay url="wss://h" speechTimeout="soon"/></Connect>'
         "</Response>", "speechTimeout"),
        ('<Response><Connect><ConversationRelay url="wss://h"><Language/></ConversationRelay>'
         "</Connect></Response>", "<Language> needs a code"),
        ('<Response><Connect><ConversationRelay url="wss://h"><Parameter value="1"/>'
         "</ConversationRelay></Connect></Response>", "<Parameter> needs a name"),
        ('<Response><Connect><ConversationRelay url="wss://h"><Say/></ConversationRelay>'
         "</Connect></Response>", "cannot hold <Say>"),
    ],
)  # fmt: skip
def test_twilio_would_reject(twiml: str, message: str) -> None:
    with pytest.raises(TwimlError, match=message):
        parse_relay_twiml(twiml)


def test_signatures_match_the_published_vectors() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    assert sign_form(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign_websocket("wss://example.ngrok.app/ws", "12345") == "GNNplFfzBVRRVS82YDV40OR1IDo="
    query = "wss://example.ngrok.app/ws?token=abc123"
    assert sign_websocket(query, "12345") == "yoKyqDiXgODLAnsz5t8xiwBrzLU="


@pytest.mark.parametrize(
    "message",
    [
        {"type": "text", "token": "Hi", "last": True, "lang": "en-US", "interruptible": False},
        {"type": "text", "token": ""},
        {"type": "play", "source": "https://x/a.mp3", "loop": 0, "preemptible": True},
        {"type": "sendDigits", "digits": "9www4085551212"},
        {"type": "language", "ttsLanguage": "sv-SE"},
        {"type": "end"},
        {"type": "end", "handoffData": "{}"},
    ],
)
def test_valid_app_messages(message: dict[str, object]) -> None:
    assert validate_app_message(message) is None


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ([], "not a JSON object"),
        ({"token": "x"}, "no type"),
        ({"type": "shout"}, "unknown message type 'shout'"),
        ({"type": "text"}, "text.token"),
        ({"type": "text", "token": None}, "text.token"),
        ({"type": "text", "token": "x", "last": "yes"}, "text.last must be a bool"),
        ({"type": "play"}, "play.source"),
        ({"type": "play", "source": "u", "loop": -1}, "play.loop"),
        ({"type": "sendDigits", "digits": "12a"}, "sendDigits.digits"),
        ({"type": "sendDigits", "digits": ""}, "sendDigits.digits"),
        ({"type": "language"}, "ttsLanguage or transcriptionLanguage"),
        ({"type": "end", "handoffData": {"a": 1}}, "end.handoffData must be a str"),
    ],
)
def test_invalid_app_messages(message: object, problem: str) -> None:
    assert problem in (validate_app_message(message) or "")
