"""opentac's Prometheus metrics (``opentac[metrics]``): names, labels, buckets.

Every label takes values from a small fixed set (channels, outcomes, statuses) or from code
(Twilio products and operation templates with ids replaced by ``{id}``): no conversation id,
call SID or address is ever a label value.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)


class Metrics:
    """The metric objects, registered once in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.turn_seconds = Histogram(
            "tac_turn_duration_seconds",
            "A turn: webhook received (voice: the caller's prompt) to reply sent (voice: last "
            "token); outcome replied, no_reply, error or cancelled",
            ["channel", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_token_seconds = Histogram(
            "tac_turn_first_token_seconds",
            "Voice: the caller's prompt to the first token of the reply sent",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.to_callback_seconds = Histogram(
            "tac_time_to_callback_seconds",
            "Webhook received (voice: prompt) to on_message_ready called (claim, session, memory)",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.memory_seconds = Histogram(
            "tac_memory_retrieval_seconds",
            "One memory retrieval by source (memory_api: Conversation Memory; fallback: "
            "Orchestrator history)",
            ["source", "outcome"],
            buckets=_API_BUCKETS,
            registry=registry,
        )
        self.twilio_seconds = Histogram(
            "tac_twilio_request_duration_seconds",
            "One attempt of a Twilio API request, by product and operation",
            ["product", "operation"],
            buckets=_API_BUCKETS,
            registry=registry,
        )
        self.twilio_requests = Counter(
            "tac_twilio_requests",
            "Twilio API request attempts by product, operation and status (HTTP status or the "
            "transport error's type)",
            ["product", "operation", "status"],
            registry=registry,
        )
        self.twilio_errors = Counter(
            "tac_twilio_request_errors",
            "Twilio API request attempts that failed: a non-2xx status or a transport error",
            ["product", "operation", "error"],
            registry=registry,
        )
        self.webhooks = Counter(
            "tac_webhooks",
            "Conversation webhooks by outcome: answered, duplicate, ignored, forged, malformed, "
            "too_large, unavailable",
            ["outcome"],
            registry=registry,
        )
        self.active_sessions = Gauge(
            "tac_active_sessions",
            "Sessions started minus sessions ended by this instance (sum over instances)",
            ["channel"],
            registry=registry,
        )
        self.sessions_ended = Counter(
            "tac_sessions_ended",
            "Sessions ended by reason (closed, call ended, handoff, idle, ...)",
            ["channel", "reason"],
            registry=registry,
        )
        self.active_calls = Gauge(
            "tac_active_calls",
            "Voice calls with an open WebSocket on this instance",
            registry=registry,
        )
        self.websocket_closes = Counter(
            "tac_websocket_closes",
            "Voice WebSockets closed, by close code (lost: no close frame)",
            ["code"],
            registry=registry,
        )
        self.websocket_failures = Counter(
            "tac_websocket_failures",
            "Voice WebSocket failures: refused, setup, lost, frame_dropped, relay_error",
            ["reason"],
            registry=registry,
        )
        self.interrupts = Counter(
            "tac_interrupts", "Callers talking over the agent", ["channel"], registry=registry
        )
        self.errors = Counter(
            "tac_errors", "Errors handed to on_error, by channel", ["channel"], registry=registry
        )
        self.reply_uncertain = Counter(
            "tac_reply_uncertain",
            "Replies that failed ambiguously: they may have reached the customer",
            ["channel"],
            registry=registry,
        )
        self.delivery_status = Counter(
            "tac_delivery_status",
            "Message delivery statuses (COMMUNICATION_UPDATED) and call statuses, by channel",
            ["channel", "status"],
            registry=registry,
        )
        self.inbound_takeovers = Counter(
            "tac_inbound_takeovers",
            "Durable inbound: events taken over from an instance whose lease expired",
            registry=registry,
        )
        self.lease_expiries = Counter(
            "tac_inbound_lease_expiries",
            "Durable inbound: event leases that expired before their turn was done",
            registry=registry,
        )
