"""The app measured by ``bench_voice``: a VoiceChannel whose agent answers at once.

Run as ``python -m benchmarks._voice_server PORT``; relay-only mode, signatures checked, the
in-process session store. The agent echoes the prompt, so every millisecond measured is the
SDK's (plus the loopback and the load generator). The same code runs on the reference SDK
(``_voice_reference_server.py``); only how the public URL is configured differs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from tac import TAC, TACConfig
from tac.channels.voice import ConversationRelayProviderConfig, VoiceChannel
from tac.server import TACFastAPIServer, TACServerConfig

ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-token"


def serve(port: int, on_reply: Callable[[], None] | None = None, **public_url: str) -> None:
    """Serve the echo agent on ``port``; ``public_url`` is how the SDK learns its own URL;
    ``on_reply`` is called as each reply is made (``bench_observability`` counts them)."""
    tac = TAC(
        config=TACConfig(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            api_key="SKbench",
            api_secret="secret",
            phone_number="+18005550100",
            log_level="WARNING",
            **public_url,
        )
    )
    voice = VoiceChannel(tac, config=ConversationRelayProviderConfig(memory_mode="never"))

    @tac.on_message_ready
    async def echo(message: str, session: Any, memory: Any) -> str:
        if on_reply is not None:
            on_reply()
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


def main() -> None:
    port = int(sys.argv[1])
    serve(port, public_base_url=f"http://127.0.0.1:{port}")


if __name__ == "__main__":
    main()
