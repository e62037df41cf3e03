"""The messaging or voice bench app, switching observability on and off as it runs.

``python -m benchmarks._observed_app`` (messaging) or ``... PORT`` (voice). A thread cycles
through :data:`CONFIGS` in phases of ``BENCH_PHASE_SECONDS`` (default 1): it applies a
configuration, lets the turns begun under the previous one finish (:data:`SETTLE`), then counts
the process's CPU time (every thread's), the CPU time of the garbage collector's passes and the
replies made during the phase, and appends one JSON line per phase to ``BENCH_PHASES_FILE``.
Each cycle runs the configurations in another order, so that what one leaves behind (a queue of
spans, a collection of the garbage collector it made due) is not always charged to the same next
one. The configurations of one process share its heap, caches and the machine's drift, which
separate processes do not.

Tracing uses the OpenTelemetry SDK: a tracer provider whose batch processor hands the spans to
an exporter that drops them (the SDK's full cost, no network), every trace recorded or 10 %
(``ParentBased(TraceIdRatioBased(0.1))``). Metrics are recorded in prometheus-client's registry.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

SETTLE = 0.1  # seconds after a switch before a phase is counted
WARM_UP = 2.0  # seconds of load before the first phase
CONFIGS = (
    "both off",
    "both off, again",  # the same as both off: how far two phases of one configuration differ
    "metrics on",
    "tracing on",
    "both on",
    "tracing on, 10 % of traces sampled",
    "both on, 10 % of traces sampled",
)


def providers() -> dict[float, Any]:
    """Tracer providers recording every trace (1.0) and 10 % of them (0.1)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class _Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    made = {}
    for ratio in (1.0, 0.1):
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
        provider.add_span_processor(BatchSpanProcessor(_Drop()))
        made[ratio] = provider
    return made


def apply(name: str, made: dict[float, Any]) -> None:
    """Switch this process's observability to the configuration ``name`` of :data:`CONFIGS`
    (metrics for "metrics …" and "both on …", tracing for "tracing …" and "both on …")."""
    from tac import observability

    observability.disable()
    if name.startswith(("metrics", "both on")):
        observability.enable_metrics()
    if name.startswith(("tracing", "both on")):
        observability.enable_tracing(made[0.1 if "10 %" in name else 1.0])


class _Phases:
    """Counts replies and runs the phases in a daemon thread."""

    def __init__(self, path: str, seconds: float) -> None:
        self.path = path
        self.seconds = seconds
        self.replies = 0
        self.made = providers()
        self.collector = 0.0  # CPU seconds spent in the garbage collector's passes
        self._pass_started = 0.0
        gc.callbacks.append(self._collector)

    def count(self) -> None:
        self.replies += 1

    def _collector(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._pass_started = time.thread_time()  # a pass runs on the thread that set it off
        else:
            self.collector += time.thread_time() - self._pass_started

    def start(self) -> Callable[[], None]:
        threading.Thread(target=self._run, name="bench-phases", daemon=True).start()
        return self.count

    def _run(self) -> None:
        while not self.replies:
            time.sleep(0.02)
        time.sleep(WARM_UP)
        cycle = 0
        with open(self.path, "a", encoding="utf-8") as out:
            while True:
                order = list(CONFIGS)
                random.Random(cycle).shuffle(order)  # each configuration after each other one
                for name in order:
                    apply(name, self.made)
                    time.sleep(SETTLE)
                    cpu, replies, collector = time.process_time(), self.replies, self.collector
                    time.sleep(self.seconds)
                    cpu, replies = time.process_time() - cpu, self.replies - replies
                    line = {
                        "cycle": cycle,
                        "config": name,
                        "cpu": cpu,
                        "replies": replies,
                        "collector": self.collector - collector,
                    }
                    out.write(json.dumps(line) + "\n")
                    out.flush()
                cycle += 1


def main() -> None:
    phases = _Phases(os.environ["BENCH_PHASES_FILE"], float(os.environ["BENCH_PHASE_SECONDS"]))
    on_reply = phases.start()
    if len(sys.argv) < 2:
        from benchmarks import _messaging_app

        _messaging_app.main(on_reply)
    else:
        from benchmarks import _voice_server

        port = int(sys.argv[1])
        _voice_server.serve(port, on_reply, public_base_url=f"http://127.0.0.1:{port}")


if __name__ == "__main__":
    main()
