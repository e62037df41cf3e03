"""The cost of metrics and tracing on the messaging and voice hot paths (``make bench``).

The messaging and voice bench apps run in one process each (``benchmarks/_observed_app.py``)
that switches between the configurations of ``CONFIGS`` in one-second phases, in a shuffled
order per cycle: both off (twice, the second an A/A row for the noise), Prometheus metrics on,
OpenTelemetry tracing on (SDK tracer provider, batch processor, an exporter that drops the
spans), both on, and both again with 10 % of traces sampled. Each phase counts the app's CPU
time, the garbage collector's share of it and the replies. The load is the one of
``bench_messaging`` (closed loop, 100 conversations, the Twilio twin on the other core) and of
``bench_voice`` (50 calls, closed loop). Separate processes per configuration drift apart by
more than the effect; phases of one process share its heap, its caches and the machine's state.
The hooks of one messaging turn are also timed in this process, on warm caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._observed_app import CONFIGS, SETTLE, WARM_UP

APP = "benchmarks._observed_app"
PHASE_SECONDS = 1.0
CYCLES = 16
# the load runs this long: warm-up, then CYCLES cycles of every configuration
SECONDS = WARM_UP + CYCLES * len(CONFIGS) * (PHASE_SECONDS + SETTLE) + 1.0


@contextlib.contextmanager
def _phases_file() -> Iterator[Path]:
    """A file the app appends its phases to, named in the environment its process inherits."""
    names = ("BENCH_PHASES_FILE", "BENCH_PHASE_SECONDS")
    saved = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="opentac-bench-") as folder:
        path = Path(folder) / "phases.jsonl"
        os.environ["BENCH_PHASES_FILE"] = str(path)
        os.environ["BENCH_PHASE_SECONDS"] = str(PHASE_SECONDS)
        try:
            yield path
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _read(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The phases of each configuration, in the order they ran."""
    phases: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
    for line in path.read_text(encoding="utf-8").splitlines():
        phase = json.loads(line)
        if phase["replies"] > 0:
            phases[phase["config"]].append(phase)
    return phases


def _messaging() -> dict[str, list[dict[str, Any]]]:
    from benchmarks.bench_messaging import run_twin

    with _phases_file() as path:
        run_twin("never", 100, SECONDS, app_module=APP)
        return _read(path)


def _voice() -> dict[str, list[dict[str, Any]]]:
    from benchmarks.bench_voice import _server, _throughput

    with _phases_file() as path, _server(APP) as (port, pid):
        asyncio.run(_throughput(port, pid, 50, SECONDS))
        return _read(path)


def _per_reply(phases: list[dict[str, Any]], key: str = "cpu") -> float:
    """CPU per reply over ``phases``, in µs (``key``: of the process, or of the garbage
    collector's passes): their CPU over their replies, so that a full collection of the
    collector counts in whichever phase it lands."""
    replies = sum(p["replies"] for p in phases)
    return 1e6 * sum(p[key] for p in phases) / replies if replies else float("nan")


def _summary(phases: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[float, float, str]]:
    """Each configuration's CPU per reply (µs), the collector's share of it (µs) and its
    difference from both off, with the same difference in the first and the second half of
    the cycles."""
    half = CYCLES // 2
    base = _per_reply(phases["both off"])
    halves = [
        _per_reply([p for p in phases["both off"] if (p["cycle"] < half) == first])
        for first in (True, False)
    ]
    summary: dict[str, tuple[float, float, str]] = {}
    for name, runs in phases.items():
        cpu = _per_reply(runs)
        parts = [
            _per_reply([p for p in runs if (p["cycle"] < half) == first]) / off - 1
            for first, off in zip((True, False), halves, strict=True)
        ]
        difference = f"{cpu / base - 1:+.1%} ({parts[0]:+.1%}, {parts[1]:+.1%})"
        summary[name] = (cpu, _per_reply(runs, "collector"), difference)
    return summary


def _hooks_us(name: str, made: dict[float, Any], sdk_spans: bool = False) -> float:
    """CPU of the hooks one messaging turn runs (webhook outcome, turn, four stages, the
    Twilio request, the log context) under the configuration ``name``, timed in this process
    (its CPU time, the span processor's thread included): best of 30 batches of 300 turns, on
    warm caches.
    ``sdk_spans``: every span through the SDK's ``Tracer.start_span`` (opentac's own off)."""
    from benchmarks._observed_app import apply
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

    apply(name, made)
    if sdk_spans:
        _hooks.observer._spans = None  # type: ignore[attr-defined]  # no Recorder: the SDK's
    try:
        # batches of 300 turns (1,800 spans: the batch processor's queue of 2,048 never fills),
        # the queue emptied between them, outside the timing
        best = float("inf")
        for _ in range(30):
            for provider in made.values():
                provider.force_flush()
            started = time.process_time()
            for _ in range(300):
                turn()
            best = min(best, time.process_time() - started)
        return best / 300 * 1e6
    finally:
        observability.disable()


def run() -> str:
    from benchmarks._observed_app import providers

    messaging = _messaging()
    voice = _voice()
    made = providers()
    hooks = {name: _hooks_us(name, made) for name in CONFIGS}
    sdk = _hooks_us("tracing on", made, sdk_spans=True)
    m_sum, v_sum = _summary(messaging), _summary(voice)
    lines = [
        "## Observability: the cost of metrics and tracing",
        "",
        "App CPU per answered message (messaging, `never`, 100 conversations in a closed loop "
        "against the Twilio twin) and per voice turn (50 ConversationRelay calls, closed loop). "
        "Each app runs in one process that switches between the configurations in "
        f"interleaved phases of {PHASE_SECONDS:.0f} s ({CYCLES} cycles; each phase counts the "
        "process's CPU time and its replies). CPU: the phases' CPU over their replies, so that "
        "a full collection of the garbage collector counts wherever it lands; vs off: the "
        "difference from both off (in brackets: in the first and in the second half of the "
        'cycles). "Both off, again" is both off under another name: its difference is the '
        "noise. Collector: the CPU time of the garbage collector's passes per reply (the "
        "whole process's, in the same phases). "
        "Tracing uses the OpenTelemetry SDK with a batch processor and an exporter that drops "
        "the spans (every trace recorded, or 10 % with `ParentBased(TraceIdRatioBased(0.1))`); "
        "metrics are recorded in prometheus-client's registry (nothing scrapes them).",
        "",
        "| configuration | CPU per message (collector) | vs off | CPU per voice turn "
        "(collector) | vs off | hooks of one messaging turn, in process |",
        "|---|---|---|---|---|---|",
    ]

    base = m_sum["both off"][0]
    for name in CONFIGS:
        (m, m_gc, m_vs), (v, v_gc, v_vs) = m_sum[name], v_sum[name]
        lines.append(
            f"| {name} | {m:.0f} µs ({m_gc:.0f}) | {m_vs} | {v:.0f} µs ({v_gc:.1f}) | {v_vs} | "
            f"{hooks[name]:.1f} µs ({hooks[name] / base:.1%} of a message) |"
        )
    lines += [
        "",
        "The last column times the hooks of one messaging turn (webhook outcome, turn begin and "
        "end, four stages, one Twilio request, the log context) in this process, CPU time, best "
        "of 30 batches of 300 turns, on warm caches and mostly without garbage collection; the "
        "end-to-end columns include what the hooks cost the rest of the process (more "
        "collector passes, colder caches). Goal: ≤ 5 % more CPU per message with both on, "
        "nothing measurable with both off.",
        "",
        "The same hooks with every span opened and ended by the SDK's own `Tracer.start_span` "
        f"and `Span` (tracing on, opentac's own spans off): {sdk:.1f} µs in process.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
