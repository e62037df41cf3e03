"""Metrics (Prometheus) and traces (OpenTelemetry) for opentac, both off until you turn them on.

``TACFastAPIServer`` turns them on from its config (``metrics_enabled`` /
``TAC_METRICS_ENABLED=true``, ``tracing_enabled`` / ``TAC_TRACING_ENABLED=true``); without a
server, call :func:`enable_metrics` and :func:`enable_tracing` yourself. opentac never sends
anything anywhere: metrics are served at ``/metrics`` for your Prometheus to scrape, and spans go
to whatever exporter you configure in the OpenTelemetry SDK. Off, each hook on the hot path costs
one no-op method call.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tac.observability import _hooks
from tac.observability._hooks import Observer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from tac.observability._metrics import Metrics

__all__ = [
    "disable",
    "enable_metrics",
    "enable_tracing",
    "metrics_enabled",
    "render_metrics",
    "tracing_enabled",
]

_lock = threading.Lock()
_metrics_by_registry: dict[int, Metrics] = {}
_metrics: Metrics | None = None
_tracer: Any = None


def _install() -> None:
    from tac.observability._live import LiveObserver

    if _metrics is None and _tracer is None:
        _hooks.install(Observer())
    else:
        _hooks.install(LiveObserver(_metrics, _tracer))


def enable_metrics(registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """Record opentac's metrics in ``registry`` (default: prometheus-client's ``REGISTRY``).

    Idempotent: the metrics are registered once per registry. Returns the registry.

    Raises:
        ImportError: ``prometheus-client`` is missing (install ``opentac[metrics]``).
    """
    global _metrics
    try:
        import prometheus_client
    except ImportError:
        raise ImportError(
            "metrics need prometheus-client: pip install 'opentac[metrics]'"
        ) from None
    from tac.observability._metrics import Metrics

    registry = registry if registry is not None else prometheus_client.REGISTRY
    with _lock:
        metrics = _metrics_by_registry.get(id(registry))
        if metrics is None:
            metrics = _metrics_by_registry[id(registry)] = Metrics(registry)
        _metrics = metrics
        _install()
    return registry


def enable_tracing(tracer_provider: Any = None) -> None:
    """Open spans for turns and Twilio API calls with ``tracer_provider`` (default: the global
    one, set by your OpenTelemetry SDK setup).

    Raises:
        ImportError: ``opentelemetry-api`` is missing (install ``opentac[otel]``).
    """
    global _tracer
    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError("tracing needs opentelemetry-api: pip install 'opentac[otel]'") from None
    from tac._version import __version__

    with _lock:
        _tracer = trace.get_tracer("opentac", __version__, tracer_provider=tracer_provider)
        _install()


def disable(*, metrics: bool = True, tracing: bool = True) -> None:
    """Stop recording metrics and/or opening spans (registered metrics stay registered)."""
    global _metrics, _tracer
    with _lock:
        if metrics:
            _metrics = None
        if tracing:
            _tracer = None
        _install()


def metrics_enabled() -> bool:
    """Whether opentac records metrics."""
    return _metrics is not None


def tracing_enabled() -> bool:
    """Whether opentac opens spans."""
    return _tracer is not None


def render_metrics(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The text exposition of ``registry`` (default: the one metrics are recorded in) and its
    content type, for a ``/metrics`` route of your own."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    if registry is None:
        registry = _metrics.registry if _metrics is not None else REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
