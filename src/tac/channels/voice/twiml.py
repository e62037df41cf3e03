"""What every provider's TwiML builder shares (the reference's ``TwiMLBuilderBase``)."""

from __future__ import annotations

from typing import Any

from tac.core.config import TACConfig

__all__ = ["TwiMLBuilderBase"]


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
