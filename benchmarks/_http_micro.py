"""Micro-benchmark of ``TwilioHTTP``'s outbound path: client CPU per request.

A tiny HTTP/1.1 keep-alive server runs in another process (pinned to core 1 when ``taskset``
exists); this process (pinned to core 0) runs ``concurrency`` tasks that each POST a small JSON
body through ``TwilioHTTP.request`` in a loop. Reports requests/s and client CPU µs/request
(``time.process_time``) per transport variant. Run: ``python -m benchmarks._http_micro``.
Environment: ``MICRO_VARIANTS`` (comma list of ``httpcore``, ``keepalive100``, ``sharded``,
``aiohttp``; ``default`` always runs), ``MICRO_CONCURRENCY`` (100), ``MICRO_SECONDS`` (4),
``MICRO_ROUNDS`` (3). Not part of ``make bench`` (the runner imports ``bench_*`` only).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
    b'{"status":"ok"}'
)


def serve(port: int) -> None:
    """The server: answers every request on a connection with one fixed 200 JSON response."""

    class Proto(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = self.buf[:head_end].lower()
                length = 0
                marker = head.find(b"content-length:")
                if marker >= 0:
                    length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
                total = head_end + 4 + length
                if len(self.buf) < total:
                    return
                self.buf = self.buf[total:]
                self.t.write(_RESPONSE)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Proto, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


async def _measure(
    make: Callable[[], object], port: int, concurrency: int, seconds: float
) -> tuple[float, float]:
    from tac.context._http import TwilioHTTP

    http = make()
    assert isinstance(http, TwilioHTTP)
    stop = False
    count = 0

    async def worker() -> None:
        nonlocal count
        while not stop:
            await http.request(
                "conversations",
                "POST",
                "/v2/Conversations/conv_x/Actions",
                json={"action": "SEND_MESSAGE", "body": "hello there"},
                retry="unsent_only",
            )
            count += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(1.0)  # warm-up
    count = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, wall1, done = time.process_time(), time.perf_counter(), count
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    await http.aclose()
    return done / (wall1 - wall0), 1e6 * (cpu1 - cpu0) / max(done, 1)


def variants(port: int) -> dict[str, Callable[[], object]]:
    from tac.context._http import TwilioHTTP

    base = f"http://127.0.0.1:{port}"

    def with_transport(factory: Callable[[], httpx.AsyncBaseTransport] | None) -> object:
        return TwilioHTTP(
            api_key="SKx",
            api_secret="secret",
            api_base_url=base,
            transport=factory() if factory else None,
        )

    found: dict[str, Callable[[], object]] = {"default": lambda: with_transport(None)}
    extra = os.environ.get("MICRO_VARIANTS", "")
    if "httpcore" in extra:
        found["httpcore pool 100/20 (old default)"] = lambda: with_transport(
            lambda: httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
            )
        )
    if "keepalive100" in extra:
        found["httpcore keepalive=100"] = lambda: with_transport(
            lambda: httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
            )
        )
    if "sharded" in extra:
        from benchmarks._pools import ShardedTransport

        found["sharded 16x8"] = lambda: with_transport(ShardedTransport)
    if "aiohttp" in extra:
        try:
            from httpx_aiohttp import AiohttpTransport
        except ImportError:
            pass
        else:
            found["httpx-aiohttp"] = lambda: with_transport(AiohttpTransport)
    return found


def main() -> None:
    concurrency = int(os.environ.get("MICRO_CONCURRENCY", "100"))
    seconds = float(os.environ.get("MICRO_SECONDS", "4"))
    rounds = int(os.environ.get("MICRO_ROUNDS", "3"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*_pin(1), sys.executable, "-c", f"from benchmarks._http_micro import serve; serve({port})"]
    )
    try:
        time.sleep(1.0)
        if _pin(0):
            os.sched_setaffinity(0, {0})
        results: dict[str, list[tuple[float, float]]] = {}
        for _ in range(rounds):
            for name, make in variants(port).items():
                results.setdefault(name, []).append(
                    asyncio.run(_measure(make, port, concurrency, seconds))
                )
        print(f"concurrency {concurrency}, {rounds} rounds of {seconds:.0f} s; medians:")
        for name, runs in results.items():
            rate = statistics.median(r for r, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            print(f"  {name:28s} {rate:8.0f} req/s  {cpu:8.0f} µs CPU/request")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
