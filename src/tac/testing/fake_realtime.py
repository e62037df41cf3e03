"""A scripted speech-to-speech model (OpenAI Realtime and GPT-Live wire) for tests.

:class:`FakeRealtimeModel` listens on loopback and speaks the Realtime API over a real
WebSocket (``/v1/realtime``; GPT-Live at ``/v1/live/sessions``). It detects the caller's speech
in the μ-law audio it is sent (a simple energy detector, like a server VAD), answers each turn
with the next scripted step, streams audio deltas, emits ``speech_started`` when the caller
talks over it, calls tools, and records everything, truncations included::

    model = FakeRealtimeModel()
    model.reply("Your order ships today.", audio_ms=1200, user_transcript="Where is my order?")
    model.call_tool("handoff", {"reason": "customer asked"}).reply("Transferring you now.")
    async with model.serve():
        config = OpenAIRealtimeProviderConfig(base_url=model.base_url, openai_api_key="sk-x",
                                              default_session_config={"model": "gpt-realtime"})
        ...
    assert model.sessions[0].truncations == [("item_fake000002", 480)]

Like :class:`tac.testing.FakeModel` it runs in a background thread, and leaving ``serve()``
checks that every scripted step was used.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tac.testing._serving import START_TIMEOUT as _START_TIMEOUT
from tac.testing._serving import LoopbackServing, bind_loopback
from tac.testing.fake_model import FakeModelError, UnconsumedModelSteps
from tac_sandbox.audio import mulaw_energy, silence

__all__ = [
    "FakeRealtimeModel",
    "FakeRealtimeSession",
    "mulaw_silence",
    "mulaw_tone",
]

_FRAME_BYTES = 160  # 20 ms of μ-law 8 kHz


def mulaw_silence(ms: int) -> bytes:
    """``ms`` of μ-law silence."""
    return silence(ms)


def mulaw_tone(ms: int) -> bytes:
    """``ms`` of a loud square wave in μ-law (reads as speech to the detector)."""
    period = bytes([0x10] * 8 + [0x90] * 8)
    count = ms * 8
    return (period * (count // len(period) + 1))[:count]


@dataclass
class _Step:
    kind: Literal["reply", "tool"]
    text: str = ""
    audio_ms: int = 0
    user_transcript: str | None = None
    tool: str = ""
    arguments: str = "{}"


@dataclass
class FakeRealtimeSession:
    """One model session: what the bridge sent and what the model did."""

    path: str
    model: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    session_config: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    """Every non-audio event received, in order."""
    audio_bytes: int = 0
    appends: int = 0
    """How many audio messages the caller's audio came in."""
    truncations: list[tuple[str, int]] = field(default_factory=list)
    """``(item_id, audio_end_ms)`` of every ``conversation.item.truncate``."""
    appended_instructions: list[str] = field(default_factory=list)
    """The ``content`` of every GPT-Live ``session.instructions.append``."""
    tool_outputs: list[tuple[str, str]] = field(default_factory=list)
    """``(call_id, output)`` of every function result."""
    items: list[str] = field(default_factory=list)
    """The ids of the audio items the model spoke, in order."""
    speech_started: int = 0
    closed: bool = False

    @property
    def instructions(self) -> str:
        """The latest instructions (``session.update`` replaces them)."""
        found = self.session_config.get("instructions")
        return found if isinstance(found, str) else ""

    @property
    def audio_ms(self) -> int:
        """How much caller audio arrived."""
        return self.audio_bytes // 8


class _Conversation:
    """One connection: the detector, the response in flight and the wire dialect."""

    def __init__(
        self, model: FakeRealtimeModel, websocket: Any, record: FakeRealtimeSession
    ) -> None:
        self.model = model
        self.websocket = websocket
        self.record = record
        self.live = record.path.endswith("/live/sessions")
        self.voiced = 0
        self.silent = 0
        self.speaking = False
        self.response: asyncio.Task[None] | None = None
        self.pending_call: str | None = None
        self.buffer = b""

    async def send(self, event: dict[str, Any]) -> None:
        await self.websocket.send(json.dumps(event, separators=(",", ":")))

    # -- caller side -------------------------------------------------------------------------

    async def audio(self, payload: str) -> None:
        try:
            chunk = base64.b64decode(payload, validate=True)
        except ValueError:
            await self.error("invalid_audio", "audio is not base64")
            return
        self.record.audio_bytes += len(chunk)
        self.record.appends += 1
        if not self.model.vad:
            return
        self.buffer += chunk
        while len(self.buffer) >= _FRAME_BYTES:
            frame, self.buffer = self.buffer[:_FRAME_BYTES], self.buffer[_FRAME_BYTES:]
            await self._detect(mulaw_energy(frame) > self.model.vad_threshold)

    async def _detect(self, voiced: bool) -> None:
        model = self.model
        if voiced:
            self.voiced += 1
            self.silent = 0
            if not self.speaking and self.voiced * 20 >= model.speech_start_ms:
                self.speaking = True
                self.record.speech_started += 1
                await self.speech_started()
        else:
            self.silent += 1
            self.voiced = 0
            if self.speaking and self.silent * 20 >= model.silence_ms:
                self.speaking = False
                await self.turn_ended()

    async def speech_started(self) -> None:
        response = self.response
        if response is not None and not response.done():
            response.cancel()  # the server's VAD interrupts its own response
            await asyncio.gather(response, return_exceptions=True)
        if self.live:
            return  # GPT-Live handles barge-in itself
        await self.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": 0})

    async def turn_ended(self) -> None:
        step = self.model._take(self.record)
        if step is None:
            return
        if not self.live:
            await self.send({"type": "input_audio_buffer.speech_stopped"})
            await self.send({"type": "input_audio_buffer.committed"})
        if step.user_transcript is not None:
            if self.live:
                await self.send(
                    {"type": "session.input_transcript.delta", "delta": step.user_transcript}
                )
            else:
                await self.send(
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": self.model._new_id("item"),
                        "content_index": 0,
                        "transcript": step.user_transcript,
                    }
                )
        self.respond(step)

    # -- model side --------------------------------------------------------------------------

    def respond(self, step: _Step) -> None:
        self.response = asyncio.get_running_loop().create_task(self._respond(step))

    async def _respond(self, step: _Step) -> None:
        model = self.model
        response_id = model._new_id("resp")
        item_id = model._new_id("item")
        live = self.live
        if not live:
            await self.send({"type": "response.created", "response": {"id": response_id}})
        status = "completed"
        try:
            if step.kind == "tool":
                call_id = model._new_id("call")
                item = {
                    "id": item_id,
                    "type": "function_call",
                    "status": "completed",
                    "name": step.tool,
                    "call_id": call_id,
                    "arguments": step.arguments,
                }
                self.pending_call = call_id
                if live:
                    await self.send(
                        {
                            "type": "response.event",
                            "event": {"type": "response.output_item.done", "item": item},
                        }
                    )
                else:
                    await self.send(
                        {
                            "type": "response.output_item.done",
                            "response_id": response_id,
                            "output_index": 0,
                            "item": item,
                        }
                    )
            else:
                self.record.items.append(item_id)
                await self._speak(item_id, response_id, step)
        except asyncio.CancelledError:
            status = "cancelled"
        if not live:
            await self.send(
                {"type": "response.done", "response": {"id": response_id, "status": status}}
            )

    async def _speak(self, item_id: str, response_id: str, step: _Step) -> None:
        model = self.model
        frame_ms = model.delta_ms
        frames = max(1, step.audio_ms // frame_ms)
        tone = base64.b64encode(mulaw_tone(frame_ms)).decode()
        delta_type = "session.output_audio.delta" if self.live else "response.output_audio.delta"
        if self.live:  # GPT-Live streams its words with its audio
            await self.send({"type": "session.output_transcript.delta", "delta": step.text})
        started = time.perf_counter()
        for index in range(frames):
            if model.pace:
                due = started + index * frame_ms / 1000 / model.pace
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            event = {
                "type": delta_type,
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": tone,
            }
            if model.stamp_deltas:
                event["sent_at"] = time.time()
            await self.send(event)
        if not self.live:
            await self.send(
                {
                    "type": "response.output_audio_transcript.done",
                    "response_id": response_id,
                    "item_id": item_id,
                    "transcript": step.text,
                }
            )

    async def error(self, code: str, message: str) -> None:
        await self.send(
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "code": code, "message": message},
            }
        )

    # -- dispatch ----------------------------------------------------------------------------

    async def handle(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind in ("input_audio_buffer.append", "session.input_audio.append"):
            await self.audio(str(data.get("audio", "")))
            return
        self.record.events.append(data)
        if kind == "session.update":
            session = data.get("session")
            if isinstance(session, dict):
                self.record.session_config.update(session)
            await self.send({"type": "session.updated", "session": self.record.session_config})
        elif kind == "session.start":
            session = data.get("session")
            if isinstance(session, dict):
                self.record.session_config.update(session)
            await self.send(
                {"type": "session.started", "session": {"id": self.model._new_id("sess")}}
            )
        elif kind == "response.create":
            step = self.model._take(self.record)
            if step is not None:
                self.respond(step)
        elif kind == "response.cancel":
            response = self.response
            if response is None or response.done():
                await self.error("response_cancel_not_active", "no active response")
            else:
                response.cancel()
        elif kind == "conversation.item.truncate":
            self.record.truncations.append(
                (str(data.get("item_id")), int(data.get("audio_end_ms", -1)))
            )
            await self.send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": data.get("item_id"),
                    "audio_end_ms": data.get("audio_end_ms"),
                    "content_index": 0,
                }
            )
        elif kind in ("conversation.item.create", "response.item.create"):
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                self.record.tool_outputs.append((str(item.get("call_id")), str(item.get("output"))))
        elif kind == "session.instructions.append":
            self.record.appended_instructions.append(str(data.get("content")))
            await self.send({"type": "session.instructions.appended"})
        elif kind == "session.close":
            await self.send({"type": "session.closed"})


class FakeRealtimeModel:
    """A scripted realtime model: script it, :meth:`serve` it, inspect :attr:`sessions`.

    Each caller turn (speech, then ``silence_ms`` of quiet) and each explicit
    ``response.create`` (a greeting, a tool result) takes the next scripted step.

    - ``delta_ms``: audio per delta; ``pace``: 1.0 streams deltas in real time, ``0`` (default)
      as fast as the socket takes them (as the real API does).
    - ``vad``: detect speech in the caller's audio (off: audio is only counted).
    """

    def __init__(
        self,
        *,
        delta_ms: int = 20,
        pace: float = 0.0,
        vad: bool = True,
        vad_threshold: float = 500.0,
        speech_start_ms: int = 60,
        silence_ms: int = 300,
        stamp_deltas: bool = False,
    ) -> None:
        self.delta_ms = delta_ms
        self.pace = pace
        self.vad = vad
        self.vad_threshold = vad_threshold
        self.speech_start_ms = speech_start_ms
        self.silence_ms = silence_ms
        self.stamp_deltas = stamp_deltas
        self.sessions: list[FakeRealtimeSession] = []
        self._steps: list[_Step] = []
        self._last: _Step | None = None
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._base_url: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self.repeat_last = False
        """Keep answering with the last step once the script is used up (benchmarks)."""

    # -- scripting ---------------------------------------------------------------------------

    def reply(
        self, text: str, *, audio_ms: int = 600, user_transcript: str | None = None
    ) -> FakeRealtimeModel:
        """Answer the next turn with ``audio_ms`` of audio whose transcript is ``text``.

        ``user_transcript`` is reported as what the caller said in that turn.
        """
        with self._lock:
            self._steps.append(_Step("reply", text, audio_ms, user_transcript))
        return self

    def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None = None,
        *,
        user_transcript: str | None = None,
    ) -> FakeRealtimeModel:
        """Answer the next turn by calling tool ``name``; the step after answers its result."""
        raw = arguments if isinstance(arguments, str) else json.dumps(dict(arguments or {}))
        with self._lock:
            self._steps.append(
                _Step("tool", tool=name, arguments=raw, user_transcript=user_transcript)
            )
        return self

    def _take(self, record: FakeRealtimeSession) -> _Step | None:
        with self._lock:
            if self._steps:
                step = self._steps.pop(0)
                self._last = step
                return step
            if self.repeat_last and self._last is not None:
                return self._last
        return None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    # -- inspecting --------------------------------------------------------------------------

    @property
    def remaining_steps(self) -> int:
        with self._lock:
            return len(self._steps)

    @property
    def truncations(self) -> list[tuple[str, int]]:
        """Every truncation of every session."""
        return [t for s in self.sessions for t in s.truncations]

    def assert_complete(self) -> None:
        """Raise :class:`UnconsumedModelSteps` when scripted steps were left unused."""
        with self._lock:
            left = list(self._steps)
        if left:
            described = ", ".join(f"{s.kind} {s.tool or s.text!r}" for s in left)
            raise UnconsumedModelSteps(f"{len(left)} scripted step(s) never used: {described}")

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (what ``OPENAI_BASE_URL`` would hold)."""
        if self._base_url is None:
            raise FakeModelError("the model is not serving: use `with model.serve():`")
        return self._base_url

    def env(self, api_key: str = "sk-fake-realtime") -> dict[str, str]:
        """``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` pointing at this model."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": api_key}

    # -- serving -----------------------------------------------------------------------------

    def serve(self, *, host: str = "127.0.0.1", port: int = 0, check: bool = True) -> _Serving:
        """Serve on loopback (a free port by default), with ``with`` or ``async with``."""
        return _Serving(self, host, port, check)

    async def _connection(self, websocket: Any) -> None:
        request = websocket.request
        path = request.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/realtime", "/v1/live/sessions"):
            await websocket.close(code=1008, reason=f"no such endpoint {path}")
            return
        model = None
        if "?" in request.path:
            from urllib.parse import parse_qs

            model = parse_qs(request.path.split("?", 1)[1]).get("model", [None])[0]
        record = FakeRealtimeSession(
            path=path, model=model, headers={k.lower(): v for k, v in request.headers.raw_items()}
        )
        with self._lock:
            self.sessions.append(record)
        conversation = _Conversation(self, websocket, record)
        if not conversation.live:
            await conversation.send(
                {"type": "session.created", "session": {"id": self._new_id("sess")}}
            )
        try:
            async for raw in websocket:
                try:
                    data = json.loads(raw)
                except ValueError:
                    await conversation.error("invalid_json", "frame is not JSON")
                    continue
                if isinstance(data, dict):
                    await conversation.handle(data)
        except Exception:  # the bridge went away
            pass
        finally:
            record.closed = True
            if conversation.response is not None:
                conversation.response.cancel()

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with serve(self._connection, sock=sock, compression=None, max_size=None):
                ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._failure = exc
            ready.set()


class _Serving(LoopbackServing["FakeRealtimeModel"]):
    def start(self) -> FakeRealtimeModel:
        model = self._model
        if model._thread is not None:
            raise RuntimeError("this FakeRealtimeModel is already serving")
        sock, host, port = bind_loopback(self._host, self._port)
        sock.listen(512)
        ready = threading.Event()
        model._thread = threading.Thread(
            target=model._run, args=(sock, ready), name="fake-realtime", daemon=True
        )
        model._thread.start()
        if not ready.wait(_START_TIMEOUT) or model._failure is not None:
            raise RuntimeError(f"FakeRealtimeModel failed to start: {model._failure!r}")
        model._base_url = f"http://{host}:{port}/v1"
        return model

    def stop(self) -> None:
        model = self._model
        if model._loop is not None and model._stop is not None:
            model._loop.call_soon_threadsafe(model._stop.set)
        if model._thread is not None:
            model._thread.join(_START_TIMEOUT)
        model._thread = None
        model._base_url = None
