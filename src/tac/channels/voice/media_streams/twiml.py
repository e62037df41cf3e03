"""``<Connect><Stream>`` TwiML for Media Streams calls, built with the ``twilio`` library."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twilio.twiml.voice_response import Connect, Parameter, Stream, VoiceResponse

from tac.channels.voice.twiml import TwiMLBuilderBase
from tac.core.config import TACConfig
from tac.models.stream import VoiceTwiMLOptionsMediaStreams

__all__ = [
    "TwiMLBuilderMediaStreams",
    "default_stream_options",
    "generate_twiml",
    "merge_stream_options",
]


def merge_stream_options(
    *layers: VoiceTwiMLOptionsMediaStreams | None,
) -> VoiceTwiMLOptionsMediaStreams:
    """Layer options, later ones winning field by field (only fields a layer set count)."""
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        for name in layer.model_fields_set:
            values[name] = getattr(layer, name)
    return VoiceTwiMLOptionsMediaStreams.model_validate(values)


def generate_twiml(
    websocket_url: str | None = None,
    options: VoiceTwiMLOptionsMediaStreams | Mapping[str, Any] | None = None,
) -> str:
    """The TwiML document connecting a call's audio to a WebSocket (``<Connect><Stream>``).

    The URL given wins over ``options.websocket_url``; ``options`` may be a dict of fields.
    """
    if options is None:
        options = VoiceTwiMLOptionsMediaStreams()
    elif not isinstance(options, VoiceTwiMLOptionsMediaStreams):
        options = VoiceTwiMLOptionsMediaStreams.model_validate(dict(options))
    if websocket_url is not None:
        if not isinstance(websocket_url, str):
            raise TypeError(f"websocket_url must be a str, got {type(websocket_url).__name__}")
        options = merge_stream_options(
            options, VoiceTwiMLOptionsMediaStreams(websocket_url=websocket_url)
        )
    if not options.websocket_url:
        raise ValueError(
            "generate_twiml needs a WebSocket URL: pass it first or set options.websocket_url"
        )
    connect_attributes: dict[str, str] = {}
    if options.action_url:
        connect_attributes["action"] = options.action_url
        if options.action_method:
            connect_attributes["method"] = options.action_method
    stream_attributes: dict[str, str] = {"url": options.websocket_url}
    if options.name:
        stream_attributes["name"] = options.name
    if options.status_callback:
        stream_attributes["status_callback"] = options.status_callback
        if options.status_callback_method:
            stream_attributes["status_callback_method"] = options.status_callback_method
    stream = Stream(**stream_attributes)
    for name, value in options.parameters().items():
        stream.append(Parameter(name=name, value=value))
    connect = Connect(**connect_attributes)
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    return str(response.to_xml())


def default_stream_options(config: TACConfig) -> VoiceTwiMLOptionsMediaStreams:
    """What every Media Streams call's TwiML starts from: the public WebSocket URL."""
    base = config.public_websocket_url()
    if base is None:
        return VoiceTwiMLOptionsMediaStreams()
    return VoiceTwiMLOptionsMediaStreams(websocket_url=base + config.voice_websocket_path)


class TwiMLBuilderMediaStreams(TwiMLBuilderBase):
    """The TwiML of one Media Streams call: defaults < host < channel defaults < per call."""

    def build(
        self,
        caller: str,
        *,
        host: VoiceTwiMLOptionsMediaStreams | None = None,
        per_call: VoiceTwiMLOptionsMediaStreams | None = None,
        websocket_url: str | None = None,
    ) -> str:
        """The TwiML document; ``caller`` names the API used in the missing-URL error."""
        options = merge_stream_options(
            default_stream_options(self.tac_config),
            host,
            getattr(self.channel_config, "default_twiml_options", None),
            per_call,
        )
        if websocket_url is None and not options.websocket_url:
            raise self._missing_websocket_url_error(caller)
        return generate_twiml(websocket_url, options)
