"""The voice app of ``bench_voice`` on the reference SDK (2.5.0), for the side-by-side figures.

Run with the interpreter of ``.venv-reference`` (see ``bench_messaging``): relay-only mode,
signatures checked, an agent that echoes the prompt, as ``_voice_server.py`` on opentac. The
reference builds its public URLs from ``voice_public_domain`` (no scheme), so the WebSocket URL
in its TwiML says ``wss://``; the load generator connects to the plain loopback socket.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn

from tac import TAC, TACConfig
from tac.channels.voice import ConversationRelayProviderConfig, VoiceChannel
from tac.server import TACFastAPIServer, TACServerConfig

ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-token"


def main() -> None:
    port = int(sys.argv[1])
    tac = TAC(
        config=TACConfig(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            api_key="SKbench",
            api_secret="secret",
            phone_number="+18005550100",
            voice_public_domain=f"127.0.0.1:{port}",
            log_level="WARNING",
        )
    )
    voice = VoiceChannel(tac, config=ConversationRelayProviderConfig(memory_mode="never"))

    @tac.on_message_ready
    async def echo(message: str, session: Any, memory: Any) -> str:
        return message

    server = TACFastAPIServer(tac, voice_channel=voice, config=TACServerConfig(port=port))
    uvicorn.run(
        server.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        ws_max_queue=64,
        ws=os.environ.get("BENCH_WS", "auto"),
    )


if __name__ == "__main__":
    main()
