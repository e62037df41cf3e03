"""A voice app served by ``TACFastAPIServer.start()`` (``python -m tests.server._served_app``).

Its settings come from the environment, as in production: ``TWILIO_SERVER_PORT``,
``TAC_PUBLIC_BASE_URL`` and any ``TAC_*`` limit. The agent answers ``heard <what was said>``.
"""

from __future__ import annotations

from typing import Any

from tac import TAC, TACConfig
from tac.channels.voice import VoiceChannel
from tac.server import TACFastAPIServer, TACServerConfig


def main() -> None:
    import os

    tac = TAC(
        TACConfig(
            account_sid="AC109031c05318848ba78ba04165baaad1",
            auth_token="test-auth-token",
            api_key="SKkey",
            api_secret="secret",
            phone_number="+18005550100",
            public_base_url=os.environ["TAC_PUBLIC_BASE_URL"],
            log_level="WARNING",
        )
    )

    @tac.on_message_ready
    def answer(message: str, session: Any, memory: Any) -> str:
        return f"heard {message}"

    server = TACFastAPIServer(
        tac,
        voice_channel=VoiceChannel(tac),
        config=TACServerConfig.from_env().model_copy(update={"host": "127.0.0.1"}),
    )
    server.start()


if __name__ == "__main__":
    main()
