"""Twilio Media Streams models: the ``<Connect><Stream>`` TwiML options and the ``start`` message.

- :class:`VoiceTwiMLOptionsMediaStreams` shapes ``<Connect><Stream>``; unknown fields are an
  error.
- :class:`StreamStartMessage` is the ``start`` event Twilio sends once per stream.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tac.models.voice import InitiateVoiceConversationOptions, VoiceTwiMLOptions

__all__ = [
    "InitiateVoiceConversationOptionsMediaStreams",
    "StreamStartMessage",
    "VoiceTwiMLOptionsMediaStreams",
]


class VoiceTwiMLOptionsMediaStreams(VoiceTwiMLOptions):
    """``<Connect action><Stream url name statusCallback><Parameter/></Stream></Connect>``.

    ``websocket_url`` must be ``wss://`` without a query string (Twilio drops it): per-call
    values go in ``custom_parameters`` and reach the app in ``start.customParameters``.
    """

    websocket_url: str | None = Field(default=None, min_length=1)
    custom_parameters: dict[str, Any] | None = None
    name: str | None = None
    status_callback: str | None = None
    status_callback_method: Literal["GET", "POST"] | None = None
    action_url: str | None = None
    action_method: Literal["GET", "POST"] | None = None

    @field_validator("websocket_url")
    @classmethod
    def _no_query(cls, value: str | None) -> str | None:
        if value is not None and "?" in value:
            raise ValueError(
                "Media Streams drops the query string of the <Stream> url; "
                "use custom_parameters instead"
            )
        return value

    def parameters(self) -> dict[str, str]:
        """The ``<Parameter>`` elements as name → value (``None`` values left out)."""
        return {str(k): str(v) for k, v in (self.custom_parameters or {}).items() if v is not None}


class StreamStartMessage(BaseModel):
    """The ``start`` event of a stream: which call, which format, the ``<Parameter>`` values."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    stream_sid: str = Field(min_length=1, alias="streamSid")
    call_sid: str = Field(min_length=1, alias="callSid")
    account_sid: str | None = Field(default=None, alias="accountSid")
    tracks: list[str] = Field(default_factory=list)
    media_format: dict[str, Any] | None = Field(default=None, alias="mediaFormat")
    custom_parameters: dict[str, str] = Field(default_factory=dict, alias="customParameters")

    @field_validator("custom_parameters", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value


class InitiateVoiceConversationOptionsMediaStreams(InitiateVoiceConversationOptions):
    """An outbound Media Streams call; ``session_config`` is this call's model session."""

    twiml_options: VoiceTwiMLOptionsMediaStreams | None = None  # type: ignore[assignment]
    session_config: dict[str, Any] | None = None
