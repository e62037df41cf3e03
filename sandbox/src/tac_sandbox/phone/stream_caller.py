"""The sandbox's Media Streams phone: a caller streaming μ-law audio to a TAC app in real time.

``StreamCaller`` does what Twilio does for a call answered with ``<Connect><Stream>``: it POSTs
the signed incoming-call webhook, checks the TwiML, opens the signed WebSocket, sends
``connected`` and ``start`` (with the ``<Parameter>`` values), then sends one 20 ms ``media``
frame every 20 ms: the caller's speech when there is some (:meth:`say`, :meth:`say_wav`,
:meth:`say_text`), silence otherwise. What the app sends back is played out at the same pace:
``mark`` messages are echoed once the audio before them has played, ``clear`` drops what has not
played yet (and echoes its marks, as Twilio does). Everything received and everything actually
heard is kept, with a timeline of events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tac_sandbox._ids import sid
from tac_sandbox._signing import sign_form, sign_websocket
from tac_sandbox._twiml import TwimlError
from tac_sandbox.audio import FRAME_BYTES, SILENCE, speech_wav, wav_to_mulaw
from tac_sandbox.phone.edge import to_sandbox
from tac_sandbox.phone.record import SimulatedCall, check_call
from tac_sandbox.phone.stream_twiml import StreamTwiml, parse_stream_twiml

logger = logging.getLogger("tac_sandbox.stream_caller")

FRAME_SECONDS = 0.02
_SILENT_FRAME = base64.b64encode(bytes([SILENCE]) * FRAME_BYTES).decode()


class StreamCallFailed(RuntimeError):
    """The call could not be connected: the TwiML request, the TwiML or the WebSocket failed."""


class StreamCaller(SimulatedCall):
    """A simulated phone call to a TAC app over Media Streams.

    ::

        caller = StreamCaller(app_url, account_sid=sid, auth_token=token)
        await caller.dial()
        await caller.say_text("Where is my order?")
        await caller.wait_for_audio(500)
        await caller.hang_up()

    ``direction="outbound-api"`` with ``twiml=`` makes it the callee of an app's outbound call.
    """

    def __init__(
        self,
        app_url: str,
        *,
        account_sid: str,
        auth_token: str,
        from_: str = "+15005550100",
        to: str = "+15005550006",
        direction: str = "inbound",
        call_sid: str | None = None,
        twiml_path: str = "/twiml",
        sandbox_url: str | None = None,
        sandbox_auth: tuple[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        check_call(app_url, account_sid, auth_token)
        self.app_url = app_url.rstrip("/")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_ = from_
        self.to = to
        self.direction = direction
        self.call_sid = call_sid or sid("CA")
        self.stream_sid = sid("MZ")
        self.twiml_path = twiml_path if twiml_path.startswith("/") else f"/{twiml_path}"
        self.timeout = timeout
        self.sandbox_url = sandbox_url.rstrip("/") if sandbox_url else None
        self._sandbox_auth = sandbox_auth or (account_sid, auth_token)
        self.twiml: StreamTwiml | None = None
        self.status = "new"
        self.end_reason: str | None = None
        self.events: list[dict[str, Any]] = []
        self.received = bytearray()
        """Every byte of audio the app sent."""
        self.heard = bytearray()
        """The audio actually played to the caller (``clear`` drops what had not played)."""
        self.marks_echoed: list[str] = []
        self.clears = 0
        self.redirects: list[dict[str, Any]] = []
        self.action_callbacks: list[dict[str, Any]] = []
        self._http = http_client
        self._own_http = http_client is None
        self._ws: ClientConnection | None = None
        self._outgoing = bytearray()
        self._playout = bytearray()
        self._pending_marks: deque[tuple[str, int]] = deque()  # (name, received position)
        self._played = 0  # position in ``received`` played or skipped so far
        self._chunk = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._started = time.monotonic()

    # ------------------------------------------------------------------ state

    @property
    def received_ms(self) -> int:
        return len(self.received) // 8

    @property
    def heard_ms(self) -> int:
        return len(self.heard) // 8

    @property
    def speaking(self) -> bool:
        """Whether the caller still has speech queued."""
        return bool(self._outgoing)

    def summary(self) -> dict[str, Any]:
        """The call as JSON (what the control API shows)."""
        return {
            "callSid": self.call_sid,
            "streamSid": self.stream_sid,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "status": self.status,
            "endReason": self.end_reason,
            "receivedMs": self.received_ms,
            "heardMs": self.heard_ms,
            "clears": self.clears,
            "marksEchoed": len(self.marks_echoed),
            "redirects": self.redirects,
            "actionCallbacks": self.action_callbacks,
            "parameters": self.twiml.parameters if self.twiml else None,
        }

    def _event(self, kind: str, **detail: Any) -> None:
        self.events.append(
            {"at": round(time.monotonic() - self._started, 4), "kind": kind, **detail}
        )
        self._changed.set()

    # ------------------------------------------------------------------ dialling

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout)
        return self._http

    async def _request(
        self, url: str, fields: Mapping[str, str], method: str, kind: str
    ) -> httpx.Response:
        """A signed request Twilio would make (form POST, or GET with the fields in the query).

        Requests to Twilio's own hosts (``*.twilio.com``, e.g. Studio) go to the sandbox with
        the account's credentials, as the sandbox's products require.
        """
        target, basic = to_sandbox(url, self.sandbox_url, self._sandbox_auth)
        auth = basic if basic is not None else httpx.USE_CLIENT_DEFAULT
        if method == "GET":
            joined = url + ("&" if "?" in url else "?") + urlencode(dict(fields))
            headers = {"X-Twilio-Signature": sign_form(joined, {}, self.auth_token)}
            sent = target + ("&" if "?" in target else "?") + urlencode(dict(fields))
            response = await self.http.get(sent, headers=headers, auth=auth)
        else:
            headers = {"X-Twilio-Signature": sign_form(url, fields, self.auth_token)}
            response = await self.http.post(target, data=dict(fields), headers=headers, auth=auth)
        self._event(kind, url=url, method=method, status=response.status_code)
        return response

    async def dial(
        self,
        *,
        params: Mapping[str, str] | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        twiml: str | None = None,
    ) -> StreamCaller:
        """Place the call and open the stream; returns ``self`` (raises
        :class:`StreamCallFailed` when Twilio would fail the call).

        ``twiml`` skips the incoming-call request (the inline TwiML of a Calls API call).
        """
        if self.status != "new":
            raise StreamCallFailed(f"call {self.call_sid} was already dialled")
        self.status = "ringing"
        base = f"{self.app_url}{self.twiml_path}"
        try:
            if twiml is None:
                fields = {**self._call_fields("ringing"), **dict(params or {})}
                try:
                    response = await self._request(base, fields, "POST", "twiml-request")
                except httpx.HTTPError as exc:
                    raise StreamCallFailed(f"the TwiML request to {base} failed: {exc!r}") from exc
                if response.status_code >= 400:
                    raise StreamCallFailed(
                        f"the app answered the TwiML request with {response.status_code}: "
                        f"{response.text[:300]}"
                    )
                twiml = response.text
            try:
                self.twiml = parse_stream_twiml(twiml, base)
            except TwimlError as exc:
                raise StreamCallFailed(
                    f"the app's TwiML cannot start a Media Stream: {exc}"
                ) from exc
            await self._connect(self.twiml, dict(custom_parameters or {}))
        except BaseException:
            self.status = "failed"
            self.end_reason = self.end_reason or "failed"
            await self._finish()
            raise
        return self

    async def _connect(self, twiml: StreamTwiml, custom: dict[str, str]) -> None:
        headers = {"X-Twilio-Signature": sign_websocket(twiml.url, self.auth_token)}
        try:
            self._ws = await connect(
                twiml.url, additional_headers=headers, open_timeout=self.timeout, max_size=None
            )
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            raise StreamCallFailed(f"the WebSocket to {twiml.url} failed: {exc!r}") from exc
        self.status = "in-progress"
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = {
            "accountSid": self.account_sid,
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "customParameters": {**twiml.parameters, **custom},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await self._send(
            {"event": "start", "sequenceNumber": "1", "start": start, "streamSid": self.stream_sid}
        )
        self._event("start", parameters=start["customParameters"])
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive(), name=f"stream-receive:{self.call_sid}"),
            loop.create_task(self._clock(), name=f"stream-clock:{self.call_sid}"),
        ]

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(message, separators=(",", ":")))

    # ------------------------------------------------------------------ the line

    async def _clock(self) -> None:
        """Every 20 ms: one frame of the caller's audio out, one frame of the app's played."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while self.connected:
                chunk = bytes(self._outgoing[:FRAME_BYTES])
                del self._outgoing[:FRAME_BYTES]
                self._chunk += 1
                payload = (
                    base64.b64encode(chunk.ljust(FRAME_BYTES, bytes([SILENCE]))).decode()
                    if chunk
                    else _SILENT_FRAME
                )
                await self._send(
                    {
                        "event": "media",
                        "sequenceNumber": str(self._chunk + 1),
                        "media": {
                            "track": "inbound",
                            "chunk": str(self._chunk),
                            "timestamp": str(self._chunk * 20),
                            "payload": payload,
                        },
                        "streamSid": self.stream_sid,
                    }
                )
                await self._play_frame()
                due += FRAME_SECONDS
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        except (ConnectionClosed, OSError):
            pass

    async def _play_frame(self) -> None:
        played = bytes(self._playout[:FRAME_BYTES])
        del self._playout[:FRAME_BYTES]
        if played:
            self.heard += played
            self._played += len(played)
            self._changed.set()
        while self._pending_marks and self._pending_marks[0][1] <= self._played:
            name, _ = self._pending_marks.popleft()
            await self._echo_mark(name)

    async def _echo_mark(self, name: str) -> None:
        self.marks_echoed.append(name)
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                try:
                    frame = json.loads(raw)
                    event = frame["event"]
                except (ValueError, KeyError, TypeError):
                    self._event("malformed", frame=str(raw)[:200])
                    continue
                if frame.get("streamSid") != self.stream_sid:
                    self._event("wrong-stream", frame=frame)
                    continue
                if event == "media":
                    audio = base64.b64decode(frame["media"]["payload"])
                    self.received += audio
                    self._playout += audio
                    self._changed.set()
                elif event == "mark":
                    name = str(frame["mark"]["name"])
                    self._pending_marks.append((name, len(self.received)))
                    self._event("mark", name=name)
                elif event == "clear":
                    self.clears += 1
                    dropped = len(self._playout)
                    self._playout.clear()
                    self._played = len(self.received)
                    self._event("clear", dropped_ms=dropped // 8, heard_ms=self.heard_ms)
                    while self._pending_marks:  # Twilio echoes the marks of cleared audio
                        await self._echo_mark(self._pending_marks.popleft()[0])
        except ConnectionClosed:
            pass
        if self.connected:  # the app closed the stream: the call goes on to <Connect action>
            await self._stream_ended("app-closed")

    async def _stream_ended(self, reason: str) -> None:
        self.status = "completed"
        self.end_reason = self.end_reason or reason
        self._event("stream-ended", reason=reason)
        twiml = self.twiml
        if reason == "app-closed" and twiml is not None and twiml.action:
            fields = {**self._call_fields("in-progress"), "StreamSid": self.stream_sid}
            with contextlib.suppress(httpx.HTTPError):
                response = await self._request(twiml.action, fields, twiml.method, "action")
                self.action_callbacks.append(
                    {"url": twiml.action, "status": response.status_code, "twiml": response.text}
                )
        await self._finish()

    # ------------------------------------------------------------------ the caller's actions

    def say(self, audio: bytes) -> None:
        """Queue μ-law 8 kHz audio: it goes out 20 ms per 20 ms, after what is queued."""
        self._outgoing += audio
        self._event("say", ms=len(audio) // 8)

    def say_wav(self, path: str | Path) -> int:
        """Queue a WAV file (converted to μ-law 8 kHz); returns its length in ms."""
        audio = wav_to_mulaw(path)
        self.say(audio)
        return len(audio) // 8

    def say_text(self, text: str) -> int:
        """Queue ``text`` spoken by ``espeak-ng`` (raises ``AudioUnavailable`` without it)."""
        with tempfile.TemporaryDirectory() as folder:
            return self.say_wav(speech_wav(text, Path(folder) / "speech.wav"))

    async def press(self, digit: str) -> None:
        """A DTMF keypress."""
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": str(self._chunk + 1),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )
        self._event("dtmf", digit=digit)

    async def until(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds (``TimeoutError`` after ``timeout`` s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"call {self.call_sid}: condition not reached in time")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    async def wait_for_audio(self, ms: int, timeout: float | None = None) -> None:
        """Until the app has sent ``ms`` of audio."""
        await self.until(lambda: self.received_ms >= ms, timeout)

    async def wait_until_heard(self, ms: int, timeout: float | None = None) -> None:
        """Until ``ms`` of the app's audio has played to the caller."""
        await self.until(lambda: self.heard_ms >= ms, timeout)

    async def redirect(self, url: str, method: str = "POST") -> httpx.Response:
        """The call leaves the stream for ``url`` (a Calls API redirect): Twilio stops the
        stream and requests the new TwiML."""
        if self.connected:
            self.status = "redirected"
            self.end_reason = "redirected"
            await self._close_socket()
        response = await self._request(url, self._call_fields("in-progress"), method, "redirect")
        self.redirects.append(
            {"url": url, "method": method, "status": response.status_code, "twiml": response.text}
        )
        await self._finish()
        return response

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then the socket closes."""
        if self.connected:
            self.status = "completed"
            self.end_reason = "caller-hung-up"
            with contextlib.suppress(ConnectionClosed, OSError):
                await self._send(
                    {
                        "event": "stop",
                        "sequenceNumber": str(self._chunk + 2),
                        "streamSid": self.stream_sid,
                        "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                    }
                )
            self._event("stop")
            await self._close_socket()
        await self._finish()

    async def end_by_api(self) -> None:
        """The app ended the call through the Calls API (``Status=completed``)."""
        if self.connected:
            self.status = "completed"
            self.end_reason = "ended-by-api"
            await self._close_socket()
        await self._finish()

    async def _close_socket(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def _finish(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._done.set()
        self._changed.set()

    async def wait_ended(self, timeout: float | None = None) -> None:
        """Until the call is over."""
        await asyncio.wait_for(self._done.wait(), self.timeout if timeout is None else timeout)

    async def aclose(self) -> None:
        """Hang up if still connected and release the HTTP client."""
        with contextlib.suppress(Exception):
            await self.hang_up()
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None
