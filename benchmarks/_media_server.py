"""The app measured by ``bench_media_streams``: a VoiceChannel bridging calls to a realtime model.

Run as ``BENCH_MODEL_URL=http://h/v1 python -m benchmarks._media_server PORT``: the OpenAI
Realtime provider pointed at the bench's fake model, relay-only mode (no Orchestrator),
signatures checked, the in-process session store, uvicorn configured as
``TACFastAPIServer.start()`` configures it (``BENCH_WS`` picks another WebSocket protocol).
"""

from __future__ import annotations

import os
import sys

import uvicorn

from tac import TAC, TACConfig
from tac.channels.voice import VoiceChannel
from tac.channels.voice.media_streams.openai_realtime import OpenAIRealtimeProviderConfig
from tac.server import TACFastAPIServer, TACServerConfig
from tac.server.limits import uvicorn_config

ACCOUNT = "AC" + "0" * 32
TOKEN = "bench-token"


def main() -> None:
    port = int(sys.argv[1])
    model_url = os.environ["BENCH_MODEL_URL"]
    tac = TAC(
        config=TACConfig(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            api_key="SKbench",
            api_secret="secret",
            phone_number="+18005550100",
            log_level="WARNING",
            public_base_url=f"http://127.0.0.1:{port}",
        )
    )
    voice = VoiceChannel(
        tac,
        config=OpenAIRealtimeProviderConfig(
            openai_api_key="sk-bench",
            base_url=model_url,
            default_session_config={"model": "gpt-realtime", "instructions": "Be brief."},
            input_audio_batch_ms=int(os.environ.get("BENCH_INPUT_BATCH_MS", "20")),
        ),
    )
    server = TACFastAPIServer(tac, voice_channel=voice, config=TACServerConfig(port=port))
    # configured as TACFastAPIServer.start() configures uvicorn (its WebSocket protocol too)
    config = uvicorn_config(
        server.app,
        server.config,
        host="127.0.0.1",
        log_level="warning",
        backlog=4096,
        ws_max_queue=256,
        ws=os.environ.get("BENCH_WS", "auto"),
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
