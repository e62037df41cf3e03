"""Settings shared by the OpenAI speech-to-speech providers (Realtime and GPT-Live)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field, model_validator

from tac.channels.voice.media_streams._bridge import MediaStreamsBridgeConfig
from tac.models.voice import TwiMLRequest

__all__ = ["MediaStreamsOpenAIProviderConfig"]

SessionConfigHook = Callable[[TwiMLRequest], Awaitable[Any]]


class MediaStreamsOpenAIProviderConfig(MediaStreamsBridgeConfig):
    """An OpenAI speech-to-speech model behind Media Streams.

    - ``openai_api_key``: defaults to ``$OPENAI_API_KEY`` (required).
    - ``default_session_config``: the model's session (``model``, ``instructions``, voice, …);
      the μ-law audio format is filled in when absent. ``tools`` are added to it.
    - ``on_inbound_call_session_config``: ``async (TwiMLRequest) -> dict | None``, a session
      config for one incoming call (its keys replace the default's).
    - ``base_url``: where the model is. Default: ``$OPENAI_BASE_URL``, else
      ``https://api.openai.com/v1``; ``http(s)://h/v1`` becomes ``ws(s)://h/v1/…`` as the
      ``openai`` SDK does it. Point it at a gateway, Azure or a test double
      (:class:`tac.testing.FakeRealtimeModel`).
    """

    openai_api_key: str | None = Field(default_factory=lambda: os.environ.get("OPENAI_API_KEY"))
    default_session_config: dict[str, Any] | None = None
    on_inbound_call_session_config: SessionConfigHook | None = None
    base_url: str | None = None

    @model_validator(mode="after")
    def _key_required(self) -> MediaStreamsOpenAIProviderConfig:
        if not self.openai_api_key:
            raise ValueError("openai_api_key is required (or set OPENAI_API_KEY)")
        return self

    def model_base_url(self) -> str:
        """The WebSocket base of the model: ``ws(s)://host/v1`` (no trailing slash)."""
        base = self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        base = base.rstrip("/")
        if base.startswith("https://"):
            return "wss://" + base[len("https://") :]
        if base.startswith("http://"):
            return "ws://" + base[len("http://") :]
        if base.startswith(("ws://", "wss://")):
            return base
        raise ValueError(f"base_url must be an http(s) or ws(s) URL, got {base!r}")
