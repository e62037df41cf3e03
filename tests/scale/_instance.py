"""One of the opentac instances behind nginx (``python -m tests.scale._instance``).

Environment: the sandbox's (``opentac sandbox --write-env``), plus ``TAC_STATE_URL`` (the shared
Redis), ``TWILIO_SERVER_PORT`` (this instance's port), ``TAC_PUBLIC_BASE_URL`` (nginx) and
``SCALE_LOG``: a file this instance appends one line to for every session that ends
(``ended <conversation id> <instance>``) and every error (``error <kind> <instance>
uncertain|- <conversation id>``), so the
test can count across processes. The agent takes 50-300 ms per turn, so that killing an
instance catches turns in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

from fastapi import FastAPI

from tac import TAC, TACConfig
from tac.channels.chat import ChatChannel
from tac.channels.rcs import RCSChannel
from tac.channels.sms import SMSChannel
from tac.channels.voice import VoiceChannel
from tac.channels.whatsapp import WhatsAppChannel
from tac.server import TACFastAPIServer


def _record(line: str) -> None:
    # One write() per line on an O_APPEND descriptor: lines from several processes never mix.
    fd = os.open(os.environ["SCALE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def main() -> None:
    name = os.environ.get("SCALE_INSTANCE", "?")
    tac = TAC(config=TACConfig.from_env())

    async def agent(message: str, session: Any, memory: Any) -> str:
        await asyncio.sleep(random.uniform(0.05, 0.3))
        if session.channel == "voice":  # the test needs to know whose call this is
            return f"re[{message}] conv={session.conversation_id} on={name}"
        return f"re[{message}]"

    def ended(session: Any) -> None:
        _record(f"ended {session.conversation_id} {name}")

    def failed(exc: BaseException, context: dict[str, Any]) -> None:
        uncertain = "uncertain" if context.get("reply_uncertain") else "-"
        conversation = context.get("conversation_id") or "-"
        _record(f"error {type(exc).__name__} {name} {uncertain} {conversation}")

    tac.on_message_ready(agent)
    tac.on_conversation_ended(ended)
    tac.on_error(failed)
    channels = [SMSChannel(tac), WhatsAppChannel(tac), RCSChannel(tac), ChatChannel(tac)]
    voice = VoiceChannel(tac)
    app = FastAPI()

    @app.post("/admin/handoff/{conversation_id}")
    async def handoff(conversation_id: str) -> dict[str, str]:
        """A supervisor's request, landing on whichever instance: hand the call to a human."""
        await voice.hang_up(conversation_id, handoff_data=json.dumps({"reason": "supervisor"}))
        return {"instance": name}

    server = TACFastAPIServer(tac=tac, messaging_channels=channels, voice_channel=voice, app=app)
    server.start()


if __name__ == "__main__":
    main()
