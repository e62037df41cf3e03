"""opentac's Prometheus metrics (``opentac[metrics]``): names, labels, buckets.

The hot path only adds to plain Python numbers (one dict lookup and one or two additions per
observation, on the event loop's thread); prometheus-client turns them into the exposition when
``/metrics`` is scraped, through one :class:`Collector` registered in the registry. That keeps a
recorded observation well under a microsecond, where a ``prometheus_client.Histogram`` takes
locks per call.

Every label takes values from a small fixed set (channels, outcomes, statuses) or from code
(Twilio products and operation templates with ids replaced by ``{id}``): no conversation id,
call SID or address is ever a label value.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = ["Family", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)


class Family:
    """One metric and its series by label values: a counter, a gauge or a histogram."""

    __slots__ = ("bounds", "help", "kind", "labels", "name", "series")

    def __init__(
        self,
        kind: str,
        name: str,
        help_text: str,
        labels: tuple[str, ...] = (),
        bounds: tuple[float, ...] = (),
    ) -> None:
        self.kind = kind
        self.name = name
        self.help = help_text
        self.labels = labels
        self.bounds = bounds
        # counter/gauge: [value]; histogram: [count per bucket (not cumulative)..., +Inf, sum]
        self.series: dict[tuple[str, ...], list[float]] = {}
        if not labels:
            self._new(())

    def _new(self, key: tuple[str, ...]) -> list[float]:
        values = [0.0] * (len(self.bounds) + 2 if self.kind == "histogram" else 1)
        self.series[key] = values
        return values

    def inc(self, key: tuple[str, ...] = (), amount: float = 1.0) -> None:
        """Add ``amount`` (a gauge may go down) to the series of ``key``."""
        values = self.series.get(key) or self._new(key)
        values[0] += amount

    def observe(self, key: tuple[str, ...], value: float) -> None:
        """Count ``value`` in its bucket of the histogram series of ``key``."""
        values = self.series.get(key) or self._new(key)
        values[bisect_left(self.bounds, value)] += 1
        values[-1] += value

    def collect(self) -> Metric:
        labels = list(self.labels)
        series = self.series.copy()
        if self.kind == "counter":
            counter = CounterMetricFamily(self.name, self.help, labels=labels)
            for key, values in series.items():
                counter.add_metric(list(key), values[0])
            return counter
        if self.kind == "gauge":
            gauge = GaugeMetricFamily(self.name, self.help, labels=labels)
            for key, values in series.items():
                gauge.add_metric(list(key), values[0])
            return gauge
        histogram = HistogramMetricFamily(self.name, self.help, labels=labels)
        for key, values in series.items():
            counts = list(values)
            total, running, buckets = counts.pop(), 0.0, []
            for bound, count in zip((*map(repr, self.bounds), "+Inf"), counts, strict=True):
                running += count
                buckets.append((bound, running))
            histogram.add_metric(list(key), buckets, total)
        return histogram


class Metrics(Collector):
    """Every opentac metric; registered once in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.turn_seconds = Family(
            "histogram",
            "tac_turn_duration_seconds",
            "A turn: webhook received (voice: the caller's prompt) to reply sent (voice: last "
            "token); outcome replied, no_reply, error, interrupted or cancelled",
            ("channel", "outcome"),
            _LATENCY_BUCKETS,
        )
        self.first_token_seconds = Family(
            "histogram",
            "tac_turn_first_token_seconds",
            "Voice: the caller's prompt to the first token of the reply sent",
            ("channel",),
            _LATENCY_BUCKETS,
        )
        self.to_callback_seconds = Family(
            "histogram",
            "tac_time_to_callback_seconds",
            "Webhook received (voice: prompt) to on_message_ready called (claim, session, memory)",
            ("channel",),
            _LATENCY_BUCKETS,
        )
        self.memory_seconds = Family(
            "histogram",
            "tac_memory_retrieval_seconds",
            "One memory retrieval by source (memory_api: Conversation Memory; fallback: "
            "Orchestrator history)",
            ("source", "outcome"),
            _API_BUCKETS,
        )
        self.twilio_seconds = Family(
            "histogram",
            "tac_twilio_request_duration_seconds",
            "One attempt of a Twilio API request, by product and operation",
            ("product", "operation"),
            _API_BUCKETS,
        )
        self.twilio_requests = Family(
            "counter",
            "tac_twilio_requests",
            "Twilio API request attempts by product, operation and status (HTTP status or the "
            "transport error's type)",
            ("product", "operation", "status"),
        )
        self.twilio_errors = Family(
            "counter",
            "tac_twilio_request_errors",
            "Twilio API request attempts that failed: a non-2xx status or a transport error",
            ("product", "operation", "error"),
        )
        self.webhooks = Family(
            "counter",
            "tac_webhooks",
            "Conversation webhooks by outcome: answered, duplicate, ignored, forged, malformed, "
            "too_large, unavailable",
            ("outcome",),
        )
        self.active_sessions = Family(
            "gauge",
            "tac_active_sessions",
            "Sessions started minus sessions ended by this instance (sum over instances)",
            ("channel",),
        )
        self.sessions_ended = Family(
            "counter",
            "tac_sessions_ended",
            "Sessions ended by reason (closed, call_ended, idle, ...)",
            ("channel", "reason"),
        )
        self.active_calls = Family(
            "gauge", "tac_active_calls", "Voice calls with an open WebSocket on this instance"
        )
        self.websocket_closes = Family(
            "counter",
            "tac_websocket_closes",
            "Voice WebSockets closed, by close code (lost: no close frame)",
            ("code",),
        )
        self.websocket_failures = Family(
            "counter",
            "tac_websocket_failures",
            "Voice WebSocket failures: refused, setup, lost, frame_dropped, relay_error",
            ("reason",),
        )
        self.interrupts = Family(
            "counter", "tac_interrupts", "Callers talking over the agent", ("channel",)
        )
        self.errors = Family(
            "counter", "tac_errors", "Errors handed to on_error, by channel", ("channel",)
        )
        self.reply_uncertain = Family(
            "counter",
            "tac_reply_uncertain",
            "Replies that failed ambiguously: they may have reached the customer",
            ("channel",),
        )
        self.delivery_status = Family(
            "counter",
            "tac_delivery_status",
            "Message delivery statuses (COMMUNICATION_UPDATED) and call statuses, by channel",
            ("channel", "status"),
        )
        self.inbound_takeovers = Family(
            "counter",
            "tac_inbound_takeovers",
            "Durable inbound: events this instance took over from one whose lease expired",
        )
        self.lease_expiries = Family(
            "counter",
            "tac_inbound_lease_expiries",
            "Durable inbound: leases this instance lost before its turn was done",
        )
        self._families = [value for value in vars(self).values() if isinstance(value, Family)]
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.collect()
