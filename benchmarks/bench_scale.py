"""Three instances behind nginx on one Redis, one killed mid-traffic (``make bench``).

The same parts as ``tests/scale``: the sandbox in its own process sends every webhook through
Debian's nginx (round robin) to three opentac processes sharing a Redis of their own; 30 % of
webhooks are delivered twice; each agent turn takes 50-300 ms. 100 customers over SMS,
WhatsApp, RCS and Chat text 10 messages each, one at a time, and after 300 answers one instance
is killed with SIGKILL. Reported: answers per second, reply times, and how long the messages
that were in flight on the killed instance waited for the survivors to take them over.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

TITLE = "## Scale-out: three instances, one killed"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


async def _measure() -> dict[str, Any]:
    from tests.scale._cluster import (
        Traffic,
        cluster,
        customers_on_every_channel,
        replies_per_message,
    )

    async with cluster() as c:
        await c.sandbox.client.set_webhook_faults(duplicate_rate=0.3)
        customers = customers_on_every_channel(c.sandbox, 25)
        traffic = Traffic(customers, per_customer=10)
        loop = asyncio.get_running_loop()
        killed_at: list[float] = []

        async def kill_once(answered: int) -> None:
            if answered == 300:
                killed_at.append(loop.time())
                c.instances[0].kill()

        started = time.perf_counter()
        await traffic.run(kill_once)
        elapsed = time.perf_counter() - started
        await c.sandbox.client.webhooks_idle(30)
        await asyncio.sleep(16)  # past the lease: a wrongly repeated reply would show
        counts = await replies_per_message(c.sandbox, customers)
    kill = killed_at[0]
    # Sent before the kill and answered after it: these include the turns the dead instance held.
    straddling = [latency for sent, latency in traffic.timings if sent < kill < sent + latency]
    latencies = [latency for _, latency in traffic.timings]
    return {
        "messages": len(counts),
        "answered_once": sum(1 for n in counts.values() if n == 1),
        "doubled": sum(1 for n in counts.values() if n > 1),
        "unanswered": len(traffic.unanswered),
        "per_second": traffic.answered / elapsed,
        "p50": _pct(latencies, 0.5) * 1000,
        "p99": _pct(latencies, 0.99) * 1000,
        "straddling": len(straddling),
        "straddling_p50": _pct(straddling, 0.5),
        "straddling_max": max(straddling, default=0.0),
    }


def run() -> str:
    from tests.scale._cluster import have

    if not (have("nginx") and have("redis-server")):
        return f"{TITLE}\n\nSkipped: nginx or redis-server is missing.\n"
    r = asyncio.run(_measure())
    waited = f"{r['straddling_p50']:.1f} s / {r['straddling_max']:.1f} s"
    return f"""{TITLE}

{__doc__.strip()}

| | |
|---|---|
| messages sent | {r["messages"]:,} |
| answered exactly once | {r["answered_once"]:,} |
| answered twice or more | {r["doubled"]} |
| never answered | {r["unanswered"]} |
| answers per second (whole run, 3 instances on 2 shared cores) | {r["per_second"]:.0f} |
| reply time p50 / p99 | {r["p50"]:.0f} ms / {r["p99"]:.0f} ms |
| messages in flight at the kill | {r["straddling"]} |
| their reply time p50 / max (takeover included) | {waited} |
"""
