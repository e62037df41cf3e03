"""The app under test: TAC + SMS + a fake agent (``python -m benchmarks._messaging_app``).

Reads the usual environment (pointed at the benchmark's Twilio twin) plus ``BENCH_MEMORY_MODE``
and serves with ``TACFastAPIServer.start()`` on ``TWILIO_SERVER_HOST:TWILIO_SERVER_PORT``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tac import TAC, TACConfig
from tac.channels.sms import SMSChannel, SMSChannelConfig
from tac.server import TACFastAPIServer


def main(on_reply: Callable[[], None] | None = None) -> None:
    """Serve; ``on_reply`` is called as each reply is made (``bench_observability`` counts)."""
    tac = TAC(config=TACConfig.from_env())  # as the seeds write it: runs on the reference too
    mode: Any = os.environ.get("BENCH_MEMORY_MODE", "never")
    sms = SMSChannel(tac, SMSChannelConfig(memory_mode=mode))

    async def fake_agent(message: str, session: Any, memory: Any) -> str:
        if on_reply is not None:
            on_reply()
        return "ok: " + message

    tac.on_message_ready(fake_agent)
    TACFastAPIServer(tac=tac, messaging_channels=[sms]).start()


if __name__ == "__main__":
    main()
