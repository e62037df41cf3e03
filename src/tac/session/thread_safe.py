"""The reference's path of ``ThreadSafeSessionManager`` (see :mod:`tac._compat.session`)."""

from tac._compat.session import ThreadSafeSessionManager

__all__ = ["ThreadSafeSessionManager"]
