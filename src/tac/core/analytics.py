"""The reference's path of the analytics no-ops (see :mod:`tac._compat.analytics`)."""

from tac._compat.analytics import shutdown_analytics, track_event

__all__ = ["shutdown_analytics", "track_event"]
