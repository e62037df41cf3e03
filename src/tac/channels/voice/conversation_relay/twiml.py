"""``<Connect action><ConversationRelay/></Connect>`` TwiML, built with the ``twilio`` library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twilio.twiml.voice_response import (
    Connect,
    ConversationRelay,
    Language,
    Parameter,
    VoiceResponse,
)

from tac.core.config import TACConfig
from tac.models.voice import VoiceTwiMLOptionsConversationRelay

__all__ = [
    "DEFAULT_WELCOME_GREETING",
    "TwiMLBuilderConversationRelay",  # noqa: F822 (module __getattr__, from tac._compat)
    "default_relay_options",
    "generate_twiml",
    "merge_twiml_options",
]

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


def generate_twiml(
    websocket_url: str | None = None,
    options: VoiceTwiMLOptionsConversationRelay | Mapping[str, Any] | None = None,
) -> str:
    """The TwiML document connecting a call to ConversationRelay.

    ``generate_twiml("wss://…/ws", options)`` (the URL given wins over ``options.websocket_url``)
    or ``generate_twiml(options=…)``; ``options`` may be a dict of the model's fields.
    """
    if options is None:
        options = VoiceTwiMLOptionsConversationRelay()
    elif not isinstance(options, VoiceTwiMLOptionsConversationRelay):
        options = VoiceTwiMLOptionsConversationRelay.model_validate(dict(options))
    if isinstance(websocket_url, str):
        if not websocket_url.strip():
            raise ValueError("websocket_url must not be blank")
        options = options.model_copy(update={"websocket_url": websocket_url})
    elif websocket_url is not None:
        raise TypeError(f"websocket_url must be a str, got {type(websocket_url).__name__}")
    if not options.websocket_url:
        raise ValueError(
            "generate_twiml needs a WebSocket URL: pass it first or set options.websocket_url"
        )
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


def default_relay_options(config: TACConfig) -> VoiceTwiMLOptionsConversationRelay:
    """What every call's TwiML starts from: the public WebSocket URL, the ``<Connect action>``
    (Studio's voice handoff when ``studio_handoff_flow_sid`` is set, else this app's callback),
    the default greeting and, in Orchestrator mode, the conversation configuration."""
    values: dict[str, Any] = {"welcome_greeting": DEFAULT_WELCOME_GREETING}
    websocket_base = config.public_websocket_url()
    if websocket_base is not None:
        values["websocket_url"] = websocket_base + config.voice_websocket_path
    if config.studio_handoff_flow_sid:
        from tac.tools.handoff import studio_voice_handoff_url

        values["action_url"] = studio_voice_handoff_url(
            config.account_sid,
            config.studio_handoff_flow_sid,
            region=config.region,
            api_base_url=config.api_base_url,
        )
    elif config.public_url() is not None:
        values["action_url"] = f"{config.public_url()}{config.voice_action_path}"
    if config.conversation_configuration_id:
        values["conversation_configuration"] = config.conversation_configuration_id
    return VoiceTwiMLOptionsConversationRelay(**values)


def __getattr__(name: str) -> object:
    """``TwiMLBuilderConversationRelay`` lives in :mod:`tac._compat.twiml` (reference path)."""
    if name == "TwiMLBuilderConversationRelay":
        from tac._compat.twiml import TwiMLBuilderConversationRelay

        return TwiMLBuilderConversationRelay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
