"""Voice benchmark: ConversationRelay turns, latency, call bursts and memory per call.

The app (``benchmarks/_voice_server.py``: VoiceChannel, echo agent, signatures on) runs in its
own process pinned to one core; this process plays Twilio (signed ``/twiml`` posts and signed
WebSockets) pinned to another. Everything runs on loopback. Targets (issue 6):

- ≥ 1,500 turns/s on one core;
- ≤ 2 ms p50 and ≤ 10 ms p99 added per turn at 100 concurrent calls;
- 1,000 calls arriving at once get TwiML and the WebSocket accepted with p99 ≤ 200 ms;
- ≤ 100 KB per idle call, flat memory over 10,000 calls.

``python -m benchmarks.bench_voice`` prints the section; ``run()`` returns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
ACCOUNT = "AC" + "0" * 32
LATENCY_RUNS = 3
SERVER_CORE = 0
CLIENT_CORE = 1

_validator = RequestValidator(TOKEN)


# -- the app process -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(
    module: str = "benchmarks._voice_server", python: str | None = None
) -> Iterator[tuple[int, int]]:
    """Start the app (pinned when ``taskset`` exists); yield (port, pid).

    ``python``: another interpreter (the reference SDK's virtualenv); opentac's ``src`` is then
    left off the path so that its ``tac`` does not shadow the reference's.
    """
    port = _free_port()
    command = [python or sys.executable, "-m", module, str(port)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", str(SERVER_CORE), *command]
    from benchmarks._reference import python_path

    env = dict(os.environ, PYTHONPATH=python_path(opentac=python is None))
    env["TAC_ANALYTICS_DISABLED"] = "true"  # the reference reports usage to Segment otherwise
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the voice app did not start")
            time.sleep(0.05)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# -- Twilio's side ------------------------------------------------------------------------------
#
# A deliberately thin client (raw asyncio streams, HTTP/1.1 and RFC 6455 frames written by
# hand) so that the load generator, not the app, stays cheap: the `websockets` client costs
# several times the app's own work per handshake.

_MASK = b"\x00\x00\x00\x00"  # a fixed masking key: the payload goes out as is


def _frame(text: str) -> bytes:
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((0x81, 0x80 | size))
    elif size < 65536:
        header = bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + _MASK + payload


class _Socket:
    """One ConversationRelay WebSocket, Twilio's side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def send(self, text: str) -> None:
        self.writer.write(_frame(text))

    async def recv(self) -> str:
        while True:
            head = await self.reader.readexactly(2)
            size = head[1] & 0x7F
            if size == 126:
                size = int.from_bytes(await self.reader.readexactly(2), "big")
            elif size == 127:
                size = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(size)
            opcode = head[0] & 0x0F
            if opcode == 0x1:
                return payload.decode()
            if opcode == 0x8:
                raise ConnectionError("closed by the app")
            if opcode == 0x9:  # a ping (the server closes after about 40 s without a pong)
                self.writer.write(bytes((0x8A, 0x80 | size)) + _MASK + payload)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(bytes((0x88, 0x82)) + _MASK + (1000).to_bytes(2, "big"))
            await self.writer.drain()
            await asyncio.wait_for(self.reader.read(), 5)
        self.writer.close()


class _Caller:
    def __init__(self, port: int) -> None:
        self.port = port
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.count = 0

    async def _http(
        self, request: bytes
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        return reader, writer, head

    async def twiml(self, sid: str) -> None:
        """A signed ``POST /twiml``, as Twilio sends it when the call comes in."""
        url = f"http://127.0.0.1:{self.port}/twiml"
        form = {"CallSid": sid, "AccountSid": ACCOUNT, "From": "+14155550123"}
        body = urlencode(form).encode()
        signature = _validator.compute_signature(url, form)
        reader, writer, head = await self._http(
            f"POST /twiml HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n".encode()
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + body
        )
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"/twiml answered {head[:40]!r}")
        await reader.read()
        writer.close()

    async def dial(self, with_twiml: bool = False) -> _Socket:
        """Optionally post ``/twiml``; open the signed WebSocket and send ``setup``."""
        self.count += 1
        sid = f"CA{os.getpid():08d}{self.count:024d}"
        if with_twiml:
            await self.twiml(sid)
        signature = _validator.compute_signature(self.ws_url, {})
        reader, writer, head = await self._http(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n".encode()
            + b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + b"Sec-WebSocket-Version: 13\r\n"
            + f"X-Twilio-Signature: {signature}\r\n\r\n".encode()
        )
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"/ws answered {head[:40]!r}")
        socket_ = _Socket(reader, writer)
        socket_.send(
            json.dumps(
                {
                    "type": "setup",
                    "sessionId": "VX" + sid[2:],
                    "accountSid": ACCOUNT,
                    "parentCallSid": "",
                    "callSid": sid,
                    "from": "+14155550123",
                    "to": "+18005550100",
                    "forwardedFrom": "",
                    "callType": "PSTN",
                    "callerName": "",
                    "direction": "inbound",
                    "callStatus": "RINGING",
                    "customParameters": {},
                }
            )
        )
        return socket_


async def _turn(connection: _Socket, text: str) -> None:
    connection.send(
        '{"type":"prompt","voicePrompt":' + json.dumps(text) + ',"lang":"en-US","last":true}'
    )
    while True:
        frame = await connection.recv()
        if '"last":true' in frame or '"last": true' in frame:  # compact or not
            return


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- the measurements ------------------------------------------------------------------------------


async def _throughput(port: int, pid: int, calls: int = 50, seconds: float = 8.0) -> dict[str, Any]:
    caller = _Caller(port)
    connections = [await caller.dial() for _ in range(calls)]
    for connection in connections:
        await _turn(connection, "warm up")
    stop = time.perf_counter() + seconds
    done = 0

    async def loop(connection: _Socket) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await _turn(connection, "what is my balance")
            done += 1

    cpu_before = _cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in connections))
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(pid) - cpu_before
    for connection in connections:
        await connection.close()
    return {
        "calls": calls,
        "turns": done,
        "turns_per_s": done / elapsed,
        "app_cpu_s": cpu,
        "turns_per_cpu_s": done / cpu if cpu else float("nan"),
    }


async def _latency(
    port: int, pid: int, calls: int = 100, turns: int = 30, gap: float = 0.1
) -> dict[str, Any]:
    caller = _Caller(port)
    connections = [await caller.dial() for _ in range(calls)]
    for connection in connections:
        await _turn(connection, "warm up")
    samples: list[float] = []

    async def talk(index: int, connection: _Socket) -> None:
        await asyncio.sleep(gap * index / calls)  # spread the calls over the gap
        for _ in range(turns):
            started = time.perf_counter()
            await _turn(connection, "I would like to check my order")
            samples.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(gap)

    cpu_before = _cpu_seconds(pid)
    await asyncio.gather(*(talk(i, c) for i, c in enumerate(connections)))
    cpu = _cpu_seconds(pid) - cpu_before
    for connection in connections:
        await connection.close()
    return {
        "calls": calls,
        "turns": len(samples),
        "p50_ms": statistics.median(samples),
        "p99_ms": _percentile(samples, 99),
        "max_ms": max(samples),
        "app_cpu_us_per_turn": cpu / len(samples) * 1e6,
    }


async def _burst(port: int, pid: int, calls: int = 1000) -> dict[str, Any]:
    caller = _Caller(port)
    timings: list[float] = []
    connections: list[_Socket] = []
    barrier = asyncio.Event()

    async def one() -> None:
        await barrier.wait()
        started = time.perf_counter()
        connection = await caller.dial(with_twiml=True)
        timings.append((time.perf_counter() - started) * 1000)
        connections.append(connection)

    tasks = [asyncio.ensure_future(one()) for _ in range(calls)]
    await asyncio.sleep(0.1)
    cpu_before = _cpu_seconds(pid)
    wall = time.perf_counter()
    barrier.set()
    await asyncio.gather(*tasks)
    wall_ms = (time.perf_counter() - wall) * 1000
    cpu = _cpu_seconds(pid) - cpu_before
    await asyncio.gather(*(c.close() for c in connections))
    return {
        "calls": calls,
        "p50_ms": statistics.median(timings),
        "p99_ms": _percentile(timings, 99),
        "all_ms": wall_ms,
        "app_cpu_us_per_call": cpu / calls * 1e6,
    }


async def _idle_memory(port: int, pid: int, calls: int = 1000) -> dict[str, Any]:
    caller = _Caller(port)
    warm = [await caller.dial() for _ in range(50)]
    for connection in warm:
        await _turn(connection, "warm up")
        await connection.close()
    await asyncio.sleep(0.5)
    before = _rss_kb(pid)
    connections = []
    for _ in range(calls):
        connection = await caller.dial()
        await _turn(connection, "hello")  # the session exists and one turn ran
        connections.append(connection)
    await asyncio.sleep(0.5)
    after = _rss_kb(pid)
    for connection in connections:
        await connection.close()
    return {"calls": calls, "kb_per_call": (after - before) / calls}


async def _churn(port: int, pid: int, total: int = 10_000, batch: int = 250) -> dict[str, Any]:
    caller = _Caller(port)
    rss: list[int] = []

    async def one() -> None:
        connection = await caller.dial()
        await _turn(connection, "hello")
        await connection.close()

    for index in range(total // batch):
        await asyncio.gather(*(one() for _ in range(batch)))
        if (index + 1) * batch % 1000 == 0:
            await asyncio.sleep(0.2)
            rss.append(_rss_kb(pid))
    return {"calls": total, "rss_mb": [round(kb / 1024, 1) for kb in rss]}


async def _measure_all() -> dict[str, Any]:
    results: dict[str, Any] = {"load": os.getloadavg()}
    steps: list[tuple[str, Callable[[int, int], Awaitable[dict[str, Any]]]]] = [
        ("throughput", lambda port, pid: _throughput(port, pid)),
        ("burst", lambda port, pid: _burst(port, pid)),
        ("idle", lambda port, pid: _idle_memory(port, pid)),
        ("churn", lambda port, pid: _churn(port, pid)),
    ]
    for name, step in steps:
        with _server() as (port, pid):  # a fresh app for each measurement
            results[name] = await step(port, pid)
    # latency: alternate opentac and the bare stack, three runs each, keep the median run
    runs: dict[str, list[dict[str, Any]]] = {"latency": [], "baseline": []}
    for _ in range(LATENCY_RUNS):
        for name, module in (
            ("latency", "benchmarks._voice_server"),
            ("baseline", "benchmarks._relay_echo_server"),
        ):
            with _server(module) as (port, pid):
                runs[name].append(await _latency(port, pid))
    for name, measured in runs.items():
        measured.sort(key=lambda r: r["p99_ms"])
        results[name] = {**measured[len(measured) // 2], "runs": len(measured)}
    with _server("benchmarks._relay_echo_server") as (port, pid):
        results["baseline_burst"] = await _burst(port, pid)
    results["reference"] = await _measure_reference()
    return results


async def _measure_reference() -> dict[str, Any]:
    """The same throughput, latency and burst runs on the reference SDK (when installable)."""
    from benchmarks._reference import REFERENCE_VERSION, reference_python

    python, why = await asyncio.to_thread(reference_python)
    if python is None:
        return {"error": why}
    module = "benchmarks._voice_reference_server"
    found: dict[str, Any] = {"version": REFERENCE_VERSION}
    try:
        with _server(module, python) as (port, pid):
            found["throughput"] = await _throughput(port, pid)
        with _server(module, python) as (port, pid):
            found["latency"] = await _latency(port, pid)
        with _server(module, python) as (port, pid):
            found["burst"] = await _burst(port, pid)
    except Exception as exc:  # informative: report instead of failing the whole bench
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return found


def _pin_self() -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {CLIENT_CORE})


def _check(ok: bool | None) -> str:
    if ok is None:
        return ""
    return "✅" if ok else "❌"


def run() -> str:
    """Measure and return the markdown section."""
    _pin_self()
    results = asyncio.run(_measure_all())
    load = results["load"]
    t, lat, burst = results["throughput"], results["latency"], results["burst"]
    base = results["baseline"]
    base_burst = results["baseline_burst"]
    added_p50 = lat["p50_ms"] - base["p50_ms"]
    added_p99 = lat["p99_ms"] - base["p99_ms"]
    idle, churn = results["idle"], results["churn"]
    growth = churn["rss_mb"][-1] - churn["rss_mb"][1] if len(churn["rss_mb"]) > 1 else 0.0
    rows = [
        (
            "turns per second of app CPU (one core)",
            f"{t['turns_per_cpu_s']:,.0f}",
            "≥ 1,500",
            t["turns_per_cpu_s"] >= 1500,
        ),
        (
            f"turns per second, wall clock ({t['calls']} calls, one app core)",
            f"{t['turns_per_s']:,.0f}",
            "≥ 1,500",
            t["turns_per_s"] >= 1500,
        ),
        (
            f"added per turn, p50 ({lat['calls']} concurrent calls; opentac − bare server)",
            f"{added_p50:.2f} ms ({lat['p50_ms']:.2f} − {base['p50_ms']:.2f})",
            "≤ 2 ms",
            added_p50 <= 2,
        ),
        (
            f"added per turn, p99 ({lat['calls']} concurrent calls; opentac − bare server)",
            f"{added_p99:.2f} ms ({lat['p99_ms']:.2f} − {base['p99_ms']:.2f})",
            "≤ 10 ms",
            added_p99 <= 10,
        ),
        (
            f"app CPU per turn ({lat['calls']} concurrent calls)",
            f"{lat['app_cpu_us_per_turn']:.0f} µs",
            "≤ 2 ms",
            lat["app_cpu_us_per_turn"] <= 2000,
        ),
        (
            f"{burst['calls']} calls at once: TwiML + WebSocket accepted, p99",
            f"{burst['p99_ms']:.0f} ms (p50 {burst['p50_ms']:.0f} ms)",
            "≤ 200 ms",
            burst["p99_ms"] <= 200,
        ),
        (
            "same, bare server stack (no SDK; p99)",
            f"{base_burst['p99_ms']:.0f} ms (p50 {base_burst['p50_ms']:.0f} ms)",
            "",
            None,
        ),
        (
            "app CPU per call arriving (TwiML + WebSocket accept + setup)",
            f"{burst['app_cpu_us_per_call']:.0f} µs "
            f"(bare stack: {base_burst['app_cpu_us_per_call']:.0f} µs)",
            "≤ 200 µs (1,000 in 200 ms)",
            burst["app_cpu_us_per_call"] <= 200,
        ),
        (
            f"memory per idle call ({idle['calls']} calls)",
            f"{idle['kb_per_call']:.1f} KB",
            "≤ 100 KB",
            idle["kb_per_call"] <= 100,
        ),
        (
            f"RSS growth from 2,000 to {churn['calls']:,} calls",
            f"{growth:+.1f} MB",
            "flat",
            growth <= 5,
        ),
    ]
    lines = [
        "## Voice (ConversationRelay)",
        "",
        "The app (`benchmarks/_voice_server.py`: VoiceChannel in ConversationRelay-only mode, an "
        "agent that answers at once, signature checks on, in-process session store) runs in its "
        f"own process pinned to core {SERVER_CORE}; the load generator (signed `/twiml` posts "
        "and WebSockets from a thin hand-written client) is pinned to core "
        f"{CLIENT_CORE}. Loopback only. "
        "Latencies are measured by the load generator from sending `prompt` to receiving the "
        "final `text` (`last: true`); what opentac adds is that minus the same measurement "
        "against a bare Starlette app on the same server stack that answers each prompt "
        "(`benchmarks/_relay_echo_server.py`).",
        "",
        "| measure | result | target | |",
        "|---|---|---|---|",
        *(f"| {name} | {value} | {target} | {_check(ok)} |" for name, value, target, ok in rows),
        "",
        f"- Throughput run: {t['turns']:,} turns in 8 s over {t['calls']} calls; app CPU "
        f"{t['app_cpu_s']:.2f} s.",
        f"- Latency: {lat['turns']:,} turns per run, one every 100 ms per call; the run with "
        f"the median p99 of {lat['runs']} (each on a fresh app; max {lat['max_ms']:.1f} ms).",
        f"- Burst: all {burst['calls']} calls connected in {burst['all_ms']:.0f} ms.",
        f"- RSS (MB) after each 1,000 calls: {', '.join(str(v) for v in churn['rss_mb'])}.",
        "- Wall-clock figures depend on the machine being otherwise idle; CPU figures (from "
        "`/proc/<pid>/stat`, user + system) do not. Load average when the run started: "
        f"{', '.join(f'{v:.2f}' for v in load)}.",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}.",
        "",
        *_reference_lines(results["reference"], t, lat, burst),
    ]
    return "\n".join(lines)


def _reference_lines(
    ref: dict[str, Any], t: dict[str, Any], lat: dict[str, Any], burst: dict[str, Any]
) -> list[str]:
    lines = ["### Side by side with the reference SDK", ""]
    if "error" in ref:
        return [*lines, f"Not measured: {ref['error']}", ""]
    rt, rl, rb = ref["throughput"], ref["latency"], ref["burst"]
    return [
        *lines,
        f"The same app on `twilio-agent-connect` {ref['version']} "
        "(`benchmarks/_voice_reference_server.py`, relay-only mode, run from `.venv-reference`), "
        "the same load generator; one run of each measurement (opentac's latency figure is "
        "its median run).",
        "",
        f"| measure | opentac | reference {ref['version']} |",
        "|---|---|---|",
        f"| turns per second of app CPU | {t['turns_per_cpu_s']:,.0f} | "
        f"{rt['turns_per_cpu_s']:,.0f} |",
        f"| turn latency p50 / p99 ({lat['calls']} calls) | {lat['p50_ms']:.2f} / "
        f"{lat['p99_ms']:.2f} ms | {rl['p50_ms']:.2f} / {rl['p99_ms']:.2f} ms |",
        f"| app CPU per turn | {lat['app_cpu_us_per_turn']:.0f} µs | "
        f"{rl['app_cpu_us_per_turn']:.0f} µs |",
        f"| {burst['calls']} calls at once, p99 / app CPU per call | {burst['p99_ms']:.0f} ms / "
        f"{burst['app_cpu_us_per_call']:.0f} µs | {rb['p99_ms']:.0f} ms / "
        f"{rb['app_cpu_us_per_call']:.0f} µs |",
        "",
        "In relay-only mode neither SDK calls a Twilio API during a call, so this compares the "
        "WebSocket and protocol handling alone. With Conversation Orchestrator and memory both "
        "call Twilio's APIs, and the reference opens a new HTTP client for each request (the "
        "messaging comparison shows what that costs).",
        "",
    ]


if __name__ == "__main__":
    print(run())
