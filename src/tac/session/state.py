"""The reference's path of ``SessionState`` (see :mod:`tac._compat.session`)."""

from tac._compat.session import TASK_CANCELLATION_TIMEOUT, SessionState

__all__ = ["TASK_CANCELLATION_TIMEOUT", "SessionState"]
