"""Voice Calls API wire models (``api.twilio.com/2010-04-01``).

A classic API: form-encoded requests, snake_case JSON responses, RFC 2822 dates.
"""

from __future__ import annotations

import email.utils
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from tac.models._base import ClassicWireModel

__all__ = ["CallResource"]


class CallResource(ClassicWireModel):
    """A call as the Calls API returns it (create, fetch, update)."""

    sid: str
    account_sid: str | None = None
    to: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to_formatted: str | None = None
    from_formatted: str | None = None
    status: str | None = None
    """``queued``, ``ringing``, ``in-progress``, ``completed``, ``busy``, ``failed``, ..."""
    direction: str | None = None
    answered_by: str | None = None
    caller_name: str | None = None
    forwarded_from: str | None = None
    parent_call_sid: str | None = None
    phone_number_sid: str | None = None
    group_sid: str | None = None
    trunk_sid: str | None = None
    api_version: str | None = None
    annotation: str | None = None
    duration: str | None = None
    """Seconds, as a string (Twilio's representation); ``None`` until the call ends."""
    price: str | None = None
    price_unit: str | None = None
    queue_time: str | None = None
    date_created: datetime | None = None
    date_updated: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    uri: str | None = None
    subresource_uris: dict[str, str] | None = None

    @field_validator("date_created", "date_updated", "start_time", "end_time", mode="before")
    @classmethod
    def _rfc2822(cls, value: Any) -> Any:
        if isinstance(value, str) and value and not value[:4].isdigit():
            try:
                return email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return value
        return value

    @field_validator("duration", "price", "queue_time", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value
