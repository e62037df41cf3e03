"""Real parts for the scale-out tests: a private Redis, Debian's nginx and opentac processes.

Everything listens on loopback on free ports and lives in one temporary folder; nothing here
touches the Redis that the rest of the suite shares (these tests stop and restart theirs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tac.sandbox import Customer, Sandbox
from tests._nginx import check_config, loopback_config
from tests._ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def have(program: str) -> bool:
    return shutil.which(program) is not None or Path(f"/usr/sbin/{program}").exists()


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s:\n{_tail(log)}")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _spawn(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Redis:
    """A redis-server of our own, with an append-only file so that a restart keeps its data."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.folder / "redis.log"
        self.process = _spawn(
            [
                shutil.which("redis-server") or "redis-server",
                "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--logfile", str(log),
            ],
            log,
        )  # fmt: skip
        _wait_port(self.port, self.process, log, 10)

    def kill(self) -> None:
        """Stop it hard (SIGKILL): what is in the append-only file comes back on ``start``."""
        _stop(self.process, signal.SIGKILL)
        self.process = None

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


@dataclass
class Nginx:
    """Debian's nginx in front of the instances, configured as docs/deployment.md says."""

    folder: Path
    upstreams: list[int]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        conf = self.folder / "nginx.conf"
        # docs/deployment.md's configuration; all test traffic comes from one address, so
        # without its per-client limits.
        conf.write_text(
            loopback_config(self.folder, self.port, self.upstreams, per_client_limits=False)
        )
        check_config(self.folder, conf)
        log = self.folder / "nginx.log"
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = _spawn([binary, "-p", str(self.folder), "-c", str(conf)], log)
        _wait_port(self.port, self.process, self.folder / "nginx-error.log", 10)

    def stop(self) -> None:
        _stop(self.process, signal.SIGQUIT)
        self.process = None


@dataclass
class Instance:
    """One opentac app process (``tests.scale._instance``)."""

    name: str
    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / f"instance-{self.name}.log"

    def start(self) -> None:
        env = {
            **os.environ,
            **self.env,
            "TWILIO_SERVER_HOST": "127.0.0.1",
            "TWILIO_SERVER_PORT": str(self.port),
            "SCALE_INSTANCE": self.name,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        }
        self.process = _spawn([sys.executable, "-m", "tests.scale._instance"], self.log, env)
        _wait_port(self.port, self.process, self.log, 30)

    def kill(self) -> None:
        _stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.process)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


CHANNELS = ("sms", "whatsapp", "rcs", "chat")
REPLY_TIMEOUT = 45.0  # a dead instance's turns are taken over within 15 s


@dataclass
class Cluster:
    sandbox: Sandbox
    redis: Redis
    nginx: Nginx
    instances: list[Instance]
    log: Path

    def lines(self, kind: str) -> list[list[str]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [line.split() for line in text.splitlines() if line.startswith(kind + " ")]

    def uncertain(self) -> set[str]:
        """Conversations in which ``on_error`` got ``reply_uncertain=True``."""
        return {parts[4] for parts in self.lines("error") if parts[3] == "uncertain"}

    def ended(self) -> Counter[str]:
        return Counter(parts[1] for parts in self.lines("ended"))

    def diagnostics(self) -> str:
        errors = "\n".join(" ".join(parts) for parts in self.lines("error")[-20:])
        logs = "\n".join(
            f"--- {i.name} ---\n{i.log.read_text(errors='replace')[-4000:]}" for i in self.instances
        )
        return f"--- on_error (last 20) ---\n{errors}\n{logs}"


@contextlib.asynccontextmanager
async def cluster(instances: int = 3) -> AsyncIterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="opentac-scale-"))
    nginx_port = free_port()
    public = f"http://127.0.0.1:{nginx_port}"
    redis = Redis(folder)
    nginx: Nginx | None = None
    apps: list[Instance] = []
    try:
        await asyncio.to_thread(redis.start)
        async with Sandbox.start(
            subprocess=True,
            app_url=public,
            db=str(folder / "sandbox.db"),
            webhook_attempts=10,
            webhook_base_delay_seconds=0.25,
            webhook_timeout_seconds=10.0,
        ) as sandbox:
            env = {
                **sandbox.env,
                "TAC_STATE_URL": redis.url,
                "TAC_PUBLIC_BASE_URL": public,
                "TWILIO_LOG_LEVEL": "WARNING",
                "SCALE_LOG": str(folder / "events.log"),
            }
            apps = [Instance(name, folder, env) for name in "abc"[:instances]]
            await asyncio.gather(*(asyncio.to_thread(app.start) for app in apps))
            nginx = Nginx(folder, [app.port for app in apps], port=nginx_port)
            await asyncio.to_thread(nginx.start)
            yield Cluster(sandbox, redis, nginx, apps, folder / "events.log")
    finally:
        for app in apps:
            await asyncio.to_thread(app.stop)
        if nginx is not None:
            await asyncio.to_thread(nginx.stop)
        await asyncio.to_thread(redis.stop)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Traffic:
    """Customers texting turn by turn; each waits for the answer to its message, then goes on."""

    customers: list[Customer]
    per_customer: int
    answered: int = 0
    unanswered: list[str] = field(default_factory=list)
    # (sent at, seconds to the answer) per answered message, on the loop's clock
    timings: list[tuple[float, float]] = field(default_factory=list)

    async def run(self, on_answer: Callable[[int], Awaitable[None]] | None = None) -> None:
        loop = asyncio.get_running_loop()

        async def talk(index: int, customer: Customer) -> None:
            for turn in range(self.per_customer):
                tag = f"c{index}t{turn}"
                sent = loop.time()
                await customer.send(tag)
                if await self._answer(customer, tag):
                    self.timings.append((sent, loop.time() - sent))
                    self.answered += 1
                    if on_answer is not None:
                        await on_answer(self.answered)
                else:
                    self.unanswered.append(tag)

        await asyncio.gather(*(talk(i, c) for i, c in enumerate(self.customers)))

    @staticmethod
    async def _answer(customer: Customer, tag: str) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLY_TIMEOUT
        while (left := deadline - loop.time()) > 0:
            try:
                reply = await customer.next_reply(timeout=left)
            except TimeoutError:
                return False
            if reply.text == f"re[{tag}]":
                return True
        return False


async def replies_per_message(sandbox: Sandbox, customers: list[Customer]) -> dict[str, int]:
    """For every message a customer sent: how many times the agent answered it."""
    counts: dict[str, int] = {}
    for customer in customers:
        assert customer.conversation_id is not None
        for doc in await sandbox.client.messages(customer.conversation_id):
            text = str(doc.get("content", {}).get("text", ""))
            if doc["author"]["address"] == customer.address:
                counts.setdefault(text, 0)
            elif text.startswith("re[") and text.endswith("]"):
                counts[text[3:-1]] = counts.get(text[3:-1], 0) + 1
    return counts


async def close_all(sandbox: Sandbox, customers: list[Customer]) -> None:
    await close_all_ids(sandbox, [str(customer.conversation_id) for customer in customers])


async def eventually(check: Any, timeout: float, interval: float = 0.25) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(interval)
    return bool(await check())


async def keys_without_ttl(url: str) -> list[str]:
    client = aioredis.from_url(url)
    try:
        found = []
        async for key in client.scan_iter(count=1000):
            if await client.ttl(key) == -1:
                found.append(key.decode(errors="replace"))
        return found
    finally:
        await client.aclose()


async def close_all_ids(sandbox: Sandbox, conversation_ids: list[str]) -> None:
    for conversation_id in conversation_ids:
        await sandbox.client.request(
            "PATCH",
            f"/conversations/v2/Conversations/{conversation_id}",
            json={"status": "CLOSED"},
        )


def customers_on_every_channel(sandbox: Sandbox, per_channel: int) -> list[Customer]:
    return [sandbox.customer(channel) for channel in CHANNELS for _ in range(per_channel)]
