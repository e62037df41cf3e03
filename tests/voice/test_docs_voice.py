"""docs/channels-voice.md: every python snippet runs (the first one as a real server process)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from tests.voice._harness import ACCOUNT, AGENT_NUMBER, VoiceApp
from twilio.request_validator import RequestValidator

from tac.models.voice import TwiMLRequest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "channels-voice.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[str]:
    found = FENCE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(found) >= 3  # the speech-to-speech snippet runs in test_media_streams_docs
    return found


async def test_first_snippet_serves_calls() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": "docs-token",
        "TWILIO_API_KEY": "SKdocs",
        "TWILIO_API_SECRET": "secret",
        "TWILIO_PHONE_NUMBER": AGENT_NUMBER,
        "TAC_PUBLIC_BASE_URL": base,
        "TWILIO_SERVER_HOST": "127.0.0.1",
        "TWILIO_SERVER_PORT": str(port),
    }
    for name in ("TWILIO_CONVERSATION_CONFIGURATION_ID", "TWILIO_API_BASE_URL", "TAC_STATE_URL"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        blocks()[0],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        form = {"CallSid": "CAdocs", "AccountSid": ACCOUNT}
        signature = RequestValidator("docs-token").compute_signature(f"{base}/twiml", form)
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    response = await client.post(
                        f"{base}/twiml", data=form, headers={"X-Twilio-Signature": signature}
                    )
                    break
                except httpx.TransportError:
                    assert process.returncode is None, "the documented server exited"
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the documented server did not start")
        assert response.status_code == 200
        assert f'url="ws://127.0.0.1:{port}/ws"' in response.text
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def test_hook_and_outbound_snippets() -> None:
    requests: list[httpx.Request] = []

    def calls_api(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(201, json={"sid": "CAoutbound", "status": "queued"})

    async with VoiceApp(transport=httpx.MockTransport(calls_api)) as app:
        namespace: dict[str, Any] = {"voice_channel": app.channel}
        exec(compile(blocks()[1], "channels-voice.md#2", "exec"), namespace)
        twiml = await app.channel.handle_incoming_call(
            TwiMLRequest(caller_country="MX", from_number="+525555555555")
        )
        assert 'language="es-MX"' in twiml
        assert '<Parameter name="caller" value="+525555555555" />' in twiml
        # top-level await, as in a notebook or an async function body
        source = "async def __snippet():\n" + "".join(
            f"    {line}\n" for line in blocks()[2].splitlines()
        )
        source += "    return result\n"
        exec(compile(source, "channels-voice.md#3", "exec"), namespace)
        result = await namespace["__snippet"]()
        assert result.call_sid == "CAoutbound"
        form = parse_qs(requests[0].content.decode())
        assert form["MachineDetection"] == ["Enable"]
        assert form["Timeout"] == ["30"]
