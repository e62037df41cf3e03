"""Voice models: TwiML options, Twilio's voice webhooks, ConversationRelay messages, calls.

- TwiML options (:class:`VoiceTwiMLOptionsConversationRelay`, :class:`LanguageConfig`) are what
  you pass to shape ``<Connect><ConversationRelay>``; unknown fields are an error.
- Voice webhooks (:class:`TwiMLRequest`, :class:`CallStatusEvent`, :class:`AmdEvent`,
  :class:`RecordingEvent`, :class:`ConversationRelayCallbackPayload`) are form-encoded; build
  them with ``from_form``.
- ConversationRelay messages Twilio sends over the WebSocket (:class:`SetupMessage`,
  :class:`PromptMessage`, :class:`InterruptMessage`, :class:`DTMFMessage`,
  :class:`ErrorMessage`, :class:`InfoMessage`) mirror its camelCase JSON.
- Outbound calls: :class:`CallOptions`, :class:`InitiateVoiceConversationOptions`,
  :class:`InitiateVoiceConversationResult`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from tac.models._base import OptionsModel, WireModel

__all__ = [
    "AmdEvent",
    "CallOptions",
    "CallStatusEvent",
    "ConversationRelayCallbackPayload",
    "CustomParameters",
    "DTMFMessage",
    "ErrorMessage",
    "InfoMessage",
    "InitiateVoiceConversationOptions",
    "InitiateVoiceConversationResult",
    "InterruptMessage",
    "InterruptMode",
    "LanguageConfig",
    "PromptMessage",
    "RecordingEvent",
    "SetupMessage",
    "TwiMLRequest",
    "VoiceTwiMLOptions",
    "VoiceTwiMLOptionsConversationRelay",
]

InterruptMode = Literal["none", "dtmf", "speech", "any"]
"""Which caller input may interrupt: nothing, keypresses, speech or both."""

# -- TwiML options ------------------------------------------------------------------------


class LanguageConfig(OptionsModel):
    """A ``<Language>`` element: provider and voice settings for one language code."""

    code: str = Field(min_length=1)
    voice: str | None = None
    tts_provider: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None

    def twiml_attributes(self) -> dict[str, str]:
        """The element's attributes, Twilio-named, without unset ones."""
        return {
            _LANGUAGE_ATTRIBUTES[name]: str(value)
            for name, value in self
            if value is not None and name in _LANGUAGE_ATTRIBUTES
        }


_LANGUAGE_ATTRIBUTES = {
    "code": "code",
    "voice": "voice",
    "tts_provider": "ttsProvider",
    "transcription_provider": "transcriptionProvider",
    "speech_model": "speechModel",
}


class CustomParameters(BaseModel):
    """``<Parameter>`` name/value pairs, delivered to the app in ``setup.customParameters``.

    The well-known names (``conversationId``, ``profileId``, ``customerParticipantId``,
    ``aiAgentParticipantId``) have fields; any other name is accepted as an extra.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    conversation_id: str | None = Field(default=None, alias="conversationId")
    profile_id: str | None = Field(default=None, alias="profileId")
    customer_participant_id: str | None = Field(default=None, alias="customerParticipantId")
    ai_agent_participant_id: str | None = Field(default=None, alias="aiAgentParticipantId")

    def as_dict(self) -> dict[str, str]:
        """Name → value (strings), well-known names in their camelCase form."""
        return {str(k): str(v) for k, v in self.model_dump(by_alias=True).items() if v is not None}


class VoiceTwiMLOptions(OptionsModel):
    """Base of every voice provider's TwiML options."""


# field -> the ConversationRelay TwiML attribute it sets
_RELAY_ATTRIBUTES: dict[str, str] = {
    "websocket_url": "url",
    "welcome_greeting": "welcomeGreeting",
    "welcome_greeting_interruptible": "welcomeGreetingInterruptible",
    "language": "language",
    "tts_language": "ttsLanguage",
    "transcription_language": "transcriptionLanguage",
    "tts_provider": "ttsProvider",
    "voice": "voice",
    "transcription_provider": "transcriptionProvider",
    "speech_model": "speechModel",
    "profanity_filter": "profanityFilter",
    "dtmf_detection": "dtmfDetection",
    "partial_prompts": "partialPrompts",
    "interruptible": "interruptible",
    "interrupt_sensitivity": "interruptSensitivity",
    "preemptible": "preemptible",
    "report_input_during_agent_speech": "reportInputDuringAgentSpeech",
    "hints": "hints",
    "intelligence_service": "intelligenceService",
    "elevenlabs_text_normalization": "elevenlabsTextNormalization",
    "debug": "debug",
    "events": "events",
    "background_noise_reduction": "backgroundNoiseReduction",
    "speech_timeout": "speechTimeout",
    "deepgram_smart_format": "deepgramSmartFormat",
    "ignore_backchannel": "ignoreBackchannel",
    "eot_threshold": "eotThreshold",
    "conversation_configuration": "conversationConfiguration",
}
# fields that are not ConversationRelay attributes
_RELAY_NON_ATTRIBUTES = frozenset({"custom_parameters", "action_url", "languages", "extra"})


class VoiceTwiMLOptionsConversationRelay(VoiceTwiMLOptions):
    """Everything ``<Connect><ConversationRelay>`` can say; unset fields are left out.

    ``action_url`` is the ``<Connect action>`` (``None`` set explicitly: no action at all);
    ``websocket_url`` is the ConversationRelay ``url``; ``languages`` become ``<Language>``
    elements and ``custom_parameters`` ``<Parameter>`` elements. ``extra`` adds attributes
    this model does not know yet (a key naming a typed field is an error).
    """

    custom_parameters: CustomParameters | dict[str, str] | None = None
    welcome_greeting: str | None = None
    welcome_greeting_interruptible: InterruptMode | None = None
    action_url: str | None = None
    conversation_configuration: str | None = None
    websocket_url: str | None = Field(default=None, min_length=1)
    language: str | None = None
    tts_language: str | None = None
    transcription_language: str | None = None
    voice: str | None = None
    tts_provider: str | None = None
    transcription_provider: str | None = None
    speech_model: str | None = None
    profanity_filter: bool | None = None
    elevenlabs_text_normalization: Literal["on", "auto", "off"] | None = None
    eot_threshold: float | None = None
    partial_prompts: bool | None = None
    deepgram_smart_format: bool | None = None
    speech_timeout: int | Literal["auto"] | None = None
    interruptible: InterruptMode | None = None
    interrupt_sensitivity: Literal["high", "medium", "low"] | None = None
    report_input_during_agent_speech: InterruptMode | None = None
    ignore_backchannel: bool | None = None
    preemptible: bool | None = None
    dtmf_detection: bool | None = None
    background_noise_reduction: bool | None = None
    hints: str | None = None
    events: str | None = None
    debug: str | None = None
    intelligence_service: str | None = None
    languages: list[LanguageConfig] | None = None
    extra: dict[str, str | bool | int | float] | None = None

    @field_validator("interruptible", "welcome_greeting_interruptible", mode="before")
    @classmethod
    def _legacy_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "any" if value else "none"
        return value

    @field_validator("custom_parameters", mode="before")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return CustomParameters.model_validate(
                {str(k): v if v is None else str(v) for k, v in value.items()}
            )
        return value

    @field_validator("extra")
    @classmethod
    def _extra_does_not_shadow(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value:
            shadowed = sorted(
                k for k in value if k in _RELAY_ATTRIBUTES or k in _RELAY_ATTRIBUTES.values()
            )
            if shadowed:
                raise ValueError(f"extra must not set typed attributes: {shadowed}")
        return value

    def relay_attributes(self) -> dict[str, str | bool | int | float]:
        """The ``<ConversationRelay>`` attributes, Twilio-named, without unset ones."""
        attributes: dict[str, str | bool | int | float] = {}
        for name, attribute in _RELAY_ATTRIBUTES.items():
            value = getattr(self, name)
            if value is not None:
                attributes[attribute] = value
        if self.extra:
            attributes.update(self.extra)
        return attributes

    def parameters(self) -> dict[str, str]:
        """The ``<Parameter>`` elements as name → value."""
        params = self.custom_parameters
        if params is None:
            return {}
        if isinstance(params, CustomParameters):
            return params.as_dict()
        return {str(k): str(v) for k, v in params.items()}


def _verify_attributes_mapped() -> None:
    unmapped = (
        set(VoiceTwiMLOptionsConversationRelay.model_fields)
        - set(_RELAY_ATTRIBUTES)
        - _RELAY_NON_ATTRIBUTES
    )
    if unmapped:  # pragma: no cover - a development-time guard
        raise RuntimeError(f"TwiML fields without an attribute: {sorted(unmapped)}")


_verify_attributes_mapped()

# -- voice webhooks (form-encoded) ---------------------------------------------------------

_F = TypeVar("_F", bound="_FormModel")


class _FormModel(BaseModel):
    """A form-encoded Twilio callback: ``FORM_FIELDS`` maps fields to Twilio's names."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    FORM_FIELDS: ClassVar[dict[str, str]] = {}

    extra: dict[str, str] = Field(default_factory=dict)
    """Every other form field, by Twilio's name."""

    @classmethod
    def from_form(cls: type[_F], form: Mapping[str, Any]) -> _F:
        """Build from a request's form fields (a validation error names the Twilio field)."""
        values: dict[str, Any] = {}
        known = set()
        for field, wire in cls.FORM_FIELDS.items():
            known.add(wire)
            value = form.get(wire)
            if value is not None and value != "":
                values[field] = str(value)
        values["extra"] = {str(k): str(v) for k, v in form.items() if k not in known}
        return cls.model_validate(values)


class TwiMLRequest(_FormModel):
    """The incoming-call webhook (``POST /twiml``)."""

    FORM_FIELDS: ClassVar[dict[str, str]] = {
        "call_sid": "CallSid",
        "account_sid": "AccountSid",
        "from_number": "From",
        "to_number": "To",
        "direction": "Direction",
        "call_status": "CallStatus",
        "caller_country": "CallerCountry",
        "caller_state": "CallerState",
        "caller_city": "CallerCity",
    }

    call_sid: str | None = None
    account_sid: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    call_status: str | None = None
    caller_country: str | None = None
    caller_state: str | None = None
    caller_city: str | None = None


_UNREACHED = frozenset({"busy", "no-answer", "failed", "canceled"})


class CallStatusEvent(_FormModel):
    """A call status callback (``{call_event_path}/status``)."""

    FORM_FIELDS: ClassVar[dict[str, str]] = {
        "call_sid": "CallSid",
        "account_sid": "AccountSid",
        "call_status": "CallStatus",
        "call_duration": "CallDuration",
        "sip_response_code": "SipResponseCode",
    }

    call_sid: str = Field(min_length=1)
    account_sid: str | None = None
    call_status: str | None = None
    call_duration: int | None = None
    sip_response_code: str | None = None

    @property
    def is_unreached(self) -> bool:
        """The callee was never reached (busy, no answer, failed, canceled)."""
        return (self.call_status or "").lower() in _UNREACHED


class AmdEvent(_FormModel):
    """An asynchronous answering-machine-detection callback (``{call_event_path}/amd``)."""

    FORM_FIELDS: ClassVar[dict[str, str]] = {
        "call_sid": "CallSid",
        "account_sid": "AccountSid",
        "answered_by": "AnsweredBy",
        "machine_detection_duration": "MachineDetectionDuration",
    }

    call_sid: str = Field(min_length=1)
    account_sid: str | None = None
    answered_by: str | None = None
    """``human``, ``machine_start``, ``machine_end_beep``, ``fax``, ``unknown``, …"""
    machine_detection_duration: int | None = None

    @property
    def is_machine(self) -> bool:
        return (self.answered_by or "").startswith("machine")


class RecordingEvent(_FormModel):
    """A recording status callback (``{call_event_path}/recording``)."""

    FORM_FIELDS: ClassVar[dict[str, str]] = {
        "call_sid": "CallSid",
        "account_sid": "AccountSid",
        "recording_sid": "RecordingSid",
        "recording_url": "RecordingUrl",
        "recording_status": "RecordingStatus",
        "recording_duration": "RecordingDuration",
    }

    call_sid: str = Field(min_length=1)
    account_sid: str | None = None
    recording_sid: str | None = None
    recording_url: str | None = None
    recording_status: str | None = None
    recording_duration: int | None = None


class ConversationRelayCallbackPayload(_FormModel):
    """The ``<Connect action>`` callback Twilio sends when a ConversationRelay session ends."""

    FORM_FIELDS: ClassVar[dict[str, str]] = {
        "call_sid": "CallSid",
        "account_sid": "AccountSid",
        "call_status": "CallStatus",
        "from_number": "From",
        "to_number": "To",
        "direction": "Direction",
        "application_sid": "ApplicationSid",
        "session_id": "SessionId",
        "session_status": "SessionStatus",
        "session_duration": "SessionDuration",
        "handoff_data": "HandoffData",
        "error_code": "ErrorCode",
        "error_message": "ErrorMessage",
    }

    call_sid: str = Field(min_length=1)
    account_sid: str | None = None
    call_status: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    application_sid: str | None = None
    session_id: str | None = None
    session_status: str | None = None
    session_duration: int | None = None
    handoff_data: str | None = None
    error_code: str | None = None
    error_message: str | None = None


# -- ConversationRelay messages (Twilio → app) ----------------------------------------------


class SetupMessage(WireModel):
    """The first message of every ConversationRelay session."""

    type: Literal["setup"] = "setup"
    session_id: str | None = None
    account_sid: str | None = None
    parent_call_sid: str | None = None
    call_sid: str = Field(min_length=1)
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    forwarded_from: str | None = None
    call_type: str | None = None
    caller_name: str | None = None
    direction: str | None = None
    call_status: str | None = None
    custom_parameters: dict[str, str] = Field(default_factory=dict)

    @field_validator("custom_parameters", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value

    @property
    def is_outbound(self) -> bool:
        """True for calls the app placed (``outbound``, ``outbound-api``, ``outbound-dial``)."""
        return (self.direction or "").lower().startswith("outbound")

    @property
    def caller_address(self) -> str | None:
        """The customer's number: ``from`` on inbound calls, ``to`` on outbound ones."""
        return self.to if self.is_outbound else self.from_


class PromptMessage(WireModel):
    """What the caller said. ``last: false`` is a partial (unfinished) transcript."""

    type: Literal["prompt"] = "prompt"
    voice_prompt: str = Field(default="", strict=True)
    lang: str | None = Field(default=None, strict=True)
    last: bool = Field(default=True, strict=True)


class InterruptMessage(WireModel):
    """The caller talked over the agent; ``utterance_until_interrupt`` is what they heard."""

    type: Literal["interrupt"] = "interrupt"
    utterance_until_interrupt: str = ""
    duration_until_interrupt_ms: int | None = None


class DTMFMessage(WireModel):
    """A key the caller pressed (with ``dtmfDetection``)."""

    type: Literal["dtmf"] = "dtmf"
    digit: str


class ErrorMessage(WireModel):
    """ConversationRelay reports an error (e.g. a frame of ours it could not accept)."""

    type: Literal["error"] = "error"
    description: str = ""


class InfoMessage(WireModel):
    """A subscribed event (``events``/``debug``): ``agentSpeaking``, ``tokensPlayed``, …"""

    type: Literal["info"] = "info"
    name: str | None = None
    value: Any = None


# -- outbound calls ----------------------------------------------------------------------------

_RESERVED_CALL_KEYS = frozenset({"to", "from_", "from", "twiml", "url", "application_sid"})


@lru_cache(maxsize=1)
def _calls_create_parameters() -> frozenset[str]:
    """The keyword parameters of the installed ``twilio`` library's ``CallList.create``."""
    from twilio.rest.api.v2010.account.call import CallList

    return frozenset(inspect.signature(CallList.create).parameters) - {"self"}


class CallOptions(BaseModel):
    """Calls API options for an outbound call: AMD, recording, status callbacks, timeout.

    Any other ``CallList.create`` keyword of the ``twilio`` library is accepted as an extra
    (``caller_id=...``, ``time_limit=...``); unknown names are an error.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    machine_detection: Literal["Enable", "DetectMessageEnd"] | None = None
    async_amd: bool | None = None
    async_amd_status_callback: str | None = None
    async_amd_status_callback_method: Literal["GET", "POST"] | None = None
    machine_detection_timeout: int | None = None
    machine_detection_speech_threshold: int | None = None
    machine_detection_speech_end_threshold: int | None = None
    machine_detection_silence_timeout: int | None = None
    record: bool | None = None
    recording_status_callback: str | None = None
    recording_status_callback_event: list[str] | None = None
    recording_channels: str | None = None
    recording_track: str | None = None
    status_callback: str | None = None
    status_callback_event: list[str] | None = None
    status_callback_method: Literal["GET", "POST"] | None = None
    timeout: int | None = Field(default=None, ge=1, le=600)

    @model_validator(mode="after")
    def _check(self) -> CallOptions:
        extras = dict(self.model_extra or {})
        reserved = sorted(k for k in extras if k in _RESERVED_CALL_KEYS)
        if reserved:
            raise ValueError(f"CallOptions must not set {reserved}: the channel sets them")
        unknown = sorted(k for k in extras if k not in _calls_create_parameters())
        if unknown:
            raise ValueError(f"unknown Calls API options {unknown}")
        if (self.machine_detection is None) != (self.async_amd is None):
            raise ValueError(
                "machine_detection and async_amd must be set together (the call runs inline "
                "TwiML, so answering-machine detection must be asynchronous)"
            )
        return self

    def to_call_kwargs(self) -> dict[str, Any]:
        """The options as Calls API keywords (snake_case; ``async_amd`` as ``"true"``)."""
        kwargs = self.model_dump(exclude_none=True)
        if "async_amd" in kwargs:
            kwargs["async_amd"] = "true" if kwargs["async_amd"] else "false"
        return kwargs


class InitiateVoiceConversationOptions(OptionsModel):
    """An outbound call: who to call, and optionally the TwiML and Calls API options."""

    to: str = Field(min_length=1)
    websocket_url: str | None = None
    twiml_options: VoiceTwiMLOptionsConversationRelay | None = None
    call_options: CallOptions | None = None


class InitiateVoiceConversationResult(BaseModel):
    """The call Twilio placed."""

    call_sid: str


def __getattr__(name: str) -> object:
    """The reference's deprecated names (``TwiMLOptions``), with a DeprecationWarning."""
    from tac._compat.aliases import deprecated_attribute

    return deprecated_attribute(__name__, name)
