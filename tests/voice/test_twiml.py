"""TwiML: golden output, every ConversationRelay attribute, layering and the action URL rules."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from tests._examples import EXAMPLES

from tac import TAC, TACConfig
from tac.channels.voice import (
    LanguageConfig,
    TwiMLRequest,
    VoiceChannel,
    VoiceChannelConfig,
    VoiceTwiMLOptionsConversationRelay,
    generate_twiml,
)
from tac.channels.voice.conversation_relay.twiml import merge_twiml_options

pytestmark = pytest.mark.unit

ACCOUNT = "AC109031c05318848ba78ba04165baaad1"


def make_tac(**overrides: Any) -> TAC:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT,
        "auth_token": "token",
        "api_key": "SKkey",
        "api_secret": "secret",
        "phone_number": "+18005550100",
        "public_base_url": "https://agent.example.com",
    }
    values.update(overrides)
    return TAC(TACConfig(**values))


def relay_element(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml.split("?>", 1)[1])
    relay = root.find("Connect/ConversationRelay")
    assert relay is not None
    return relay


def test_golden_matches_twilio_example() -> None:
    options = VoiceTwiMLOptionsConversationRelay(
        websocket_url="wss://agent.example.com/ws",
        action_url="https://agent.example.com/conversation-relay-callback",
        conversation_configuration="conv_configuration_11xdgxvf5tyw1swz67d269h6m0",
        dtmf_detection=True,
        interruptible="any",
        language="en-US",
        transcription_provider="Deepgram",
        tts_provider="ElevenLabs",
        welcome_greeting="Hello! How can I assist you today?",
        languages=[
            LanguageConfig(
                code="es-MX",
                speech_model="nova-3-general",
                transcription_provider="Deepgram",
                tts_provider="Google",
                voice="es-MX-Standard-A",
            )
        ],
        custom_parameters={"profileId": "mem_profile_1rh5048d9qrfn67babyc2dpgcr"},
    )
    expected = (EXAMPLES / "twiml-connect-conversation-relay.xml").read_text().strip()
    assert generate_twiml(options=options) == expected


def test_every_attribute_is_rendered_with_twilio_names() -> None:
    options = VoiceTwiMLOptionsConversationRelay(
        websocket_url="wss://h/ws",
        welcome_greeting="Hi",
        welcome_greeting_interruptible="dtmf",
        conversation_configuration="conv_configuration_x",
        language="en-US",
        tts_language="en-GB",
        transcription_language="multi",
        voice="v",
        tts_provider="Google",
        transcription_provider="Google",
        speech_model="telephony",
        profanity_filter=False,
        elevenlabs_text_normalization="on",
        eot_threshold=0.7,
        partial_prompts=True,
        deepgram_smart_format=True,
        speech_timeout="auto",
        interruptible=False,
        interrupt_sensitivity="low",
        report_input_during_agent_speech="speech",
        ignore_backchannel=True,
        preemptible=True,
        dtmf_detection=True,
        background_noise_reduction=True,
        hints="order,refund",
        events="speaker-events tokens-played",
        debug="debugging",
        intelligence_service="GA123",
        extra={"fooBar": True},
    )
    assert generate_twiml(options=options).count("<ConversationRelay ") == 1
    attributes = relay_element(generate_twiml(options=options)).attrib
    assert attributes == {
        "url": "wss://h/ws",
        "welcomeGreeting": "Hi",
        "welcomeGreetingInterruptible": "dtmf",
        "conversationConfiguration": "conv_configuration_x",
        "language": "en-US",
        "ttsLanguage": "en-GB",
        "transcriptionLanguage": "multi",
        "voice": "v",
        "ttsProvider": "Google",
        "transcriptionProvider": "Google",
        "speechModel": "telephony",
        "profanityFilter": "false",
        "elevenlabsTextNormalization": "on",
        "eotThreshold": "0.7",
        "partialPrompts": "true",
        "deepgramSmartFormat": "true",
        "speechTimeout": "auto",
        "interruptible": "none",
        "interruptSensitivity": "low",
        "reportInputDuringAgentSpeech": "speech",
        "ignoreBackchannel": "true",
        "preemptible": "true",
        "dtmfDetection": "true",
        "backgroundNoiseReduction": "true",
        "hints": "order,refund",
        "events": "speaker-events tokens-played",
        "debug": "debugging",
        "intelligenceService": "GA123",
        "fooBar": "true",
    }


def test_extra_cannot_shadow_a_typed_attribute() -> None:
    with pytest.raises(ValueError, match="extra must not set typed attributes"):
        VoiceTwiMLOptionsConversationRelay(extra={"welcomeGreeting": "x"})


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(ValueError, match="welcome_greting"):
        VoiceTwiMLOptionsConversationRelay(welcome_greting="typo")  # type: ignore[call-arg]


def test_generate_needs_a_websocket_url() -> None:
    with pytest.raises(ValueError, match="websocket_url"):
        generate_twiml(options=VoiceTwiMLOptionsConversationRelay())


def test_merge_is_per_field_and_explicit_none_wins() -> None:
    base = VoiceTwiMLOptionsConversationRelay(
        websocket_url="wss://a/ws", action_url="https://a/cb", voice="one"
    )
    top = VoiceTwiMLOptionsConversationRelay(voice="two", action_url=None)
    merged = merge_twiml_options(base, None, top)
    assert merged.websocket_url == "wss://a/ws"
    assert merged.voice == "two"
    assert merged.action_url is None
    assert "<Connect>" in generate_twiml(options=merged)


async def test_default_inbound_twiml_in_relay_only_mode() -> None:
    channel = VoiceChannel(make_tac())
    twiml = await channel.handle_incoming_call(TwiMLRequest(call_sid="CA1"))
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Connect action="https://agent.example.com/conversation-relay-callback">'
        '<ConversationRelay url="wss://agent.example.com/ws" '
        'welcomeGreeting="Hello! How can I assist you today?" /></Connect></Response>'
    )


async def test_http_public_url_gives_ws_and_custom_paths() -> None:
    tac = make_tac(
        public_base_url="http://127.0.0.1:8123",
        voice_websocket_path="/relay",
        voice_action_path="/after",
    )
    relay = relay_element(await VoiceChannel(tac).handle_incoming_call())
    assert relay.attrib["url"] == "ws://127.0.0.1:8123/relay"
    twiml = await VoiceChannel(tac).handle_incoming_call()
    assert 'action="http://127.0.0.1:8123/after"' in twiml


async def test_voice_public_domain_implies_wss() -> None:
    tac = make_tac(public_base_url=None, voice_public_domain="https://example.ngrok.app/")
    twiml = await VoiceChannel(tac).handle_incoming_call()
    assert 'url="wss://example.ngrok.app/ws"' in twiml
    assert 'action="https://example.ngrok.app/conversation-relay-callback"' in twiml


async def test_orchestrator_mode_adds_conversation_configuration() -> None:
    tac = make_tac(conversation_configuration_id="conv_configuration_abc")
    relay = relay_element(await VoiceChannel(tac).handle_incoming_call())
    assert relay.attrib["conversationConfiguration"] == "conv_configuration_abc"


async def test_studio_flow_takes_the_action_url() -> None:
    tac = make_tac(studio_handoff_flow_sid="FW123")
    twiml = await VoiceChannel(tac).handle_incoming_call()
    assert (
        f'action="https://webhooks.twilio.com/v1/Accounts/{ACCOUNT}/Flows/FW123'
        '?Trigger=incomingCall"'
    ) in twiml


async def test_layers_hook_over_channel_defaults_over_host_options() -> None:
    channel = VoiceChannel(
        make_tac(),
        config=VoiceChannelConfig(
            default_twiml_options=VoiceTwiMLOptionsConversationRelay(
                voice="channel-voice", language="en-US"
            )
        ),
    )
    seen: list[TwiMLRequest] = []

    @channel.on_inbound_call_twiml
    def customise(request: TwiMLRequest) -> VoiceTwiMLOptionsConversationRelay:
        seen.append(request)
        return VoiceTwiMLOptionsConversationRelay(
            language="es-MX", custom_parameters={"caller": request.from_number or ""}
        )

    host = VoiceTwiMLOptionsConversationRelay(voice="host-voice", hints="a,b")
    request = TwiMLRequest(call_sid="CA9", from_number="+14155550123")
    twiml = await channel.handle_incoming_call(request, host_twiml_options=host)
    relay = relay_element(twiml)
    assert seen == [request]
    assert relay.attrib["voice"] == "channel-voice"
    assert relay.attrib["language"] == "es-MX"
    assert relay.attrib["hints"] == "a,b"
    params = {p.attrib["name"]: p.attrib["value"] for p in relay.findall("Parameter")}
    assert params == {"caller": "+14155550123"}


async def test_async_hook_returning_none_keeps_defaults() -> None:
    channel = VoiceChannel(make_tac())

    async def nothing(request: TwiMLRequest) -> None:
        return None

    channel.on_inbound_call_twiml(nothing)
    relay = relay_element(await channel.handle_incoming_call(TwiMLRequest()))
    assert relay.attrib["welcomeGreeting"] == "Hello! How can I assist you today?"


async def test_hook_returning_the_wrong_type_is_a_type_error() -> None:
    channel = VoiceChannel(make_tac())
    channel.on_inbound_call_twiml(lambda request: {"voice": "x"})
    with pytest.raises(TypeError, match="on_inbound_call_twiml must return"):
        await channel.handle_incoming_call(TwiMLRequest())


def test_twiml_request_from_form() -> None:
    import json

    form = json.loads((EXAMPLES / "voice-incoming-call.form.json").read_text())
    request = TwiMLRequest.from_form(form)
    assert request.call_sid == "CAe1cd00daf51a4164a268c52c2c3a93f1"
    assert request.from_number == "+14155550123"
    assert request.to_number == "+18005550100"
    assert request.caller_city == "SAN FRANCISCO"
    assert request.direction == "inbound"
    assert request.extra["ApplicationSid"] == "AP06727d6e53b8a0634bd9e8eefb205465"


def test_generate_takes_the_references_argument_order_and_dict_options() -> None:
    options = VoiceTwiMLOptionsConversationRelay(
        websocket_url="wss://ignored.example.com/ws", welcome_greeting="Hi!"
    )
    positional = relay_element(generate_twiml("wss://agent.example.com/ws", options)).attrib
    assert positional["url"] == "wss://agent.example.com/ws"  # the URL given first wins
    assert positional["welcomeGreeting"] == "Hi!"
    from_dict = relay_element(
        generate_twiml("wss://agent.example.com/ws", {"welcome_greeting": "Hey"})
    ).attrib
    assert (from_dict["url"], from_dict["welcomeGreeting"]) == ("wss://agent.example.com/ws", "Hey")
    by_keyword = relay_element(generate_twiml(options=options)).attrib
    assert by_keyword["url"] == "wss://ignored.example.com/ws"
    with pytest.raises(ValueError, match="WebSocket URL"):
        generate_twiml(options={"welcome_greeting": "no url"})
    with pytest.raises(ValueError, match="blank"):
        generate_twiml("  ", options)
    with pytest.raises(TypeError, match="websocket_url must be a str"):
        generate_twiml(options)  # type: ignore[arg-type]  # the options go second


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"conversation_configuration_id": "conv_configuration_abc"},
        {"studio_handoff_flow_sid": "FW123", "api_base_url": "http://127.0.0.1:8100"},
        {"public_base_url": None, "voice_public_domain": "example.ngrok.app"},
    ],
)
async def test_builder_writes_what_the_channel_writes(settings: dict[str, Any]) -> None:
    from tac.channels.voice import ConversationRelayProviderConfig
    from tac.channels.voice.conversation_relay.twiml import TwiMLBuilderConversationRelay

    tac = make_tac(**settings)
    config = ConversationRelayProviderConfig(
        default_twiml_options=VoiceTwiMLOptionsConversationRelay(voice="en-US-Journey-O")
    )
    channel_twiml = await VoiceChannel(tac, config=config).handle_incoming_call()
    builder = TwiMLBuilderConversationRelay(tac.config, config)
    assert builder.build("handle_incoming_call") == channel_twiml


def test_builder_layers_and_its_errors() -> None:
    from tac.channels.voice import ConversationRelayProviderConfig
    from tac.channels.voice.conversation_relay.twiml import TwiMLBuilderConversationRelay
    from tac.channels.voice.twiml import TwiMLBuilderBase

    tac = make_tac()
    config = ConversationRelayProviderConfig(
        default_twiml_options=VoiceTwiMLOptionsConversationRelay(voice="channel", language="fr-FR")
    )
    builder = TwiMLBuilderConversationRelay(tac.config, config)
    assert isinstance(builder, TwiMLBuilderBase)
    assert builder._default_websocket_url() == relay_element(builder.build("x")).attrib["url"]
    relay = relay_element(
        builder.build(
            "initiate_outbound_conversation",
            host=VoiceTwiMLOptionsConversationRelay(voice="host", welcome_greeting="From host"),
            per_call=VoiceTwiMLOptionsConversationRelay(language="de-DE"),
            websocket_url="wss://affinity.example.com/ws?node=2",
        )
    ).attrib
    assert relay["voice"] == "channel"  # the channel's defaults beat the host's
    assert relay["welcomeGreeting"] == "From host"
    assert relay["language"] == "de-DE"  # per call wins
    assert relay["url"] == "wss://affinity.example.com/ws?node=2"
    bare = TwiMLBuilderConversationRelay(
        make_tac(public_base_url=None, voice_public_domain=None).config, config
    )
    with pytest.raises(ValueError, match="initiate_outbound_conversation needs a WebSocket URL"):
        bare.build("initiate_outbound_conversation")
