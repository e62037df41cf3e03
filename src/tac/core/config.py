"""Configuration: :class:`TACConfig` and the settings it groups, read from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tac.core.errors import TACConfigError
from tac.models._base import first_error

__all__ = [
    "CALL_EVENT_KINDS",
    "CallEventKind",
    "ConversationIntelligenceConfig",
    "TACConfig",
    "TwilioMemoryConfig",
]

CallEventKind = Literal["status", "amd", "recording"]
CALL_EVENT_KINDS: tuple[CallEventKind, ...] = ("status", "amd", "recording")

_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class TwilioMemoryConfig(BaseModel):
    """What Recall asks Conversation Memory for, and how profiles are found."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    trait_groups: list[str] | None = None
    observations_limit: int = Field(default=20, ge=0, le=100)
    summaries_limit: int = Field(default=5, ge=0, le=100)
    communications_limit: int = Field(default=0, ge=0, le=100)
    relevance_threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    phone_trait_group: str = "Contact"
    phone_trait_field: str = "phone"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TwilioMemoryConfig:
        env = _Env(environ)
        groups = env.get("TWILIO_MEMORY_PROFILE_TRAIT_GROUPS")
        values: dict[str, Any] = {
            "trait_groups": [g.strip() for g in groups.split(",") if g.strip()] if groups else None,
            "observations_limit": env.integer("TWILIO_MEMORY_OBSERVATIONS_LIMIT", 20, 0, 100),
            "summaries_limit": env.integer("TWILIO_MEMORY_SUMMARIES_LIMIT", 5, 0, 100),
            "communications_limit": env.integer("TWILIO_MEMORY_COMMUNICATIONS_LIMIT", 0, 0, 100),
            "relevance_threshold": env.number("TWILIO_MEMORY_RELEVANCE_THRESHOLD", 0.0, 0.0, 1.0),
            "phone_trait_group": env.get("TWILIO_MEMORY_PHONE_TRAIT_GROUP") or "Contact",
            "phone_trait_field": env.get("TWILIO_MEMORY_PHONE_TRAIT_FIELD") or "phone",
        }
        return cls(**values)


class ConversationIntelligenceConfig(BaseModel):
    """Conversation Intelligence: which configuration's results to accept."""

    model_config = ConfigDict(extra="forbid")

    configuration_id: str = Field(min_length=1)
    summary_operator_sid: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None
    ) -> ConversationIntelligenceConfig | None:
        env = _Env(environ)
        configuration_id = env.get("CONVERSATION_INTELLIGENCE_CONFIGURATION_ID")
        if not configuration_id:
            return None
        return cls(
            configuration_id=configuration_id,
            summary_operator_sid=env.get("CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID") or None,
        )


# field name -> environment variable, for error messages and from_env
_ENV_NAMES: dict[str, str] = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "auth_token": "TWILIO_AUTH_TOKEN",
    "api_key": "TWILIO_API_KEY",
    "api_secret": "TWILIO_API_SECRET",
    "phone_number": "TWILIO_PHONE_NUMBER",
    "conversation_configuration_id": "TWILIO_CONVERSATION_CONFIGURATION_ID",
    "rcs_sender_id": "TWILIO_RCS_SENDER_ID",
    "whatsapp_number": "TWILIO_WHATSAPP_NUMBER",
    "knowledge_base_id": "TWILIO_KNOWLEDGE_BASE_ID",
    "log_level": "TWILIO_LOG_LEVEL",
    "log_format": "TWILIO_LOG_FORMAT",
    "region": "TWILIO_REGION",
    "studio_handoff_flow_sid": "TWILIO_STUDIO_HANDOFF_FLOW_SID",
    "voice_public_domain": "TWILIO_VOICE_PUBLIC_DOMAIN",
    "voice_websocket_path": "TWILIO_VOICE_WEBSOCKET_PATH",
    "voice_action_path": "TWILIO_VOICE_ACTION_PATH",
    "voice_call_event_path": "TWILIO_VOICE_CALL_EVENT_PATH",
    "api_base_url": "TWILIO_API_BASE_URL",
    "public_base_url": "TAC_PUBLIC_BASE_URL",
    "validate_signatures": "TWILIO_VALIDATE_SIGNATURES",
    "state_url": "TAC_STATE_URL",
    "session_ttl_seconds": "TAC_SESSION_TTL_SECONDS",
}

_REQUIRED = ("account_sid", "auth_token", "api_key", "api_secret", "phone_number")
_EXPECTED = {
    "account_sid": "your Twilio account SID (AC…)",
    "auth_token": "your account's auth token (used to check Twilio's signatures)",
    "api_key": "an API key SID (SK…) for Twilio's REST APIs",
    "api_secret": "the secret of that API key",
    "phone_number": "your Twilio phone number in E.164 form, e.g. +15005550006",
}


class TACConfig(BaseModel):
    """Everything TAC needs to talk to Twilio. Build it with :meth:`from_env`.

    Without ``conversation_configuration_id`` TAC runs in ConversationRelay-only mode (voice, no
    memory).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    account_sid: str = Field(min_length=1)
    auth_token: str = Field(min_length=1)
    api_key: str = Field(min_length=1)
    api_secret: str = Field(min_length=1)
    phone_number: str = Field(min_length=1)
    conversation_configuration_id: str | None = None
    memory_config: TwilioMemoryConfig = Field(default_factory=TwilioMemoryConfig)
    rcs_sender_id: str | None = None
    whatsapp_number: str | None = None
    knowledge_base_id: str | None = None
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    region: str | None = None
    studio_handoff_flow_sid: str | None = None
    voice_public_domain: str | None = None
    voice_websocket_path: str = "/ws"
    voice_action_path: str = "/conversation-relay-callback"
    voice_call_event_path: str = "/twilio/call-events"
    conversation_intelligence_config: ConversationIntelligenceConfig | None = None
    api_base_url: str | None = None
    public_base_url: str | None = None
    validate_signatures: bool = True
    state_url: str | None = None
    session_ttl_seconds: float = Field(default=86400.0, gt=0)

    @field_validator(
        "conversation_configuration_id",
        "rcs_sender_id",
        "whatsapp_number",
        "knowledge_base_id",
        "studio_handoff_flow_sid",
        "state_url",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        region = str(value).strip().lower()
        if not _REGION.match(region):
            raise ValueError(f"must be a region name such as 'ie1' or 'au1', got {value!r}")
        return region

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        level = str(value or "INFO").strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
        return level

    @field_validator("voice_public_domain", mode="before")
    @classmethod
    def _domain(cls, value: Any) -> Any:
        if value is None:
            return None
        domain = str(value).strip()
        for scheme in ("https://", "http://", "wss://", "ws://"):
            if domain.lower().startswith(scheme):
                domain = domain[len(scheme) :]
        domain = domain.rstrip("/")
        return domain or None

    @field_validator("api_base_url", "public_base_url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        url = str(value).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"must be a full http(s) URL such as http://127.0.0.1:8000, got {value!r}"
            )
        return url

    @field_validator("voice_websocket_path", "voice_action_path", "voice_call_event_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    # -- derived URLs ---------------------------------------------------------------------

    def public_url(self) -> str | None:
        """The app's public base URL (``TAC_PUBLIC_BASE_URL`` wins over the voice domain)."""
        if self.public_base_url:
            return self.public_base_url
        if self.voice_public_domain:
            return f"https://{self.voice_public_domain}"
        return None

    def public_websocket_url(self) -> str | None:
        """The public base for WebSockets: ``ws://`` for ``http``, ``wss://`` for ``https``."""
        base = self.public_url()
        if base is None:
            return None
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :]
        return "ws://" + base[len("http://") :]

    def call_event_path(self, kind: CallEventKind) -> str:
        if kind not in CALL_EVENT_KINDS:
            raise ValueError(f"call event kind must be one of {CALL_EVENT_KINDS}, got {kind!r}")
        return f"{self.voice_call_event_path.rstrip('/')}/{kind}"

    def call_event_url(self, kind: CallEventKind) -> str | None:
        base = self.public_url()
        return None if base is None else base + self.call_event_path(kind)

    # -- environment ----------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TACConfig:
        """Read every ``TWILIO_*``/``TAC_*`` variable; a missing or bad one is a TACConfigError."""
        env = _Env(environ)
        values: dict[str, Any] = {}
        for field_name in _REQUIRED:
            variable = _ENV_NAMES[field_name]
            value = env.get(variable)
            if not value:
                raise TACConfigError(variable, f"is required: {_EXPECTED[field_name]}")
            values[field_name] = value
        optional = (
            "conversation_configuration_id",
            "rcs_sender_id",
            "whatsapp_number",
            "knowledge_base_id",
            "region",
            "studio_handoff_flow_sid",
            "voice_public_domain",
            "api_base_url",
            "public_base_url",
            "state_url",
        )
        for field_name in optional:
            value = env.get(_ENV_NAMES[field_name])
            if value is not None:
                values[field_name] = value
        for field_name, default in (
            ("log_level", "INFO"),
            ("log_format", "console"),
            ("voice_websocket_path", "/ws"),
            ("voice_action_path", "/conversation-relay-callback"),
            ("voice_call_event_path", "/twilio/call-events"),
        ):
            values[field_name] = env.get(_ENV_NAMES[field_name]) or default
        values["log_format"] = str(values["log_format"]).lower()
        values["validate_signatures"] = env.boolean("TWILIO_VALIDATE_SIGNATURES", True)
        values["session_ttl_seconds"] = env.number(
            "TAC_SESSION_TTL_SECONDS", 86400.0, 1.0, float("inf")
        )
        env.boolean("TAC_ANALYTICS_DISABLED", True)  # accepted; opentac never sends telemetry
        values["memory_config"] = TwilioMemoryConfig.from_env(environ)
        values["conversation_intelligence_config"] = ConversationIntelligenceConfig.from_env(
            environ
        )
        try:
            return cls(**values)
        except ValidationError as exc:
            raise _config_error(exc) from None


def _config_error(exc: ValidationError) -> TACConfigError:
    where, message = first_error(exc, "configuration")
    field_name = where.partition(".")[0]
    variable = _ENV_NAMES.get(field_name, field_name)
    message = message.removeprefix("Value error, ")
    return TACConfigError(variable, message)


class _Env:
    """Typed reads of environment variables with errors that name the variable."""

    def __init__(self, environ: Mapping[str, str] | None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value if value else None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise TACConfigError(name, f"must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise TACConfigError(name, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise TACConfigError(name, f"must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise TACConfigError(name, f"must be between {low} and {high}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise TACConfigError(name, f"must be true or false, got {raw!r}")
