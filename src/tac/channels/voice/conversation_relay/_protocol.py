"""The ConversationRelay protocol as a pure state machine (no I/O).

:meth:`RelayProtocol.receive` turns one text frame from Twilio into a typed event; the
sending methods return the JSON text frame to write. States go ``AWAITING_SETUP`` → ``OPEN``
→ ``ENDING`` (after ``end``: nothing more is sent) → ``CLOSED``. The I/O adapter only moves
strings between a WebSocket and this object.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import ValidationError

from tac._errors import TACError
from tac.models._base import first_error
from tac.models.voice import (
    DTMFMessage,
    ErrorMessage,
    InfoMessage,
    InterruptMessage,
    PromptMessage,
    SetupMessage,
)

__all__ = [
    "RelayEvent",
    "RelayProtocol",
    "RelayProtocolError",
    "RelayState",
    "RelayStateError",
    "UnknownMessage",
    "close_reason",
]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_DIGITS = frozenset("0123456789w#*")


class RelayState(str, Enum):
    AWAITING_SETUP = "awaiting_setup"
    OPEN = "open"
    ENDING = "ending"
    CLOSED = "closed"


class RelayProtocolError(TACError, ValueError):
    """A frame from Twilio that breaks the protocol (not JSON, bad fields, setup missing).

    ``close_code`` is the WebSocket close code to end the session with (1007: not JSON,
    1008: against the protocol, 1009: nested too deep); ``fatal`` errors end a session even
    mid-call, the others only drop the frame. ``close_reason`` fits a close frame.
    """

    def __init__(self, message: str, *, close_code: int = 1008, fatal: bool = False) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.fatal = fatal

    @property
    def close_reason(self) -> str:
        return close_reason(str(self))


def close_reason(text: str, limit: int = 123) -> str:
    """``text`` cut to fit a WebSocket close frame (``limit`` UTF-8 bytes, whole characters)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


class RelayStateError(TACError, RuntimeError):
    """A frame cannot be sent in the current state (after ``end``, or once closed)."""


class UnknownMessage:
    """A well-formed message of a type this version does not know (kept, not fatal)."""

    __slots__ = ("data", "type")

    def __init__(self, type_: str, data: dict[str, Any]) -> None:
        self.type = type_
        self.data = data

    def __repr__(self) -> str:
        return f"UnknownMessage(type={self.type!r})"


RelayEvent = (
    SetupMessage
    | PromptMessage
    | InterruptMessage
    | DTMFMessage
    | ErrorMessage
    | InfoMessage
    | UnknownMessage
)

_MODELS: dict[str, Any] = {
    "prompt": PromptMessage,
    "interrupt": InterruptMessage,
    "dtmf": DTMFMessage,
    "error": ErrorMessage,
    "info": InfoMessage,
}


class RelayProtocol:
    """One ConversationRelay session, from ``setup`` to close.

    It also tracks whether a reply is open (``text`` frames sent with ``last: false`` and no
    ``last: true`` yet), so an interrupted reply can be closed with an empty final token.
    """

    __slots__ = ("reply_open", "setup", "state")

    def __init__(self) -> None:
        self.state = RelayState.AWAITING_SETUP
        self.setup: SetupMessage | None = None
        self.reply_open = False

    # -- Twilio → app ------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> RelayEvent:
        """Parse one frame. Raises :class:`RelayProtocolError` for a frame that breaks the rules."""
        try:
            data = json.loads(frame)
        except ValueError:
            raise RelayProtocolError("frame is not JSON", close_code=1007) from None
        except RecursionError:
            raise RelayProtocolError("frame nested too deep", close_code=1009, fatal=True) from None
        if not isinstance(data, dict):
            raise RelayProtocolError("frame is not a JSON object")
        kind = data.get("type")
        if self.state is RelayState.AWAITING_SETUP:
            if kind != "setup":
                raise RelayProtocolError(f"first message must be 'setup', got {kind!r}")
            try:
                setup = SetupMessage.model_validate(data)
            except ValidationError as exc:
                raise RelayProtocolError(f"invalid setup: {_first_error(exc)}") from None
            self.setup = setup
            self.state = RelayState.OPEN
            return setup
        if kind == "setup":
            raise RelayProtocolError("'setup' received twice")
        model = _MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            if not isinstance(kind, str):
                raise RelayProtocolError("message has no 'type'")
            return UnknownMessage(kind, data)
        try:
            return model.model_validate(data)  # type: ignore[no-any-return]
        except ValidationError as exc:
            raise RelayProtocolError(f"invalid {kind}: {_first_error(exc)}") from None

    def close(self) -> None:
        """The WebSocket closed: nothing more can be sent."""
        self.state = RelayState.CLOSED

    # -- app → Twilio --------------------------------------------------------------------------

    def _check_can_send(self) -> None:
        if self.state is not RelayState.OPEN:
            raise RelayStateError(f"cannot send in state {self.state.value}")

    def text(
        self,
        token: str,
        *,
        last: bool,
        lang: str | None = None,
        interruptible: bool | None = None,
        preemptible: bool | None = None,
    ) -> str:
        """A ``text`` frame: ``token`` spoken as is; ``last=True`` ends the talk cycle."""
        self._check_can_send()
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, got {type(token).__name__}")
        self.reply_open = not last
        if lang is None and interruptible is None and preemptible is None:
            return _dumps({"type": "text", "token": token, "last": last})
        frame: dict[str, Any] = {"type": "text", "token": token, "last": last}
        if lang is not None:
            frame["lang"] = lang
        if interruptible is not None:
            frame["interruptible"] = interruptible
        if preemptible is not None:
            frame["preemptible"] = preemptible
        return _dumps(frame)

    def play(
        self,
        source: str,
        *,
        loop: int | None = None,
        preemptible: bool | None = None,
        interruptible: bool | None = None,
    ) -> str:
        """A ``play`` frame: play the audio at ``source`` (``loop=0``: up to 1000 times)."""
        self._check_can_send()
        if not source:
            raise ValueError("source (an audio URL) is required")
        if loop is not None and loop < 0:
            raise ValueError(f"loop must be 0 or more, got {loop}")
        frame: dict[str, Any] = {"type": "play", "source": source}
        if loop is not None:
            frame["loop"] = loop
        if preemptible is not None:
            frame["preemptible"] = preemptible
        if interruptible is not None:
            frame["interruptible"] = interruptible
        return _dumps(frame)

    def send_digits(self, digits: str) -> str:
        """A ``sendDigits`` frame (``0-9``, ``w`` for a half-second pause, ``#``, ``*``)."""
        self._check_can_send()
        if not digits or not set(digits) <= _DIGITS:
            raise ValueError(f"digits must be non-empty and only 0-9, w, # or *; got {digits!r}")
        return _dumps({"type": "sendDigits", "digits": digits})

    def language(self, *, tts: str | None = None, transcription: str | None = None) -> str:
        """A ``language`` frame switching text-to-speech and/or transcription."""
        self._check_can_send()
        if not tts and not transcription:
            raise ValueError("set_language needs tts and/or transcription")
        frame: dict[str, Any] = {"type": "language"}
        if tts:
            frame["ttsLanguage"] = tts
        if transcription:
            frame["transcriptionLanguage"] = transcription
        return _dumps(frame)

    def end(self, handoff_data: str | None = None) -> str:
        """An ``end`` frame: the session ends and the call returns to TwiML (``<Connect action>``).

        ``handoff_data`` (a string, typically JSON) reaches the action URL as ``HandoffData``.
        """
        self._check_can_send()
        if handoff_data is not None and not isinstance(handoff_data, str):
            raise TypeError(f"handoff_data must be a str, got {type(handoff_data).__name__}")
        self.state = RelayState.ENDING
        self.reply_open = False
        if handoff_data is None:
            return _dumps({"type": "end"})
        return _dumps({"type": "end", "handoffData": handoff_data})


def _first_error(exc: ValidationError) -> str:
    where, message = first_error(exc, "message")
    return f"{where}: {message}"
