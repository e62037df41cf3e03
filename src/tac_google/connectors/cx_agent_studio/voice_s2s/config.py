"""``VoiceS2SConfig``: CX Agent Studio's native speech-to-speech voice."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tac.channels.voice.conversation_relay import DEFAULT_WELCOME_GREETING

__all__ = ["VoiceS2SConfig"]


class VoiceS2SConfig(BaseModel):
    """Native speech-to-speech voice for :class:`CXAgentStudioConnector` (not available in
    opentac yet: the connector raises ``NotImplementedError`` when given one).

    Attributes:
        deployment_id: the CES deployment of the app's Twilio channel, when it has one.
        welcome_greeting: the text that opens the CES session (the agent answers it as any
            turn); ``None`` lets the agent's own greeting play.
    """

    model_config = ConfigDict(extra="forbid")

    deployment_id: str | None = None
    welcome_greeting: str | None = DEFAULT_WELCOME_GREETING
