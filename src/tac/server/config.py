"""Server settings: where it listens and the paths of its routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tac.core.config import _Env
from tac.core.errors import TACConfigError

__all__ = ["TACServerConfig"]


class TACServerConfig(BaseModel):
    """Where :class:`~tac.server.TACFastAPIServer` listens and which paths it serves."""

    model_config = ConfigDict(extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=0, le=65535)
    conversation_webhook_path: str = "/webhook"
    twiml_path: str = "/twiml"
    cintel_webhook_path: str | None = "/ci-webhook"
    shutdown_grace_period: float = Field(default=30.0, ge=0)
    idempotency_lease_seconds: float = Field(default=60.0, gt=0)
    max_request_body_bytes: int = Field(default=1_048_576, ge=1)
    """Largest request body opentac's routes read (413 above it); Twilio's are a few KB."""
    metrics_enabled: bool = False
    """Record Prometheus metrics and serve them at ``metrics_path`` (``opentac[metrics]``)."""
    metrics_path: str = "/metrics"
    tracing_enabled: bool = False
    """Open OpenTelemetry spans for turns and Twilio API calls (``opentac[otel]``)."""

    @field_validator(
        "conversation_webhook_path", "twiml_path", "cintel_webhook_path", "metrics_path"
    )
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TACServerConfig:
        """Read ``TWILIO_SERVER_HOST`` (default 0.0.0.0), ``TWILIO_SERVER_PORT`` (8000),
        ``TAC_METRICS_ENABLED``, ``TAC_METRICS_PATH`` (``/metrics``) and ``TAC_TRACING_ENABLED``
        (both off by default)."""
        env = _Env(environ)
        port = env.integer("TWILIO_SERVER_PORT", 8000, 0, 65535)
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
            return cls(host=env.get("TWILIO_SERVER_HOST") or "0.0.0.0", port=port, **observability)
        except ValidationError as exc:
            raise TACConfigError("TWILIO_SERVER_HOST", str(exc.errors()[0]["msg"])) from None
