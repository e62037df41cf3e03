"""The reference's TwiML builder classes (``TwiMLBuilderBase``, ``TwiMLBuilderConversationRelay``).

opentac's voice channel builds TwiML with :mod:`tac.channels.voice.conversation_relay.twiml`'s
functions; these classes are for code written against the reference, and write the same TwiML.
"""

from __future__ import annotations

from typing import Any

from tac.core.config import TACConfig
from tac.models.voice import VoiceTwiMLOptionsConversationRelay

__all__ = ["TwiMLBuilderBase", "TwiMLBuilderConversationRelay"]


class TwiMLBuilderBase:
    """Holds the ``TACConfig`` and a provider's channel config; knows the public WebSocket URL."""

    def __init__(self, tac_config: TACConfig, channel_config: Any) -> None:
        self.tac_config = tac_config
        self.channel_config = channel_config

    def _default_websocket_url(self) -> str | None:
        base = self.tac_config.public_websocket_url()
        return None if base is None else base + self.tac_config.voice_websocket_path

    @staticmethod
    def _missing_websocket_url_error(caller: str) -> ValueError:
        return ValueError(
            f"{caller} needs a WebSocket URL: set TAC_PUBLIC_BASE_URL or "
            "TWILIO_VOICE_PUBLIC_DOMAIN (TACConfig.public_base_url / voice_public_domain)"
        )


class TwiMLBuilderConversationRelay(TwiMLBuilderBase):
    """The TwiML of one ConversationRelay call from ``TACConfig`` and the channel's config.

    Layers, later winning field by field: :func:`default_relay_options`, ``host``, the channel's
    ``default_twiml_options``, ``per_call``; ``websocket_url`` wins over all of them.
    """

    def build(
        self,
        caller: str,
        *,
        host: VoiceTwiMLOptionsConversationRelay | None = None,
        per_call: VoiceTwiMLOptionsConversationRelay | None = None,
        websocket_url: str | None = None,
    ) -> str:
        """The TwiML document; ``caller`` names the API used in the missing-URL error."""
        from tac.channels.voice.conversation_relay.twiml import (
            default_relay_options,
            generate_twiml,
            merge_twiml_options,
        )

        options = merge_twiml_options(
            default_relay_options(self.tac_config),
            host,
            getattr(self.channel_config, "default_twiml_options", None),
            per_call,
        )
        if websocket_url is None and not options.websocket_url:
            raise self._missing_websocket_url_error(caller)
        return generate_twiml(websocket_url, options)
