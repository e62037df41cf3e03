"""Server settings: where it listens and the paths of its routes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tac.core.config import CALL_EVENT_KINDS, CallEventKind, TACConfig, _Env
from tac.core.errors import TACConfigError
from tac.models._base import first_error

__all__ = ["RoutePaths", "TACServerConfig"]


class TACServerConfig(BaseModel):
    """Where :class:`~tac.server.TACFastAPIServer` listens and which paths it serves."""

    model_config = ConfigDict(extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    conversation_webhook_path: str = "/webhook"
    twiml_path: str = "/twiml"
    cintel_webhook_path: str | None = "/ci-webhook"
    shutdown_grace_period: float = Field(default=30.0, ge=0)
    idempotency_lease_seconds: float = Field(default=5.0, gt=0)
    """Lease on an accepted event, renewed every third of it while its turn runs; with Redis,
    an instance that stops loses its events to a live one within about twice this."""
    health_path: str | None = "/healthz"
    """Liveness probe: 200 while the process serves (``None``: no route)."""
    ready_path: str | None = "/readyz"
    """Readiness probe: 200 when the session store answers and the server is not draining."""
    webhook_fast_path: bool = True
    """``POST /webhook`` straight to its handler, past the router and exception layers (the
    app's own middleware still sees it). ``False``: through the router like any route, so the
    app's exception handlers see its 403s too, at a measured cost (docs/performance.md)."""
    max_request_body_bytes: int = Field(default=1_048_576, ge=1)
    """Largest JSON body opentac's routes read (413 above it); Twilio's are a few KB."""
    max_form_body_bytes: int = Field(default=16_384, ge=1)
    """Largest form body (``/twiml``, the relay action, call events): forms are parsed before
    their signature can be checked, so this bounds the work an unsigned request causes."""
    max_header_bytes: int = Field(default=65_536, ge=1024)
    """Largest request head (request line and headers) a client may send (431 above it)."""
    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client has to send a request's headers (then the connection is closed)."""
    body_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client has to send a request's body once its headers are in."""
    websocket_setup_timeout: float = Field(default=10.0, gt=0)
    """Seconds a ConversationRelay WebSocket has to send ``setup`` (then closed with 1008)."""
    max_pending_connections: int = Field(default=512, ge=1)
    """Connections allowed at once without a complete request (idle or still sending one);
    more are refused with 503. Live calls and requests being answered do not count."""
    metrics_enabled: bool = False
    """Record Prometheus metrics and serve them at ``metrics_path`` (``opentac[metrics]``)."""
    metrics_path: str = "/metrics"
    tracing_enabled: bool = False
    """Open OpenTelemetry spans for turns and Twilio API calls (``opentac[otel]``)."""

    @field_validator(
        "conversation_webhook_path",
        "twiml_path",
        "cintel_webhook_path",
        "health_path",
        "ready_path",
        "metrics_path",
    )
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TACServerConfig:
        """Read ``TWILIO_SERVER_HOST`` (default 0.0.0.0), ``TWILIO_SERVER_PORT`` (8000) and
        the limits: ``TAC_MAX_REQUEST_BODY_BYTES``, ``TAC_MAX_FORM_BODY_BYTES``,
        ``TAC_MAX_HEADER_BYTES``,
        ``TAC_HEADER_TIMEOUT_SECONDS``, ``TAC_BODY_TIMEOUT_SECONDS``,
        ``TAC_WEBSOCKET_SETUP_TIMEOUT_SECONDS``, ``TAC_MAX_PENDING_CONNECTIONS``,
        ``TAC_WEBHOOK_FAST_PATH``, and observability: ``TAC_METRICS_ENABLED``,
        ``TAC_METRICS_PATH`` (``/metrics``) and ``TAC_TRACING_ENABLED`` (both off by default)."""
        env = _Env(environ)
        port = env.integer("TWILIO_SERVER_PORT", 8000, 0, 65535)
        limits: dict[str, float | bool] = {
            "webhook_fast_path": env.boolean("TAC_WEBHOOK_FAST_PATH", True)
        }
        for name, field, low in _LIMITS:
            default = cls.model_fields[field].default
            if isinstance(low, int):
                limits[field] = env.integer(name, default, low, 1 << 40)
            else:
                limits[field] = env.number(name, default, low, 86_400.0)
        observability: dict[str, Any] = {
            "metrics_enabled": env.boolean("TAC_METRICS_ENABLED", False),
            "tracing_enabled": env.boolean("TAC_TRACING_ENABLED", False),
        }
        metrics_path = env.get("TAC_METRICS_PATH")
        if metrics_path is not None:
            if not metrics_path.startswith("/"):
                raise TACConfigError(
                    "TAC_METRICS_PATH", f"must start with '/', got {metrics_path!r}"
                )
            observability["metrics_path"] = metrics_path
        try:
            return cls(
                host=env.get("TWILIO_SERVER_HOST") or "0.0.0.0",
                port=port,
                **limits,
                **observability,
            )
        except ValidationError as exc:
            raise TACConfigError("TWILIO_SERVER_HOST", first_error(exc)[1]) from None


_LIMITS: tuple[tuple[str, str, int | float], ...] = (
    ("TAC_MAX_REQUEST_BODY_BYTES", "max_request_body_bytes", 1),
    ("TAC_MAX_FORM_BODY_BYTES", "max_form_body_bytes", 1),
    ("TAC_MAX_HEADER_BYTES", "max_header_bytes", 1024),
    ("TAC_HEADER_TIMEOUT_SECONDS", "header_timeout", 0.001),
    ("TAC_BODY_TIMEOUT_SECONDS", "body_timeout", 0.001),
    ("TAC_WEBSOCKET_SETUP_TIMEOUT_SECONDS", "websocket_setup_timeout", 0.001),
    ("TAC_MAX_PENDING_CONNECTIONS", "max_pending_connections", 1),
)
"""The limits ``from_env`` reads: (variable, field, lowest value; an int for whole numbers)."""


@dataclass(frozen=True, slots=True)
class RoutePaths:
    """Every path the server serves, in one place.

    The settings live where the reference SDK put them (``TACServerConfig``: the webhooks,
    ``/twiml`` and the probes; ``TACConfig``: the voice WebSocket, the ConversationRelay action
    and the call events, whose public URLs go into TwiML); the server reads them only here.
    ``None``: the route is off.
    """

    webhook: str
    cintel_webhook: str | None
    twiml: str
    voice_websocket: str
    voice_action: str
    call_events: tuple[tuple[CallEventKind, str], ...]
    """``(kind, path)`` for ``status``, ``amd`` and ``recording``."""
    health: str | None
    ready: str | None
    metrics: str | None

    @classmethod
    def of(cls, tac_config: TACConfig, server_config: TACServerConfig) -> RoutePaths:
        return cls(
            webhook=server_config.conversation_webhook_path,
            cintel_webhook=server_config.cintel_webhook_path,
            twiml=server_config.twiml_path,
            voice_websocket=tac_config.voice_websocket_path,
            voice_action=tac_config.voice_action_path,
            call_events=tuple(
                (kind, tac_config.call_event_path(kind)) for kind in CALL_EVENT_KINDS
            ),
            health=server_config.health_path,
            ready=server_config.ready_path,
            metrics=server_config.metrics_path if server_config.metrics_enabled else None,
        )
