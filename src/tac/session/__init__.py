"""The reference's ``tac.session`` (see :mod:`tac._compat.session`)."""

from tac._compat.session import SessionManager, SessionState, ThreadSafeSessionManager

__all__ = ["SessionManager", "SessionState", "ThreadSafeSessionManager"]
