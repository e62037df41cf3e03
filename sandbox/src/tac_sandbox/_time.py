"""Timestamps in the formats Twilio's JSON APIs use."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(at: float) -> str:
    """``2026-01-06T18:30:01Z`` (resources' ``createdAt``/``updatedAt``)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(at: float) -> str:
    """``2026-01-06T18:30:01.512Z`` (webhook envelopes' ``timestamp``)."""
    moment = datetime.fromtimestamp(at, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
