"""Hostile and faulty clients against a real server (uvicorn on loopback, as ``start()`` runs it).

Each test reproduces one finding of issue 13 with one request or socket: work done before
authentication, caps, slow and idle clients, bad bodies, bad ConversationRelay frames, logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._ports import free_port
from tests.voice._harness import ACCOUNT, AGENT_NUMBER, FROM, VoiceApp
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tac.core.errors import TACConfigError
from tac.server import TACServerConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

WELL_FORMED = "A" * 27 + "="  # the shape of a signature, not a valid one
TWIML_FORM = {
    "CallSid": "CA" + "1" * 32,
    "AccountSid": ACCOUNT,
    "From": FROM,
    "To": AGENT_NUMBER,
    "CallStatus": "ringing",
    "Direction": "inbound",
}


def limits(**settings: Any) -> TACServerConfig:
    return TACServerConfig(shutdown_grace_period=2, **settings)


@asynccontextmanager
async def raw(app: VoiceApp) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def head(path: str, length: int, *, signature: str | None, form: bool = True) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Length: {length}",
        "Content-Type: " + ("application/x-www-form-urlencoded" if form else "application/json"),
    ]
    if signature is not None:
        lines.append(f"X-Twilio-Signature: {signature}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def status_of(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status and body of one response (bounded: a hang fails the test)."""
    status_line = await asyncio.wait_for(reader.readline(), 10)
    assert status_line, "connection closed without an answer"
    length = 0
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), 10)
    return int(status_line.split()[1]), body


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (reads to EOF; a hang fails the test)."""
    try:
        while await asyncio.wait_for(reader.read(65536), 10):
            pass
    except ConnectionError:
        pass
    return True


def signed_json(app: VoiceApp, path: str, body: bytes) -> tuple[str, dict[str, str]]:
    full = f"{path}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    return full, {
        "X-Twilio-Signature": app.sign(app.url + full),
        "Content-Type": "application/json",
    }


# -- work before authentication (item 2) and the caps (item 3) ------------------------------------


async def test_unsigned_forms_are_refused_before_their_body_is_read() -> None:
    async with VoiceApp() as app:
        for signature in (None, "not-a-signature", WELL_FORMED[:-1] + "%"):
            async with raw(app) as (reader, writer):
                # the body is announced but never sent: only an answer from the headers comes
                writer.write(head("/twiml", 10_000, signature=signature))
                status, body = await status_of(reader)
                assert status == 403
                assert json.loads(body) == {"detail": "Invalid Twilio signature"}


async def test_form_routes_take_far_smaller_bodies_than_json_routes() -> None:
    async with VoiceApp() as app:
        assert app.server.config.max_form_body_bytes < app.server.config.max_request_body_bytes
        padded = {**TWIML_FORM, "Pad": "y" * 20_000}
        too_big = await app.post("/twiml", padded)
        assert too_big.status_code == 413
        assert too_big.json() == {
            "status": "error",
            "message": "request body larger than 16384 bytes",
        }
        assert (await app.post("/twiml", TWIML_FORM)).status_code == 200
        body = json.dumps({"eventType": "SOMETHING_NEW", "data": {}, "pad": "z" * 20_000})
        path, headers = signed_json(app, "/webhook", body.encode())
        async with _client() as http:
            answer = await http.post(app.url + path, content=body, headers=headers)
        assert answer.status_code == 200


async def test_form_cap_is_configurable() -> None:
    async with VoiceApp(server_config=limits(max_form_body_bytes=64_000)) as app:
        padded = {**TWIML_FORM, "Pad": "y" * 20_000}
        assert (await app.post("/twiml", padded)).status_code == 200
    environ = {"TAC_MAX_FORM_BODY_BYTES": "4096", "TAC_WEBSOCKET_SETUP_TIMEOUT_SECONDS": "2.5"}
    config = TACServerConfig.from_env(environ)
    assert config.max_form_body_bytes == 4096
    assert config.websocket_setup_timeout == 2.5
    with pytest.raises(TACConfigError, match="TAC_HEADER_TIMEOUT_SECONDS"):
        TACServerConfig.from_env({"TAC_HEADER_TIMEOUT_SECONDS": "soon"})


async def test_the_cap_holds_under_a_root_path() -> None:
    async with VoiceApp(uvicorn_settings={"root_path": "/api"}) as app:
        async with raw(app) as (reader, writer):
            writer.write(head("/webhook", 200_000_000, signature=WELL_FORMED, form=False))
            status, _ = await status_of(reader)  # answered from the headers alone
            assert status == 413
        async with raw(app) as (reader, writer):
            writer.write(
                b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/json\r\nX-Twilio-Signature: " + WELL_FORMED.encode()
            )
            writer.write(b"\r\n\r\n")
            chunk = b"x" * 65536
            for _ in range(20):  # 1.25 MiB, past the 1 MiB cap, without an end
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            status, _ = await status_of(reader)
            assert status == 413


# -- wrong answers to bad input (item 5) --------------------------------------------------------


async def test_forms_posted_to_the_json_webhook_get_415() -> None:
    async with VoiceApp() as app:
        form = {"MessageSid": "SM1", "Body": "hello", "From": FROM}
        answer = await app.post("/webhook", form)  # signed as Twilio signs a form
        assert answer.status_code == 415
        assert answer.json()["status"] == "error"
        assert "application/json" in answer.json()["message"]


@pytest.mark.parametrize("shape", ["list", "object"])
async def test_json_nested_too_deep_is_400(shape: str) -> None:
    depth = 5000
    if shape == "list":
        body = "[" * depth + "]" * depth
    else:
        body = '{"eventType": "CONVERSATION_CREATED", "data": ' + '{"a": ' * depth
        body += "1" + "}" * (depth + 1)
    async with VoiceApp() as app:
        path, headers = signed_json(app, "/webhook", body.encode())
        async with _client() as http:
            answer = await http.post(app.url + path, content=body, headers=headers)
        assert answer.status_code == 400
        assert answer.json() == {"status": "error", "message": "webhook body must be JSON"}


# -- slow and idle clients (item 4) -------------------------------------------------------------


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_slow_headers_and_bodies_are_cut_off(http: str) -> None:
    config = limits(header_timeout=0.2, body_timeout=0.2)
    async with VoiceApp(server_config=config, uvicorn_settings={"http": http}) as app:
        async with raw(app) as (reader, _):
            assert await closed(reader)  # connected, never sent a byte
        async with raw(app) as (reader, writer):
            writer.write(b"POST /twiml HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers unfinished
            assert await closed(reader)
        async with raw(app) as (reader, writer):
            writer.write(head("/twiml", 1000, signature=WELL_FORMED) + b"CallSid=CA")
            assert await closed(reader)  # the body never finishes
        assert (await app.post("/twiml", TWIML_FORM)).status_code == 200


async def test_a_connection_answered_early_goes_on_serving() -> None:
    """The rest of a body answered without being read is dropped, not taken for headers."""
    async with VoiceApp() as app, raw(app) as (reader, writer):
        body = b"{" + b"x" * 300_000 + b"}"  # bigger than the request head cap
        writer.write(head("/webhook", len(body), signature=None, form=False) + body)
        assert (await status_of(reader))[0] == 403
        writer.write(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await status_of(reader))[0] == 404


async def test_oversized_headers_get_431_before_they_pile_up() -> None:
    # httptools (uvicorn's default) has no limit of its own; h11 has one, set to the same size
    async with VoiceApp(uvicorn_settings={"http": "httptools"}) as app:
        async with raw(app) as (reader, writer):
            writer.write(b"POST /twiml HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            with contextlib.suppress(ConnectionError):
                for _ in range(64):  # 4 MiB of one header, never finished
                    writer.write(b"a" * 65536)
                    await writer.drain()
            status, body = await status_of(reader)
            assert status == 431
            assert json.loads(body) == {"status": "error", "message": "request headers too large"}
        assert (await app.post("/twiml", TWIML_FORM)).status_code == 200


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_pending_connections_are_capped_idle_ones_evicted_first(http: str) -> None:
    settings = {"http": http}
    async with VoiceApp(
        server_config=limits(max_pending_connections=3), uvicorn_settings=settings
    ) as app:
        async with raw(app) as (_, w1), raw(app) as (_, w2), raw(app) as (_, w3):
            for writer in (w1, w2, w3):
                writer.write(b"POST /twiml HTTP/1.1\r\n")  # all three still sending
                await writer.drain()
            await asyncio.sleep(0.1)
            async with raw(app) as (reader, _):
                status, body = await status_of(reader)
                assert status == 503
                assert json.loads(body)["message"] == "too many pending connections"
        # three kept-alive idle connections do not lock anyone out: the oldest gives way
        idle = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
            writer.write(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await status_of(reader))[0] == 404
            idle.append((reader, writer))
        assert (await app.post("/twiml", TWIML_FORM)).status_code == 200
        assert await closed(idle[0][0])
        for _, writer in idle:
            writer.close()


async def test_a_websocket_without_setup_is_closed_1008() -> None:
    async with VoiceApp(server_config=limits(websocket_setup_timeout=0.2)) as app:
        connection = await app.open()
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(connection.recv(), 10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        assert info.value.rcvd.reason == "setup not received in time"
        async with app.call() as call:  # a prompt caller is served as before
            app.tac.on_message_ready(lambda message, session, memory: "hello")
            await call.say("hi")
            assert (await call.reply())[0] == "hello"


async def test_start_serves_with_the_limits_from_the_environment() -> None:
    """``server.start()`` in its own process (uvloop, as in production): the header deadline
    cuts a slow client off, and does not touch a WebSocket once it is upgraded."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TWILIO_SERVER_PORT": str(port),
        "TAC_PUBLIC_BASE_URL": public,
        "TAC_HEADER_TIMEOUT_SECONDS": "0.3",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.server._served_app",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                assert process.returncode is None, "the app did not start"
                await asyncio.sleep(0.05)
        writer.write(b"POST /twiml HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        assert await closed(reader)
        writer.close()
        url = f"ws://127.0.0.1:{port}/ws"
        signature = RequestValidator("test-auth-token").compute_signature(url, {})
        async with connect(url, additional_headers={"X-Twilio-Signature": signature}) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "setup",
                        "callSid": "CA" + "4" * 32,
                        "from": FROM,
                        "to": AGENT_NUMBER,
                        "accountSid": ACCOUNT,
                    }
                )
            )
            await asyncio.sleep(1)  # past the header deadline: an upgraded socket is not cut
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "hi", "last": True}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply == {"type": "text", "token": "heard hi", "last": True}
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 30)


# -- ConversationRelay closes cleanly (item 6) and logs under attack (item 8) --------------------


async def test_a_frame_nested_too_deep_ends_the_call_with_1009_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tac")
    async with VoiceApp() as app:
        ended: list[str] = []
        app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
        async with app.call() as call:
            await call.connection.send("[" * 100_000 + "]" * 100_000)
            with pytest.raises(ConnectionClosed) as info:
                await call.frame(10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009
        assert info.value.rcvd.reason == "frame nested too deep"
        await app.settled()
        assert ended == [call.call_sid]
        assert any("call closed: frame nested too deep" in r.getMessage() for r in caplog.records)


async def test_a_long_non_ascii_refusal_fits_the_close_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="tac")
    async with VoiceApp() as app:
        connection = await app.open()
        kind = "é\n2026-01-01 CRITICAL forged line " + "ü" * 400_000
        await connection.send(json.dumps({"type": kind}, ensure_ascii=False))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(connection.recv(), 10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        reason = info.value.rcvd.reason
        assert reason.startswith("first message must be 'setup', got 'é")
        assert len(reason.encode()) <= 123
        await app.settled()
    lines = [r.getMessage() for r in caplog.records if "session refused" in r.getMessage()]
    assert len(lines) == 1
    assert len(lines[0]) < 1200  # not 800 KB
    assert "\n" not in lines[0]
    assert "\\n2026-01-01 CRITICAL forged line" in lines[0]


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10)
