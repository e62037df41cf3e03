"""The reference's path of ``SessionManager`` (see :mod:`tac._compat.session`)."""

from tac._compat.session import SessionManager

__all__ = ["SessionManager"]
