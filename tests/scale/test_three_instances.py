"""Three opentac instances on one Redis behind Debian's nginx, as an operator runs them.

The sandbox (its own process) sends every webhook through nginx, which spreads them round
robin over three instance processes; 30 % of webhooks are delivered twice, so duplicates land
on different instances. Mid-traffic one instance is killed with SIGKILL while turns are in
flight, or Redis is killed and restarted five seconds later. The assertions are the README's
promise: every message answered exactly once, every conversation ended exactly once, no Redis
key left without a TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tac.sandbox import Customer, Sandbox
from tests._ports import free_port
from tests.scale._cluster import Instance, Nginx, Redis, have

pytestmark = [
    pytest.mark.integration,
    # Until durable inbound lands (issue 12) these fail as the issue describes; the engine
    # lane runs them with OPENTAC_SCALE_TESTS=1, and the skip goes when they pass.
    pytest.mark.skipif(
        os.environ.get("OPENTAC_SCALE_TESTS") != "1", reason="set OPENTAC_SCALE_TESTS=1"
    ),
    pytest.mark.skipif(not have("nginx"), reason="Debian's nginx is not installed"),
    pytest.mark.skipif(not have("redis-server"), reason="redis-server is not installed"),
]

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

    def ended(self) -> Counter[str]:
        return Counter(parts[1] for parts in self.lines("ended"))

    def diagnostics(self) -> str:
        return "\n".join(
            f"--- {i.name} ---\n{i.log.read_text(errors='replace')[-4000:]}" for i in self.instances
        )


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
    unanswered: list[str] | None = None

    async def run(self, on_answer: Any = None) -> None:
        self.unanswered = []

        async def talk(index: int, customer: Customer) -> None:
            for turn in range(self.per_customer):
                tag = f"c{index}t{turn}"
                await customer.send(tag)
                if await self._answer(customer, tag):
                    self.answered += 1
                    if on_answer is not None:
                        await on_answer(self.answered)
                else:
                    assert self.unanswered is not None
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


async def settle_and_check(c: Cluster, customers: list[Customer], traffic: Traffic) -> None:
    """Every message answered once, every conversation ended once, every key with a TTL."""
    assert traffic.unanswered == [], f"unanswered: {traffic.unanswered[:20]}\n{c.diagnostics()}"
    await c.sandbox.client.webhooks_idle(30)
    # A takeover that wrongly repeats a reply would come within the lease window: wait it out.
    await asyncio.sleep(16)
    counts = await replies_per_message(c.sandbox, customers)
    sent = traffic.per_customer * len(customers)
    assert len(counts) == sent
    wrong = {tag: n for tag, n in counts.items() if n != 1}
    assert wrong == {}, f"answered other than once: {wrong}\n{c.diagnostics()}"

    await close_all(c.sandbox, customers)
    ids = {customer.conversation_id for customer in customers}

    async def all_ended() -> bool:
        return ids <= set(c.ended())

    assert await eventually(all_ended, 40), (
        f"{len(ids - set(c.ended()))} conversations never ended\n{c.diagnostics()}"
    )
    await c.sandbox.client.webhooks_idle(30)
    await asyncio.sleep(2)
    doubled = {cid: n for cid, n in c.ended().items() if n > 1}
    assert doubled == {}, f"ended more than once: {doubled}"
    assert await keys_without_ttl(c.redis.url) == []


def customers_on_every_channel(sandbox: Sandbox, per_channel: int) -> list[Customer]:
    return [sandbox.customer(channel) for channel in CHANNELS for _ in range(per_channel)]


async def test_an_instance_killed_mid_turn_loses_and_doubles_nothing() -> None:
    async with cluster() as c:
        await c.sandbox.client.set_webhook_faults(duplicate_rate=0.3)
        customers = customers_on_every_channel(c.sandbox, 25)  # 100 conversations
        traffic = Traffic(customers, per_customer=10)  # 1,000 messages

        async def kill_once(answered: int) -> None:
            if answered == 300:
                c.instances[0].kill()

        await traffic.run(kill_once)
        assert not c.instances[0].alive
        await c.sandbox.client.clear_webhook_faults()
        await settle_and_check(c, customers, traffic)


async def test_redis_down_for_five_seconds_loses_and_doubles_nothing() -> None:
    async with cluster() as c:
        await c.sandbox.client.set_webhook_faults(duplicate_rate=0.3)
        customers = customers_on_every_channel(c.sandbox, 10)
        traffic = Traffic(customers, per_customer=8)

        async def outage(answered: int) -> None:
            if answered == 100:
                await asyncio.to_thread(c.redis.kill)
                await asyncio.sleep(5)
                await asyncio.to_thread(c.redis.start)

        await traffic.run(outage)
        await c.sandbox.client.clear_webhook_faults()
        await settle_and_check(c, customers, traffic)


def parse_voice_reply(text: str) -> tuple[str, str]:
    """``re[hello] conv=CH… on=b`` → (conversation id, instance name)."""
    fields = dict(part.split("=", 1) for part in text.split()[1:])
    return fields["conv"], fields["on"]


async def test_live_calls_keep_their_sessions_when_their_events_land_elsewhere() -> None:
    """A live call's CLOSED, a handoff request and its end callbacks reach other instances:
    no session ends under a live call unless the call ends too; each ends exactly once."""
    async with cluster() as c:
        calls = [await c.sandbox.call() for _ in range(6)]
        owners: dict[str, str] = {}
        conversations: list[str] = []
        for call in calls:
            conversation, owner = parse_voice_reply(str(await call.ask("hello", timeout=20)))
            owners[conversation] = owner
            conversations.append(conversation)

        async def still_live(index: int) -> bool:
            details = await calls[index].refresh()
            return details["status"] == "in-progress"

        # 1. CLOSED for the first three calls, delivered through nginx to any instance.
        await close_all_ids(c.sandbox, conversations[:3])
        await c.sandbox.client.webhooks_idle(30)
        await asyncio.sleep(1)
        for index in range(3):
            if await still_live(index):
                assert c.ended()[conversations[index]] == 0, "session ended under a live call"
                reply = await calls[index].ask("still there?", timeout=20)
                assert parse_voice_reply(str(reply))[0] == conversations[index]
            else:
                assert c.ended()[conversations[index]] == 1

        # 2. A supervisor hands calls 3 and 4 to a human through an instance that does not
        #    hold them: the call's own instance sends `end` with the handoff data.
        async with httpx.AsyncClient(timeout=20) as http:
            for index in (3, 4):
                owner = owners[conversations[index]]
                other = next(i for i in c.instances if i.name != owner)
                response = await http.post(
                    f"http://127.0.0.1:{other.port}/admin/handoff/{conversations[index]}"
                )
                assert response.status_code == 200, response.text
                details = await calls[index].wait_ended(20)
                assert json.loads(details["handoffData"]) == {"reason": "supervisor"}

        # 3. Everyone else hangs up; the end callbacks land wherever nginx sends them.
        for index in (0, 1, 2, 5):
            if await still_live(index):
                await calls[index].hang_up()

        async def all_ended() -> bool:
            return set(conversations) <= set(c.ended())

        assert await eventually(all_ended, 30), f"not ended: {set(conversations) - set(c.ended())}"
        await c.sandbox.client.webhooks_idle(30)
        await asyncio.sleep(2)
        assert {cid: n for cid, n in c.ended().items() if n != 1} == {}
        assert await keys_without_ttl(c.redis.url) == []


async def close_all_ids(sandbox: Sandbox, conversation_ids: list[str]) -> None:
    for conversation_id in conversation_ids:
        await sandbox.client.request(
            "PATCH",
            f"/conversations/v2/Conversations/{conversation_id}",
            json={"status": "CLOSED"},
        )
