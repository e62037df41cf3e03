"""Proof on real parts: Debian's Prometheus scrapes a running app after SMS and voice turns; the
turn-latency series, every query of the Grafana dashboard and every example alert rule work."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests._ports import free_port
from tests.observability._app import observed_app

from tac.models.session import ConversationSession

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs"
DASHBOARD = DOCS / "grafana" / "opentac-dashboard.json"
ALERTS = DOCS / "prometheus" / "opentac-alerts.yml"
PROMETHEUS = shutil.which("prometheus")


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@contextlib.contextmanager
def prometheus(app_url: str) -> Iterator[str]:
    """A Prometheus scraping ``app_url`` every second, with the example alert rules loaded."""
    if PROMETHEUS is None:
        pytest.skip("Debian's prometheus package is not installed (scripts/ensure-services.sh)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="opentac-prometheus-") as folder:
        config = Path(folder) / "prometheus.yml"
        target = app_url.removeprefix("http://")
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            f"rule_files: ['{ALERTS}']\n"
            "scrape_configs:\n"
            "  - job_name: opentac\n"
            "    metrics_path: /metrics\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def query(http: httpx.AsyncClient, base: str, promql: str) -> list[dict[str, Any]]:
    response = await http.get(f"{base}/api/v1/query", params={"query": promql})
    body = response.json()
    assert body["status"] == "success", (promql, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def _has_data(http: httpx.AsyncClient, base: str, promql: str) -> bool:
    return bool(await query(http, base, promql))


async def until(check: Any, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            if await check():
                return
        assert loop.time() < deadline, "Prometheus did not see it in time"
        await asyncio.sleep(0.25)


async def tokens(message: str, session: ConversationSession, memory: Any) -> Any:
    if session.channel != "voice":
        return f"echo: {message}"

    async def stream() -> AsyncIterator[str]:
        for word in ("you ", "said ", message):
            yield word

    return stream()


async def test_prometheus_scrapes_turn_latency_and_the_dashboard_queries_work() -> None:
    async with (
        observed_app(tokens, memory_mode="always") as app,
        httpx.AsyncClient(timeout=10) as http,
    ):
        with prometheus(app.url) as base:

            async def scraped() -> bool:
                up = await query(http, base, 'up{job="opentac"}')
                return bool(up) and up[0]["value"][1] == "1"

            await until(scraped)
            customer = app.sandbox.customer("sms")

            async def one_round(n: int) -> None:
                assert (await customer.ask(f"hi {n}", timeout=5)).text == f"echo: hi {n}"
                async with app.sandbox.caller() as caller:
                    await caller.dial()
                    assert (await caller.ask(f"call {n}", timeout=5)).text == f"you said call {n}"
                    await caller.hang_up()

            async def counted(n: int) -> bool:
                for channel in ("sms", "voice"):
                    promql = (
                        "sum(tac_turn_duration_seconds_count"
                        f'{{channel="{channel}",outcome="replied"}})'
                    )
                    result = await query(http, base, promql)
                    if not result or float(result[0]["value"][1]) < n:
                        return False
                return True

            # two rounds, each seen by a scrape: rates over the window are then above zero
            await one_round(1)
            await until(lambda: counted(1))
            await one_round(2)
            await until(lambda: counted(2))

            latency = await query(
                http,
                base,
                "histogram_quantile(0.95, sum by (le, channel) "
                '(rate(tac_turn_duration_seconds_bucket{outcome="replied"}[5m])))',
            )
            by_channel = {row["metric"]["channel"]: float(row["value"][1]) for row in latency}
            assert set(by_channel) >= {"sms", "voice"}
            assert all(math.isfinite(v) and v > 0 for v in by_channel.values()), by_channel

            for promql in dashboard_queries():
                # a series born in the last round needs one more scrape before rate() sees it
                await until(lambda promql=promql: _has_data(http, base, promql), timeout=10)

            async def rules_evaluated() -> bool:
                response = await http.get(f"{base}/api/v1/rules")
                groups = response.json()["data"]["groups"]
                rules = [rule for group in groups for rule in group["rules"]]
                return len(rules) == ALERTS.read_text().count("- alert:") and all(
                    rule["health"] == "ok" and rule["lastEvaluation"][:4] != "0001"
                    for rule in rules
                )

            await until(rules_evaluated)
    assert app.errors == []
