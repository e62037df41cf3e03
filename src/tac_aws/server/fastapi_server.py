"""``TACAWSFastAPIServer``: TAC's server for AWS load balancers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tac.server import TACFastAPIServer, TACServerConfig
from tac_aws.server.middleware import ALBForwardedHeadersMiddleware

if TYPE_CHECKING:
    from tac.channels.base import BaseChannel
    from tac.core.tac import TAC

__all__ = ["TACAWSFastAPIServer"]


class TACAWSFastAPIServer(TACFastAPIServer):
    """``TACFastAPIServer`` with :class:`ALBForwardedHeadersMiddleware` for the app's public
    domain. Needs the public URL (``TAC_PUBLIC_BASE_URL`` or ``TWILIO_VOICE_PUBLIC_DOMAIN``).

    Raises:
        ValueError: no public URL is configured.
    """

    def __init__(
        self,
        tac: TAC,
        voice_channel: BaseChannel | None = None,
        messaging_channels: Sequence[BaseChannel] | None = None,
        config: TACServerConfig | None = None,
        app: Any = None,
    ) -> None:
        public_url = tac.config.public_url()
        if not public_url:
            raise ValueError(
                "TACAWSFastAPIServer needs the app's public URL: set TAC_PUBLIC_BASE_URL "
                "(or TWILIO_VOICE_PUBLIC_DOMAIN)"
            )
        super().__init__(
            tac, voice_channel, messaging_channels, config or TACServerConfig.from_env(), app
        )
        domain = public_url.split("://", 1)[-1].rstrip("/")
        self.app.add_middleware(ALBForwardedHeadersMiddleware, public_domain=domain)
