"""Twilio's side of the messaging benchmark, lean enough not to be the bottleneck.

One asyncio process: a minimal HTTP/1.1 server answering the Conversation Orchestrator and
Memory requests the app makes (Participants, Actions, configuration, Recall, profile), and a
closed-loop load of signed ``COMMUNICATION_CREATED`` webhooks over keep-alive connections. Per
conversation: the customer's message → wait for the agent's reply (the Actions POST) → the two
webhooks Twilio sends about that reply (the agent's own ``COMMUNICATION_CREATED`` and a
``COMMUNICATION_UPDATED``) → the next message.

``python -m benchmarks._twin --app-url ... --port ... --conversations 100 --seconds 10``
prints one JSON object with the measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

STORE = "mem_store_bench00000000000000000000"
AGENT = "+15005550006"
ACCOUNT = "AC" + "b" * 32


def _customer(i: int) -> str:
    return f"+1415{i:07d}"


class Stats:
    def __init__(self) -> None:
        self.measuring = False
        self.replies = 0
        self.acks: list[float] = []
        self.requests: Counter[str] = Counter()
        self.before_callback: Counter[str] = Counter()
        self.turns_measured = 0


class Twin:
    def __init__(
        self, app_url: str, auth_token: str, conversations: int, think: float = 0.0
    ) -> None:
        self.think = think
        self.random = random.Random(7)
        self.app_url = app_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.conversations = conversations
        self.stats = Stats()
        self.replied: dict[str, asyncio.Future[None]] = {}
        self.pending_turn: dict[str, Counter[str]] = {}
        host_port = self.app_url.split("://", 1)[1]
        host, _, port = host_port.partition(":")
        self.app_host, self.app_port = host, int(port or 80)

    # -- the stub of Twilio's APIs ----------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line[:15].lower() == "content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                status, body = self.route(method, target.split("?", 1)[0])
                payload = json.dumps(body).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    def route(self, method: str, path: str) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[0] == "conversations" and parts[2] == "ControlPlane":
            self._count("configuration", None)
            return 200, {
                "id": parts[-1],
                "displayName": "bench",
                "description": "bench",
                "conversationGroupingType": "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE",
                "memoryStoreId": STORE,
                "channelSettings": {},
                "statusCallbacks": [],
                "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
                "version": 1,
            }
        if parts[0] == "conversations" and parts[-1] == "Participants":
            cid = parts[3]
            self._count("participants", cid)
            i = int(cid.rsplit("_", 1)[1])
            common = {
                "conversationId": cid,
                "accountId": ACCOUNT,
                "createdAt": "2026-01-01T00:00:00Z",
                "updatedAt": "2026-01-01T00:00:00Z",
            }
            return 200, {
                "participants": [
                    {
                        **common,
                        "id": f"p_customer_{i}",
                        "name": f"Customer {i}",
                        "type": "CUSTOMER",
                        "profileId": f"mem_profile_{i}",
                        "addresses": [{"channel": "SMS", "address": _customer(i)}],
                    },
                    {
                        **common,
                        "id": f"p_agent_{i}",
                        "name": "Agent",
                        "type": "AI_AGENT",
                        "addresses": [{"channel": "SMS", "address": AGENT}],
                    },
                ],
                "meta": {"key": "participants", "pageSize": 2},
            }
        if parts[0] == "conversations" and parts[-1] == "Actions":
            cid = parts[3]
            self._count("actions", cid)
            future = self.replied.get(cid)
            if future is not None and not future.done():
                future.set_result(None)
            return 202, {
                "id": "conv_action_1",
                "type": "action-send-message",
                "status": "PENDING",
                "conversationId": cid,
                "related": {"messageSid": "SMbench"},
                "createdAt": "2026-01-01T00:00:00Z",
            }
        if parts[0] == "memory" and parts[-1] == "Recall":
            self._count("memory_recall", self._conversation_of_profile(parts[-2]))
            return 200, {"observations": [], "summaries": [], "communications": []}
        if parts[0] == "memory" and "Profiles" in parts:
            self._count("memory_profile", self._conversation_of_profile(parts[-1]))
            return 200, {"id": parts[-1], "traits": {"Contact": {"phone": "+14150000000"}}}
        return 404, {"message": f"no route {method} {path}"}

    @staticmethod
    def _conversation_of_profile(profile: str) -> str:
        return "conv_bench_" + profile.rsplit("_", 1)[1]

    def _count(self, kind: str, cid: str | None) -> None:
        if not self.stats.measuring:
            return
        self.stats.requests[kind] += 1
        if cid is not None and kind != "actions" and cid in self.pending_turn:
            self.pending_turn[cid][kind] += 1

    # -- the load ------------------------------------------------------------------------------

    def _signed(self, event: dict[str, Any], token: str) -> bytes:
        body = json.dumps(event, separators=(",", ":")).encode()
        path = f"/webhook?bodySHA256={hashlib.sha256(body).hexdigest()}"
        signature = self.validator.compute_signature(self.app_url + path, {})
        return (
            f"POST {path} HTTP/1.1\r\nHost: {self.app_host}:{self.app_port}\r\n"
            f"Content-Type: application/json\r\nX-Twilio-Signature: {signature}\r\n"
            f"I-Twilio-Idempotency-Token: {token}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def _post(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> None:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if line[:15].lower() == "content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        status = int(head[9:12])
        if status != 200:
            raise RuntimeError(f"webhook answered {status}")
        if self.stats.measuring:
            self.stats.acks.append((time.perf_counter() - started) * 1000)

    async def conversation(self, i: int, stop: asyncio.Event) -> None:
        try:
            await self._conversation(i, stop)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not stop.is_set():
                raise

    async def _conversation(self, i: int, stop: asyncio.Event) -> None:
        cid = f"conv_bench_{i}"
        reader, writer = await asyncio.open_connection(self.app_host, self.app_port)
        turn = 0
        while not stop.is_set():
            turn += 1
            stamp = f"{i}-{turn}"
            now = _now()
            message = {
                "eventType": "COMMUNICATION_CREATED",
                "timestamp": now,
                "data": {
                    "id": f"comms_communication_in_{stamp}",
                    "conversationId": cid,
                    "accountId": ACCOUNT,
                    "author": {
                        "address": _customer(i),
                        "channel": "SMS",
                        "participantId": f"p_customer_{i}",
                    },
                    "content": {"type": "TEXT", "text": f"message {turn}"},
                    "channelId": f"SM{stamp}",
                    "resourceId": f"SM{stamp}",
                    "recipients": [
                        {
                            "address": AGENT,
                            "channel": "SMS",
                            "participantId": f"p_agent_{i}",
                            "deliveryStatus": "DELIVERED",
                        }
                    ],
                    "createdAt": now,
                    "updatedAt": now,
                    "occurredAt": now,
                },
            }
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.replied[cid] = future
            measuring = self.stats.measuring
            if measuring:
                self.pending_turn[cid] = Counter()
            await self._post(reader, writer, self._signed(message, f"in-{stamp}"))
            await future
            if measuring and self.stats.measuring:
                self.stats.replies += 1
                self.stats.turns_measured += 1
                self.stats.before_callback.update(self.pending_turn.pop(cid, Counter()))
            now = _now()
            own = {
                "eventType": "COMMUNICATION_CREATED",
                "timestamp": now,
                "data": {
                    "id": f"comms_communication_out_{stamp}",
                    "conversationId": cid,
                    "accountId": ACCOUNT,
                    "author": {"address": AGENT, "channel": "SMS", "participantId": f"p_agent_{i}"},
                    "content": {"type": "TEXT", "text": "ok"},
                    "channelId": f"SMout{stamp}",
                    "resourceId": f"SMout{stamp}",
                    "recipients": [
                        {
                            "address": _customer(i),
                            "channel": "SMS",
                            "participantId": f"p_customer_{i}",
                            "deliveryStatus": "INITIATED",
                        }
                    ],
                    "createdAt": now,
                    "updatedAt": now,
                    "occurredAt": now,
                },
            }
            updated = {**own, "eventType": "COMMUNICATION_UPDATED"}
            await self._post(reader, writer, self._signed(own, f"out-{stamp}"))
            await self._post(reader, writer, self._signed(updated, f"upd-{stamp}"))
            if self.think:
                await asyncio.sleep(self.random.uniform(0, 2 * self.think))
        writer.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def _redis_counts(url: str) -> tuple[int, int]:
    """Scripts the Redis server has run so far (``EVALSHA``) and the requests it has read
    (``total_reads_processed``: a pipeline of several scripts is one read, one round trip).
    The commands a script runs inside Redis are neither. ``(0, 0)`` without ``url``."""
    if not url:
        return 0, 0
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        commands = await client.info("commandstats")
        stats = await client.info("stats")
    finally:
        await client.aclose()
    scripts = int(commands.get("cmdstat_evalsha", {}).get("calls", 0))
    return scripts, int(stats.get("total_reads_processed", 0))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    twin = Twin(args.app_url, args.auth_token, args.conversations, args.think)
    server = await asyncio.start_server(twin.serve, "127.0.0.1", args.port, backlog=1024)
    Path(args.ready_file).write_text("ready")  # noqa: ASYNC240 - once, before the load
    go = Path(args.go_file)
    while not go.exists():  # noqa: ASYNC110, ASYNC240 - the parent signals with a file
        await asyncio.sleep(0.05)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(twin.conversation(i, stop)) for i in range(args.conversations)]
    await asyncio.sleep(args.warmup)
    args.app_pid = args.app_pid or int(go.read_text().strip() or 0)  # noqa: ASYNC240
    scripts0, reads0 = await _redis_counts(args.redis_url)
    cpu0 = _cpu_seconds(args.app_pid) if args.app_pid else 0.0
    own0 = time.process_time()
    t0 = time.perf_counter()
    twin.stats.measuring = True
    await asyncio.sleep(args.seconds)
    twin.stats.measuring = False
    elapsed = time.perf_counter() - t0
    cpu = (_cpu_seconds(args.app_pid) - cpu0) if args.app_pid else 0.0
    own = time.process_time() - own0
    scripts, reads = await _redis_counts(args.redis_url)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    server.close()
    errors = sorted({repr(t.exception()) for t in tasks if t.done() and t.exception()})
    acks = sorted(twin.stats.acks)

    def pct(p: float) -> float:
        return acks[min(len(acks) - 1, int(p * len(acks)))] if acks else 0.0

    turns = max(twin.stats.turns_measured, 1)
    return {
        "conversations": args.conversations,
        "seconds": elapsed,
        "replies": twin.stats.replies,
        "replies_per_second": twin.stats.replies / elapsed,
        "ack_count": len(acks),
        "ack_p50_ms": pct(0.50),
        "ack_p90_ms": pct(0.90),
        "ack_p99_ms": pct(0.99),
        "ack_max_ms": acks[-1] if acks else 0.0,
        "app_cpu_share": cpu / elapsed,
        "twin_cpu_share": own / elapsed,
        "requests": dict(twin.stats.requests),
        "errors": errors[:5],
        "redis_scripts": scripts - scripts0 if args.redis_url else None,
        "redis_reads": reads - reads0 if args.redis_url else None,
        "requests_before_callback_per_turn": {
            k: v / turns for k, v in twin.stats.before_callback.items()
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--app-url", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between turns (s)")
    parser.add_argument("--app-pid", type=int, default=0)
    parser.add_argument("--redis-url", default="", help="count its scripts while measuring")
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--go-file", required=True)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
