"""Twilio's side of a Media Streams WebSocket, for tests that drive the bridge frame by frame."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from tests.voice._harness import ACCOUNT, AGENT_NUMBER, FROM, VoiceApp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tac.testing.fake_realtime import mulaw_silence, mulaw_tone


class StreamClient:
    """Sends ``start``, ``media``, ``mark``, ``dtmf`` and ``stop``; records what comes back."""

    def __init__(self, connection: ClientConnection, call_sid: str, stream_sid: str) -> None:
        self.connection = connection
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.media: list[str] = []
        self.marks: list[str] = []
        self.pending_marks: list[str] = []
        self.clears = 0
        self.frames: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._chunk = 0
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                frame = json.loads(raw)
                self.frames.append(frame)
                event = frame.get("event")
                if event == "media":
                    self.media.append(frame["media"]["payload"])
                elif event == "mark":
                    self.marks.append(frame["mark"]["name"])
                    self.pending_marks.append(frame["mark"]["name"])
                elif event == "clear":
                    self.clears += 1
                    self.pending_marks.clear()
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send(self, message: dict[str, Any]) -> None:
        """Compact JSON, as Twilio writes it (the bridge's hot paths read it by position)."""
        await self.connection.send(json.dumps(message, separators=(",", ":")))

    async def audio(self, data: bytes) -> None:
        """Send μ-law audio as 20 ms ``media`` frames (as fast as the socket takes them)."""
        for offset in range(0, len(data), 160):
            self._chunk += 1
            payload = base64.b64encode(data[offset : offset + 160]).decode()
            await self.send(
                {
                    "event": "media",
                    "sequenceNumber": str(self._chunk + 2),
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(self._chunk * 20),
                        "payload": payload,
                    },
                    "streamSid": self.stream_sid,
                }
            )

    async def speak(self, speech_ms: int = 300, silence_ms: int = 400) -> None:
        """Something the fake model hears as a turn: tone, then silence."""
        await self.audio(mulaw_tone(speech_ms) + mulaw_silence(silence_ms))

    async def played(self, count: int | None = None) -> list[str]:
        """Echo the first ``count`` pending marks (all by default), as Twilio does after playing."""
        done = self.pending_marks[: len(self.pending_marks) if count is None else count]
        del self.pending_marks[: len(done)]
        for name in done:
            await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
        return done

    async def press(self, digit: str) -> None:
        await self.send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": ACCOUNT, "callSid": self.call_sid},
            }
        )

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def stream_call(
    app: VoiceApp,
    *,
    call_sid: str = "CA" + "1" * 32,
    custom_parameters: dict[str, str] | None = None,
    direction: str = "inbound",
) -> AsyncIterator[StreamClient]:
    """A signed Media Streams WebSocket with ``connected`` and ``start`` sent."""
    connection = await app.open()
    stream_sid = "MZ" + call_sid[2:]
    client = StreamClient(connection, call_sid, stream_sid)
    parameters = {
        "_tac_from": FROM if direction == "inbound" else AGENT_NUMBER,
        "_tac_to": AGENT_NUMBER if direction == "inbound" else FROM,
        "_tac_direction": direction,
        **(custom_parameters or {}),
    }
    await client.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    await client.send(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": ACCOUNT,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": parameters,
            },
            "streamSid": stream_sid,
        }
    )
    try:
        yield client
    finally:
        await connection.close()
        await client._reader
