"""A real voice app on loopback (uvicorn) and a signed ConversationRelay client (websockets).

The client plays Twilio's side the way the protocol describes it: it signs the handshake and
form posts with the auth token (twilio's RequestValidator), sends ``setup`` first and collects
streamed tokens into replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import uvicorn
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect

from tac import TAC, TACConfig
from tac.channels.voice import VoiceChannel, VoiceChannelConfig
from tac.server import TACFastAPIServer, TACServerConfig
from tac.server.limits import uvicorn_config

ACCOUNT = "AC109031c05318848ba78ba04165baaad1"
TOKEN = "test-auth-token"
FROM = "+14155550123"
AGENT_NUMBER = "+18005550100"


class RelayClient:
    """Twilio's side of one ConversationRelay session."""

    def __init__(self, connection: ClientConnection, call_sid: str) -> None:
        self.connection = connection
        self.call_sid = call_sid

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def say(self, text: str, *, last: bool = True) -> None:
        await self.send({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": last})

    async def interrupt(self, heard: str, duration_ms: int = 400) -> None:
        await self.send(
            {
                "type": "interrupt",
                "utteranceUntilInterrupt": heard,
                "durationUntilInterruptMs": duration_ms,
            }
        )

    async def press(self, digit: str) -> None:
        await self.send({"type": "dtmf", "digit": digit})

    async def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        return data

    async def reply(self, timeout: float = 5.0) -> tuple[str, list[dict[str, Any]]]:
        """Frames up to and including the ``text`` with ``last: true``; the joined tokens."""
        frames: list[dict[str, Any]] = []
        while True:
            frame = await self.frame(timeout)
            frames.append(frame)
            if frame.get("type") == "text" and frame.get("last"):
                return "".join(f["token"] for f in frames if f.get("type") == "text"), frames

    async def close(self) -> None:
        await self.connection.close()


class VoiceApp:
    """TAC + VoiceChannel + TACFastAPIServer served by uvicorn on 127.0.0.1."""

    def __init__(
        self,
        *,
        config: VoiceChannelConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        channel_factory: Callable[[TAC], VoiceChannel] | None = None,
        env: dict[str, str] | None = None,
        session_store: Any = None,
        server_config: TACServerConfig | None = None,
        uvicorn_settings: dict[str, Any] | None = None,
        **tac_settings: Any,
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        settings: dict[str, Any] = {
            "account_sid": ACCOUNT,
            "auth_token": TOKEN,
            "api_key": "SKkey",
            "api_secret": "secret",
            "phone_number": AGENT_NUMBER,
            "public_base_url": self.url,
            "log_level": "WARNING",
        }
        if env is not None:  # e.g. a sandbox's environment; this app's own URL wins
            settings = TACConfig.from_env(env).model_dump()
            settings.update(public_base_url=self.url, voice_public_domain=None)
        settings.update(tac_settings)
        self.tac = TAC(TACConfig(**settings), transport=transport, session_store=session_store)
        if channel_factory is not None:
            self.channel = channel_factory(self.tac)
        else:
            self.channel = VoiceChannel(self.tac, config=config)
        self.server = TACFastAPIServer(
            self.tac,
            voice_channel=self.channel,
            config=server_config or TACServerConfig(shutdown_grace_period=2),
        )
        self.validator = RequestValidator(self.tac.config.auth_token)
        self._uvicorn_settings = uvicorn_settings or {}
        self._uvicorn: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._calls = 0

    async def __aenter__(self) -> VoiceApp:
        # served as ``TACFastAPIServer.start()`` serves it: with the server's limits
        config = uvicorn_config(
            self.server.app,
            self.server.config,
            log_level="warning",
            lifespan="on",
            ws_max_queue=1024,
            **self._uvicorn_settings,
        )
        self._uvicorn = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(
            self._uvicorn.serve(sockets=[self._socket])
        )
        await self.until(lambda: self._uvicorn is not None and self._uvicorn.started)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._uvicorn is not None
        assert self._task is not None
        self._uvicorn.should_exit = True
        await asyncio.wait_for(self._task, 15)
        self._socket.close()

    # -- Twilio's requests -----------------------------------------------------------------------

    def sign(self, url: str, params: dict[str, str] | None = None) -> str:
        return str(self.validator.compute_signature(url, params or {}))

    async def post(
        self, path: str, form: dict[str, str], *, signature: str | None = None
    ) -> httpx.Response:
        url = self.url + path
        headers = {"X-Twilio-Signature": signature or self.sign(url, form)}
        async with httpx.AsyncClient() as client:
            return await client.post(url, data=form, headers=headers)

    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.tac.config.voice_websocket_path}"

    async def open(self, *, signature: str | None = None) -> ClientConnection:
        url = self.websocket_url()
        return await connect(
            url,
            additional_headers={"X-Twilio-Signature": signature or self.sign(url)},
            max_queue=None,
        )

    @contextlib.asynccontextmanager
    async def call(
        self,
        *,
        call_sid: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        direction: str = "inbound",
    ) -> AsyncIterator[RelayClient]:
        """A signed WebSocket with ``setup`` sent; closed (the caller hangs up) on exit."""
        self._calls += 1
        sid = call_sid or f"CA{self._calls:032d}"
        connection = await self.open()
        client = RelayClient(connection, sid)
        await client.send(
            {
                "type": "setup",
                "sessionId": "VX" + sid[2:],
                "accountSid": ACCOUNT,
                "parentCallSid": "",
                "callSid": sid,
                "from": FROM if direction == "inbound" else AGENT_NUMBER,
                "to": AGENT_NUMBER if direction == "inbound" else FROM,
                "forwardedFrom": "",
                "callType": "PSTN",
                "callerName": "",
                "direction": direction,
                "callStatus": "RINGING",
                "customParameters": custom_parameters or {},
            }
        )
        try:
            yield client
        finally:
            await connection.close()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (state settling after a socket closes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.01)

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until no call is live and no session is stored."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.channel._relay().calls or await self.tac.session_store.session_count():
            if loop.time() > deadline:
                raise AssertionError(
                    f"{len(self.channel._relay().calls)} live calls, "
                    f"{await self.tac.session_store.session_count()} sessions left"
                )
            await asyncio.sleep(0.01)
