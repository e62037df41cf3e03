"""docs/deployment.md's nginx block, run by Debian's nginx in front of a real voice app.

The block is taken from the page as written; only what a loopback test cannot have changes:
no TLS (its ``ssl_`` lines go, ``listen`` takes a free port) and the upstream is the app's port.
Through it, a signed ``/twiml`` is answered and a ConversationRelay call gets its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests._nginx import check_config, loopback_config, nginx_binary
from tests._ports import free_port
from tests.voice._harness import ACCOUNT, AGENT_NUMBER, FROM, VoiceApp
from websockets.asyncio.client import connect

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        nginx_binary() is None,
        reason="Debian's nginx is not installed (scripts/ensure-services.sh)",
    ),
]


@contextlib.contextmanager
def run_nginx(folder: Path, listen: int, upstream: int) -> Iterator[None]:
    conf = folder / "nginx.conf"
    conf.write_text(loopback_config(folder, listen, [upstream]))
    check_config(folder, conf)
    process = subprocess.Popen(
        [nginx_binary() or "nginx", "-p", str(folder), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(10)


async def test_the_documented_proxy_serves_a_call(tmp_path: Path) -> None:
    nginx_port = free_port()
    public = f"http://127.0.0.1:{nginx_port}"
    async with VoiceApp(public_base_url=public) as app:
        app.tac.on_message_ready(lambda message, session, memory: f"heard {message}")
        with run_nginx(tmp_path, nginx_port, app.port):
            await _until_listening(nginx_port)
            form = {
                "CallSid": "CA" + "2" * 32,
                "AccountSid": ACCOUNT,
                "From": FROM,
                "To": AGENT_NUMBER,
                "CallStatus": "ringing",
                "Direction": "inbound",
            }
            signature = app.sign(public + "/twiml", form)
            async with httpx.AsyncClient(timeout=10) as http:
                twiml = await http.post(
                    public + "/twiml", data=form, headers={"X-Twilio-Signature": signature}
                )
            assert twiml.status_code == 200
            assert f'url="ws://127.0.0.1:{nginx_port}/ws"' in twiml.text
            url = f"ws://127.0.0.1:{nginx_port}/ws"
            async with connect(url, additional_headers={"X-Twilio-Signature": app.sign(url)}) as ws:
                setup = {
                    "type": "setup",
                    "sessionId": "VX1",
                    "accountSid": ACCOUNT,
                    "callSid": "CA" + "3" * 32,
                    "from": FROM,
                    "to": AGENT_NUMBER,
                    "direction": "inbound",
                    "customParameters": {},
                }
                await ws.send(json.dumps(setup))
                await ws.send(json.dumps({"type": "prompt", "voicePrompt": "hi", "last": True}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert reply == {"type": "text", "token": "heard hi", "last": True}
        await app.settled()


async def _until_listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise AssertionError("nginx did not start")
