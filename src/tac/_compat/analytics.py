"""The reference SDK's usage analytics, kept as names only: opentac sends no telemetry.

``track_event`` and ``shutdown_analytics`` exist so code written for the reference (its sibling
packages call them) runs unchanged; they do nothing, whatever ``TAC_ANALYTICS_DISABLED`` says.
"""

from __future__ import annotations

from typing import Any

__all__ = ["shutdown_analytics", "track_event"]


def track_event(*args: Any, **kwargs: Any) -> None:
    """Accepted and dropped: nothing is recorded or sent."""


def shutdown_analytics(*args: Any, **kwargs: Any) -> None:
    """Nothing to flush."""
