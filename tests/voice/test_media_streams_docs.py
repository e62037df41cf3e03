"""docs/channels-voice.md, "Speech-to-speech over Media Streams": the snippet serves a real call.

The snippet runs as written with the sandbox's environment and the fake realtime model's
(``OPENAI_BASE_URL``); the sandbox's Media Streams phone then calls the app it built.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tac.sandbox import Sandbox
from tac.testing import FakeRealtimeModel
from tac.testing.fake_realtime import mulaw_silence, mulaw_tone
from tac_sandbox import StreamCaller, serve_app

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "docs" / "channels-voice.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippet() -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## Speech-to-speech over Media Streams", 1)[1]
    found: list[str] = FENCE.findall(section)
    assert len(found) == 1
    return found[0]


async def test_the_speech_to_speech_snippet_serves_a_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = FakeRealtimeModel()
    model.reply("Hello from Owl Shoes.", audio_ms=200, user_transcript="Hi")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with model.serve(), Sandbox.start(app_url=app_url) as sandbox:
        for name, value in {**sandbox.env, **model.env()}.items():
            monkeypatch.setenv(name, value)
        namespace: dict[str, Any] = {"__name__": "docs:channels-voice.md#speech-to-speech"}
        exec(compile(snippet(), "channels-voice.md#speech-to-speech", "exec"), namespace)
        server = namespace["server"]
        ended: list[Any] = []
        namespace["tac"].on_conversation_ended(ended.append)
        async with serve_app(server.app, sock=sock):
            identity = sandbox.identity
            async with StreamCaller(
                app_url, account_sid=identity.account_sid, auth_token=identity.auth_token
            ) as caller:
                await caller.dial()
                caller.say(mulaw_tone(300) + mulaw_silence(400))
                await caller.wait_until_heard(200)
                await caller.hang_up()
            await caller.until(lambda: bool(ended))
        await namespace["tac"].aclose()
    session = model.sessions[0]
    instructions = session.events[0]["session"]["instructions"]
    assert instructions.startswith("You are Owl Shoes' phone agent.")
    assert [t["name"] for t in session.events[0]["session"]["tools"]] == ["handoff"]
    assert ended[0].conversation_id.startswith("conv_conversation_")
