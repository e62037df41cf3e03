"""Moved to :mod:`tac.context._transport`; kept while the sandbox still imports it from here."""

from tac.context._transport import AiohttpTransport

__all__ = ["AiohttpTransport"]
