"""Studio v2 wire models (``studio.twilio.com``): Flow Executions, used for human handoff.

Studio is a classic API: form-encoded requests, snake_case JSON responses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tac.models._base import ClassicWireModel

__all__ = ["ExecutionResponse"]


class ExecutionResponse(ClassicWireModel):
    """``POST /v2/Flows/{FlowSid}/Executions`` → 201: the execution started."""

    sid: str
    account_sid: str | None = None
    flow_sid: str | None = None
    contact_sid: str | None = None
    contact_channel_address: str | None = None
    context: dict[str, Any] | None = None
    flow_version: int | None = None
    status: str | None = None
    """``active`` or ``ended``."""
    date_created: datetime | None = None
    date_updated: datetime | None = None
    initiated_by: str | None = None
    url: str | None = None
    links: dict[str, str] | None = None
