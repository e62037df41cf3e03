"""An agent on the reference SDK (``twilio-agent-connect`` 2.5.0), for the sandbox's fidelity tests.

Run by the reference's own interpreter (``.venv-reference``), never by opentac's: ``python
tests/sandbox/reference_app.py PORT``, with the environment ``opentac sandbox --write-env``
writes. Only the reference's product base URLs are redirected to the sandbox
(:func:`benchmarks._reference.redirect_reference`); everything else runs as published.

The agent answers every message with what it was given, so a test can read it off the
customer's phone: ``echo <text> | channel=<CHANNEL> | traits=<json> | observations=<n> |
summaries=<n>``. A message containing ``human`` hands off through the reference's Studio
handoff tool (digital: a Studio execution; voice: the ``end`` frame's HandoffData).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from benchmarks._reference import redirect_reference

redirect_reference(os.environ["TWILIO_API_BASE_URL"])

from tac import TAC, TACConfig  # noqa: E402  (after the redirect)
from tac.channels import (  # noqa: E402
    ChatChannel,
    RCSChannel,
    SMSChannel,
    VoiceChannel,
    WhatsAppChannel,
)
from tac.server import TACFastAPIServer, TACServerConfig  # noqa: E402
from tac.tools import create_studio_handoff_tool  # noqa: E402

HANDOFF_ATTRIBUTES = {"department": "support"}


def main() -> None:
    port = int(sys.argv[1])
    tac = TAC(TACConfig.from_env())
    messaging: dict[str, Any] = {"memory_mode": "always"}
    channels = [
        SMSChannel(tac, messaging),
        WhatsAppChannel(tac, messaging),
        RCSChannel(tac, messaging),
        ChatChannel(tac, messaging),
    ]
    voice = VoiceChannel(tac, {"memory_mode": "always"})

    async def reply(message: str, session: Any, memory: Any) -> str:
        if "human" in message:
            handoff = create_studio_handoff_tool(tac, session, attributes=HANDOFF_ATTRIBUTES)
            await handoff(reason="the customer asked for a human")
            return "Connecting you with a person."
        traits = session.profile.traits if session.profile is not None else None
        return " | ".join(
            [
                f"echo {message}",
                f"channel={session.channel}",
                f"traits={json.dumps(traits, sort_keys=True)}",
                f"observations={len(memory.observations) if memory else 'none'}",
                f"summaries={len(memory.summaries) if memory else 'none'}",
            ]
        )

    tac.on_message_ready(reply)
    server = TACFastAPIServer(
        tac,
        voice_channel=voice,
        messaging_channels=channels,
        config=TACServerConfig(host="127.0.0.1", port=port, cintel_webhook_path="/ci-webhook"),
    )
    server.start()


if __name__ == "__main__":
    main()
