"""The messaging or voice bench app with metrics and/or tracing on (``bench_observability``).

``python -m benchmarks._observed_app`` (messaging) or ``... PORT`` (voice); ``BENCH_METRICS=1``
records Prometheus metrics, ``BENCH_TRACING=1`` opens spans into an OpenTelemetry SDK tracer
provider whose batch processor hands them to an exporter that drops them (the SDK's full cost,
no network); ``BENCH_TRACING_RATIO`` samples that share of the traces (default 1).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


def _observe() -> None:
    from tac import observability

    if os.environ.get("BENCH_METRICS") == "1":
        observability.enable_metrics()
    if os.environ.get("BENCH_TRACING") == "1":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class _Drop(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        ratio = float(os.environ.get("BENCH_TRACING_RATIO", "1"))
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
        provider.add_span_processor(BatchSpanProcessor(_Drop()))
        observability.enable_tracing(provider)


def main() -> None:
    _observe()
    if len(sys.argv) < 2:
        from benchmarks import _messaging_app

        _messaging_app.main()
    else:
        from benchmarks import _voice_server

        port = int(sys.argv[1])
        _voice_server.serve(port, public_base_url=f"http://127.0.0.1:{port}")


if __name__ == "__main__":
    main()
