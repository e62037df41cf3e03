"""``<Connect action><ConversationRelay/></Connect>`` TwiML, built with the ``twilio`` library."""

from __future__ import annotations

from typing import Any

from twilio.twiml.voice_response import (
    Connect,
    ConversationRelay,
    Language,
    Parameter,
    VoiceResponse,
)

from tac.models.voice import VoiceTwiMLOptionsConversationRelay

__all__ = ["DEFAULT_WELCOME_GREETING", "generate_twiml", "merge_twiml_options"]

DEFAULT_WELCOME_GREETING = "Hello! How can I assist you today?"


def merge_twiml_options(
    *layers: VoiceTwiMLOptionsConversationRelay | None,
) -> VoiceTwiMLOptionsConversationRelay:
    """Layer options, later ones winning field by field (only fields a layer set count).

    A field set explicitly to ``None`` (``action_url=None``) overrides earlier layers too;
    lists and nested objects replace wholesale.
    """
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        for name in layer.model_fields_set:
            values[name] = getattr(layer, name)
    return VoiceTwiMLOptionsConversationRelay.model_validate(values)


def generate_twiml(options: VoiceTwiMLOptionsConversationRelay) -> str:
    """The TwiML document connecting a call to ConversationRelay (``websocket_url`` required)."""
    if not options.websocket_url:
        raise ValueError("websocket_url is required to build ConversationRelay TwiML")
    response = VoiceResponse()
    connect_attributes: dict[str, Any] = {}
    if options.action_url:
        connect_attributes["action"] = options.action_url
    connect = Connect(**connect_attributes)
    relay = ConversationRelay(**options.relay_attributes())
    for language in options.languages or ():
        relay.append(Language(**language.twiml_attributes()))
    for name, value in options.parameters().items():
        relay.append(Parameter(name=name, value=value))
    connect.append(relay)
    response.append(connect)
    return str(response.to_xml())
