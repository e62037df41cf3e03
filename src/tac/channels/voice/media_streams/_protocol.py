"""Twilio Media Streams frames (pure, no I/O).

Twilio → app: ``connected``, ``start``, ``media``, ``mark``, ``dtmf``, ``stop``. App → Twilio:
``media``, ``mark``, ``clear``. Outgoing frames are built by string concatenation: the payload is
base64 and the stream SID alphanumeric, so nothing needs escaping and the hot path (one frame per
20 ms per call) costs no ``json.dumps``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "MediaStreamsProtocolError",
    "StreamFrames",
    "audio_ms",
    "parse_frame",
    "string_field",
]

_SAFE = re.compile(r"^[A-Za-z0-9_\-.:]+$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=]*$")


class MediaStreamsProtocolError(ValueError):
    """A frame from Twilio that breaks the protocol."""


def parse_frame(frame: str | bytes) -> dict[str, Any]:
    """One frame as a dict with a str ``event``; raises :class:`MediaStreamsProtocolError`."""
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        raise MediaStreamsProtocolError("frame is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise MediaStreamsProtocolError("frame is not a JSON object with an 'event'")
    return data


class StreamFrames:
    """Builds the frames the app sends on one stream (its ``streamSid`` baked in)."""

    __slots__ = ("_clear", "_mark_prefix", "_media_prefix", "stream_sid")

    def __init__(self, stream_sid: str) -> None:
        if not _SAFE.match(stream_sid):
            raise MediaStreamsProtocolError(f"invalid streamSid {stream_sid!r}")
        self.stream_sid = stream_sid
        self._media_prefix = (
            '{"event":"media","streamSid":"' + stream_sid + '","media":{"payload":"'
        )
        self._mark_prefix = '{"event":"mark","streamSid":"' + stream_sid + '","mark":{"name":"'
        self._clear = '{"event":"clear","streamSid":"' + stream_sid + '"}'

    def media(self, payload: str) -> str:
        """A ``media`` frame carrying base64 μ-law ``payload`` (trusted: from the model)."""
        return self._media_prefix + payload + '"}}'

    def mark(self, name: str) -> str:
        """A ``mark`` frame: Twilio echoes it once the audio before it has played."""
        if not _SAFE.match(name):
            raise ValueError(f"mark names are letters, digits and _-.: only, got {name!r}")
        return self._mark_prefix + name + '"}}'

    def clear(self) -> str:
        """A ``clear`` frame: Twilio drops the audio it has buffered (and echoes its marks)."""
        return self._clear


def is_base64(payload: str) -> bool:
    """Whether ``payload`` only has base64 characters (safe to splice into a frame)."""
    return _BASE64.match(payload) is not None


def audio_ms(payload: str) -> int:
    """Milliseconds of base64 μ-law 8 kHz audio in ``payload`` (8 bytes a millisecond)."""
    return (len(payload) * 3 // 4 - payload.count("=", -2)) // 8


def string_field(raw: str, name: str) -> str | None:
    """The value of the first ``"name":"..."`` in JSON text ``raw``, read by position (no
    ``json.loads``); ``None`` when absent or escaped (then parse ``raw`` fully)."""
    key = '"' + name + '":"'
    start = raw.find(key)
    if start < 0:
        return None
    start += len(key)
    end = raw.find('"', start)
    if end < 0:
        return None
    value = raw[start:end]
    return None if "\\" in value else value
