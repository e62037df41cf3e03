"""The cost of metrics and tracing on the messaging and voice hot paths (``make bench``).

The messaging and voice bench apps (``benchmarks/_observed_app.py``) run four ways: both off,
Prometheus metrics on, OpenTelemetry tracing on (SDK tracer provider, batch processor, an
exporter that drops the spans), both on. The load is the one of ``bench_messaging`` (closed loop,
100 conversations, the Twilio twin on the other core) and of ``bench_voice`` (50 calls, closed
loop). The four configurations are interleaved over several rounds; medians are reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import timeit
from collections.abc import Iterator
from typing import Any

APP = "benchmarks._observed_app"
CONFIGS: dict[str, dict[str, str]] = {
    "both off": {},
    "metrics on": {"BENCH_METRICS": "1"},
    "tracing on": {"BENCH_TRACING": "1"},
    "both on": {"BENCH_METRICS": "1", "BENCH_TRACING": "1"},
    "tracing on, 10 % of traces sampled": {"BENCH_TRACING": "1", "BENCH_TRACING_RATIO": "0.1"},
    "both on, 10 % of traces sampled": {
        "BENCH_METRICS": "1",
        "BENCH_TRACING": "1",
        "BENCH_TRACING_RATIO": "0.1",
    },
}
ROUNDS = 3
MESSAGING_SECONDS = 6.0
VOICE_SECONDS = 4.0


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    names = ("BENCH_METRICS", "BENCH_TRACING", "BENCH_TRACING_RATIO")
    saved = {name: os.environ.get(name) for name in names}
    for name in saved:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _messaging_cpu_ms() -> float:
    from benchmarks.bench_messaging import run_twin

    result = run_twin("never", 100, MESSAGING_SECONDS, app_module=APP)
    replies = max(int(result["replies"]), 1)
    return 1000 * float(result["app_cpu_share"]) * float(result["seconds"]) / replies


def _voice_cpu_us() -> float:
    from benchmarks.bench_voice import _server, _throughput

    with _server(APP) as (port, pid):
        result: dict[str, Any] = asyncio.run(_throughput(port, pid, 50, VOICE_SECONDS))
    return 1e6 / float(result["turns_per_cpu_s"])


def _hooks_us(values: dict[str, str]) -> float:
    """CPU of the hooks one messaging turn runs (webhook outcome, turn, four stages, the
    Twilio request, the log context) under a configuration, timed in this process (its CPU
    time, the span processor's thread included): min of repeats, so less sensitive to other
    load than the end-to-end figures."""
    from benchmarks._observed_app import _observe
    from tac import observability
    from tac.observability import _hooks

    def turn() -> None:
        observer = _hooks.observer
        observer.webhook("answered")
        handle = observer.turn_begin("SMS", "conv_1")
        with observer.stage("tac.claim"):
            pass
        with observer.stage("tac.session.load"):
            pass
        _hooks.bind_log_context("conv_1", "sms")
        with observer.callback_started():
            pass
        with observer.stage("tac.reply"):
            probe = observer.twilio_request(
                "conversations",
                "POST",
                "/v2/Conversations/conv_1/Actions",
                "http://127.0.0.1:9/conversations/v2/Conversations/conv_1/Actions",
                {},
            )
            if probe is not None:
                probe.done(202)
        observer.reply_sent()
        observer.turn_end(handle)

    with _environ(values):
        _observe()
    try:
        runs = 5_000
        cpu = timeit.repeat(turn, number=runs, repeat=7, timer=time.process_time)
        return min(cpu) / runs * 1e6
    finally:
        observability.disable()


def run() -> str:
    messaging: dict[str, list[float]] = {name: [] for name in CONFIGS}
    voice: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(ROUNDS):
        for name, values in CONFIGS.items():
            with _environ(values):
                messaging[name].append(_messaging_cpu_ms())
                voice[name].append(_voice_cpu_us())
    hooks = {name: _hooks_us(values) for name, values in CONFIGS.items()}
    base_m = statistics.median(messaging["both off"])
    base_v = statistics.median(voice["both off"])
    lines = [
        "## Observability: the cost of metrics and tracing",
        "",
        "App CPU per answered message (messaging, `never`, 100 conversations in a closed loop "
        "against the Twilio twin) and per voice turn (50 ConversationRelay calls, closed loop), "
        f"median of {ROUNDS} interleaved rounds. Tracing uses the OpenTelemetry SDK with a "
        "batch processor and an exporter that drops the spans (every trace recorded, or 10 % "
        "with `ParentBased(TraceIdRatioBased(0.1))`); metrics are recorded for "
        "prometheus-client's registry (nothing scrapes them during the run).",
        "",
        "| configuration | CPU per message | vs off | CPU per voice turn | vs off | "
        "hooks of one messaging turn, in process |",
        "|---|---|---|---|---|---|",
    ]
    for name in CONFIGS:
        m = statistics.median(messaging[name])
        v = statistics.median(voice[name])
        lines.append(
            f"| {name} | {m:.3f} ms | {100 * (m / base_m - 1):+.1f} % | {v:.0f} µs | "
            f"{100 * (v / base_v - 1):+.1f} % | {hooks[name]:.1f} µs "
            f"({100 * hooks[name] / (base_m * 1000):.1f} % of a message) |"
        )
    lines += [
        "",
        "The last column times the hooks of one messaging turn (webhook outcome, turn begin and "
        "end, four stages, one Twilio request, the log context) in this process, CPU time, min "
        "of 7 repeats: the end-to-end figures of a shared machine vary by more than the effect. "
        "Goal: ≤ 5 % more CPU per message with both on, nothing measurable with both off.",
        "",
        "Spread of the rounds (CPU per message, ms): "
        + "; ".join(
            f"{name} {', '.join(f'{x:.3f}' for x in values)}" for name, values in messaging.items()
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
