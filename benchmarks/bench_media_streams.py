"""Media Streams benchmark: μ-law frames relayed between Twilio and a realtime model.

The app (``benchmarks/_media_server.py``: OpenAI Realtime provider, signatures on) runs in its
own process pinned to one core; this process, pinned to another, plays both Twilio (one signed
Media Streams WebSocket per call, a 20 ms ``media`` frame per call every 20 ms, every ``mark``
echoed as Twilio does once played) and the model (a 20 ms audio delta per call every 20 ms).
Both peers are thin ``asyncio.Protocol`` WebSockets, so the load generator stays cheap.

Each model delta carries its send time in its audio bytes, which the bridge relays untouched,
so the Twilio side measures, per frame, the time from the model sending a delta to its frame
arriving: the bridge's added latency plus two loopback hops. A frame more than 40 ms late counts
as late. For each number of concurrent calls: the app's CPU per relayed frame, its share of one
core, what else ran on that core (other processes: late frames then come from the machine),
latency percentiles and late frames. Goal (issue 18): ≥ 300 concurrent calls per app core
with no late frame.

``python -m benchmarks bench_media_streams`` runs it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import time
from typing import Any

from benchmarks.bench_voice import (
    ACCOUNT,
    SERVER_CORE,
    _cpu_seconds,
    _percentile,
    _pin_self,
    _server,
    _validator,
)

FRAME_MS = 20
LATE_MS = 40.0
STEPS = tuple(int(n) for n in os.environ.get("BENCH_MEDIA_STEPS", "50,100,200,300,400").split(","))
MEASURE_SECONDS = 8.0
SETTLE_SECONDS = 2.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ZERO_MASK = b"\x00\x00\x00\x00"
_PAYLOAD_KEY = b'"payload":"'


def _core_busy_seconds(core: int) -> float:
    """CPU time core ``core`` spent on anything (every process, the kernel), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith(f"cpu{core} "):
                    ticks = [int(v) for v in line.split()[1:]]
                    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle, iowait
                    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return float("nan")


def _header(size: int, masked: bool, first: int = 0x81) -> bytes:
    """A frame's header (``first``: FIN and the opcode, a text frame by default)."""
    bit = 0x80 if masked else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = bytes((first, bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + size.to_bytes(8, "big")
    return head + _ZERO_MASK if masked else head


class _Peer(asyncio.Protocol):
    """A WebSocket endpoint parsing frames from a buffer (no unmasking: payloads we read are
    unmasked or ignored)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            self.handshake(head)
        while len(buffer) >= 2:
            size = buffer[1] & 0x7F
            offset = 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size = int.from_bytes(buffer[2:4], "big")
                offset = 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size = int.from_bytes(buffer[2:10], "big")
                offset = 10
            if buffer[1] & 0x80:
                offset += 4
            if len(buffer) < offset + size:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[offset : offset + size])
            del buffer[: offset + size]
            if opcode == 0x8:
                if self.transport is not None:
                    self.transport.close()
                return
            if opcode == 0x9:  # answered as Twilio does (uvicorn closes a socket whose pings
                self.pong(payload)  # go unanswered: its keepalive, every 20 s by default)
                continue
            self.frame(payload)

    def pong(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            masked = isinstance(self, _TwilioSide)  # the client's frames are masked
            self.transport.write(_header(len(payload), masked, 0x8A) + payload)

    def handshake(self, head: bytes) -> None:
        raise NotImplementedError

    def frame(self, payload: bytes) -> None:
        raise NotImplementedError


class _ModelSide(_Peer):
    """One model session: accepts the app's WebSocket, then streams deltas when ticked."""

    def __init__(self, bench: _Bench) -> None:
        super().__init__()
        self.bench = bench

    def handshake(self, head: bytes) -> None:
        key = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.open = True
        self.bench.models.append(self)

    def frame(self, payload: bytes) -> None:
        self.bench.appends += 1  # input_audio_buffer.append (or session.update): not parsed

    def tick(self, now: float) -> None:
        audio = struct.pack("<d", now) + b"\xff" * 152
        text = (
            '{"type":"response.output_audio.delta","item_id":"item_bench","delta":"'
            + base64.b64encode(audio).decode()
            + '"}'
        ).encode()
        assert self.transport is not None
        self.transport.write(_header(len(text), False) + text)


class _TwilioSide(_Peer):
    """One call's Media Streams WebSocket, Twilio's side."""

    def __init__(self, bench: _Bench, call_sid: str, port: int) -> None:
        super().__init__()
        self.bench = bench
        self.call_sid = call_sid
        self.stream_sid = "MZ" + call_sid[2:]
        self.port = port
        self.chunk = 0
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        url = f"ws://127.0.0.1:{self.port}/ws"
        signature = _validator.compute_signature(url, {})
        assert self.transport is not None
        self.transport.write(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n".encode()
            + b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + b"Sec-WebSocket-Version: 13\r\n"
            + f"X-Twilio-Signature: {signature}\r\n\r\n".encode()
        )

    def send(self, text: str) -> None:
        data = text.encode()
        assert self.transport is not None
        self.transport.write(_header(len(data), True) + data)

    def handshake(self, head: bytes) -> None:
        if not head.startswith(b"HTTP/1.1 101"):
            if not self.ready.done():
                self.ready.set_exception(RuntimeError(f"/ws answered {head[:40]!r}"))
            return
        self.open = True
        self.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        start = {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": ACCOUNT,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"_tac_from": "+14155550123", "_tac_to": "+18005550100"},
            },
        }
        self.send(json.dumps(start))
        if not self.ready.done():
            self.ready.set_result(None)

    def frame(self, payload: bytes) -> None:
        bench = self.bench
        if payload[10:15] == b"media":  # {"event":"media",...
            at = payload.find(_PAYLOAD_KEY) + len(_PAYLOAD_KEY)
            sent = struct.unpack("<d", base64.b64decode(payload[at : at + 12])[:8])[0]
            if bench.measuring:
                bench.latencies.append((time.perf_counter() - sent) * 1000)
        elif payload[10:14] == b"mark":  # played at once: echo it as Twilio does
            assert self.transport is not None
            self.transport.write(_header(len(payload), True) + payload)
            bench.marks += 1

    def tick(self) -> None:
        self.chunk += 1
        self.send(
            '{"event":"media","sequenceNumber":"'
            + str(self.chunk + 2)
            + '","media":{"track":"inbound","chunk":"'
            + str(self.chunk)
            + '","timestamp":"'
            + str(self.chunk * FRAME_MS)
            + '","payload":"'
            + self.bench.silence
            + '"},"streamSid":"'
            + self.stream_sid
            + '"}'
        )
        if self.bench.measuring:
            self.bench.sent += 1


class _Bench:
    def __init__(self) -> None:
        self.models: list[_ModelSide] = []
        self.calls: list[_TwilioSide] = []
        self.silence = base64.b64encode(b"\xff" * 160).decode()
        self.measuring = False
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.sent = 0
        self.appends = 0
        self.marks = 0
        self.count = 0

    async def ticker(self, stop: asyncio.Event) -> None:
        """Every 20 ms (in four staggered slices): each call sends a frame, each model a delta."""
        loop = asyncio.get_running_loop()
        slices = 4
        step = FRAME_MS / 1000 / slices
        due = loop.time()
        index = 0
        while not stop.is_set():
            due += step
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif self.measuring:
                self.lags.append(-delay * 1000)
            now = time.perf_counter()
            for model in self.models[index::slices]:
                if model.transport is not None and not model.transport.is_closing():
                    model.tick(now)
            for call in self.calls[index::slices]:
                if call.open and call.transport is not None and not call.transport.is_closing():
                    call.tick()
            index = (index + 1) % slices

    async def dial(self, port: int) -> None:
        self.count += 1
        sid = f"CA{os.getpid():08d}{self.count:024d}"
        loop = asyncio.get_running_loop()
        _, call = await loop.create_connection(
            lambda: _TwilioSide(self, sid, port), "127.0.0.1", port
        )
        await asyncio.wait_for(call.ready, 30)
        self.calls.append(call)

    async def hang_up_all(self) -> None:
        for call in self.calls:
            if call.transport is not None and not call.transport.is_closing():
                call.transport.write(_header(2, True, 0x88) + b"\x03\xe8")
        await asyncio.wait([c.closed for c in self.calls], timeout=10)
        for call in self.calls:
            if call.transport is not None:
                call.transport.close()
        self.calls.clear()
        await asyncio.sleep(0.5)
        self.models = [m for m in self.models if not m.closed.done()]


async def _measure(port: int, pid: int, bench: _Bench, calls: int) -> dict[str, Any]:
    while len(bench.calls) < calls:
        batch = min(25, calls - len(bench.calls))
        await asyncio.gather(*(bench.dial(port) for _ in range(batch)))
    await asyncio.sleep(SETTLE_SECONDS)
    bench.latencies.clear()
    bench.lags.clear()
    bench.sent = 0
    cpu = _cpu_seconds(pid)
    core = _core_busy_seconds(SERVER_CORE)
    started = time.perf_counter()
    bench.measuring = True
    await asyncio.sleep(MEASURE_SECONDS)
    bench.measuring = False
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(pid) - cpu
    core = _core_busy_seconds(SERVER_CORE) - core
    received = len(bench.latencies)
    relayed = bench.sent + received
    latencies = bench.latencies or [0.0]
    expected = calls * elapsed * 1000 / FRAME_MS
    return {
        "calls": calls,
        "models": len(bench.models),
        "app_core_share": cpu / elapsed,
        # what else ran on the app's core (other processes, interrupts): late frames with a
        # low app share but a high share here come from the machine, not from the app
        "others_core_share": max(core - cpu, 0.0) / elapsed,
        "cpu_us_per_frame": cpu / relayed * 1e6 if relayed else float("nan"),
        "frames_in": bench.sent,
        "frames_out": received,
        "delivered": received / expected if expected else 0.0,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": max(latencies),
        "late": sum(1 for v in latencies if v > LATE_MS),
        "generator_lag_p99_ms": _percentile(bench.lags or [0.0], 99),
    }


async def _run_all() -> list[dict[str, Any]]:
    bench = _Bench()
    loop = asyncio.get_running_loop()
    model_server = await loop.create_server(lambda: _ModelSide(bench), "127.0.0.1", 0, backlog=4096)
    model_port = model_server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    ticker = loop.create_task(bench.ticker(stop))
    results: list[dict[str, Any]] = []
    try:
        os.environ["BENCH_MODEL_URL"] = f"http://127.0.0.1:{model_port}/v1"
        with _server("benchmarks._media_server") as (port, pid):
            for calls in STEPS:
                found = await _measure(port, pid, bench, calls)
                results.append(found)
                print(f"  media streams: {found}", flush=True)
                if found["delivered"] < 0.9:  # frames pile up: more calls would measure nothing
                    break
            await bench.hang_up_all()
    finally:
        stop.set()
        await ticker
        model_server.close()
    return results


def run() -> str:
    """Measure and return the markdown section."""
    _pin_self()
    try:
        results = asyncio.run(_run_all())
    except Exception as exc:
        return f"## Media Streams (speech-to-speech)\n\nFailed: {type(exc).__name__}: {exc}\n"
    held = [r for r in results if not r["late"] and r["delivered"] >= 0.95]
    best = held[-1] if held else None
    lines = [
        "## Media Streams (speech-to-speech)",
        "",
        "App pinned to one core (OpenAI Realtime provider, signatures on); this process, on the"
        " other core, plays Twilio (a 20 ms μ-law frame per call every 20 ms, marks echoed) and"
        " the model (a 20 ms delta per call every 20 ms). Latency: model sends a delta → its"
        " frame reaches Twilio's side (the bridge plus two loopback hops); > 40 ms is late."
        f" {MEASURE_SECONDS:.0f} s per row after {SETTLE_SECONDS:.0f} s of settling.",
        "",
        "| calls | app CPU (share of a core) | others on the app's core | CPU per relayed frame"
        " | p50 | p99 | max | late frames | delivered | generator lag p99 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['calls']} | {r['app_core_share'] * 100:.0f}%"
            f" | {r['others_core_share'] * 100:.0f}% | {r['cpu_us_per_frame']:.0f} µs"
            f" | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms"
            f" | {r['late']} | {r['delivered'] * 100:.1f}% | {r['generator_lag_p99_ms']:.1f} ms |"
        )
    lines.append("")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    costs = sorted(r["cpu_us_per_frame"] for r in results if r["calls"] >= 50) or [
        r["cpu_us_per_frame"] for r in results
    ]
    median_cost = costs[len(costs) // 2]
    # a call relays 50 frames/s each way
    capacity = 1e6 / (median_cost * 2 * 1000 / FRAME_MS)
    lines.append(
        f"CPU per relayed frame (median of the rows): **{median_cost:.0f} µs**, so one fully"
        f" available core carries ≈ **{capacity:.0f} concurrent calls** (goal ≥ 300:"
        f" {'✅' if capacity >= 300 else '❌'})."
    )
    if best is not None:
        lines.append(
            f"Held without a late frame here: {best['calls']} concurrent calls"
            f" (the app used {best['app_core_share'] * 100:.0f}% of a core)."
        )
    lines.append(
        f"Load average during the run: {load:.1f} on {os.cpu_count()} cores; when other"
        " processes share the app's core, frames queue behind them and arrive late long before"
        " the app's own CPU runs out (compare its share of a core, and the others' share of it,"
        " with the late frames)."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
