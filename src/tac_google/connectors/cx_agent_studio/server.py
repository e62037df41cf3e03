"""``CXAgentStudioFastAPIServer`` at ``twilio-agent-connect-google``'s module path."""

from __future__ import annotations

from tac.server import TACFastAPIServer

__all__ = ["CXAgentStudioFastAPIServer"]


class CXAgentStudioFastAPIServer(TACFastAPIServer):
    """:class:`~tac.server.TACFastAPIServer` under the partner package's name: a
    :class:`VoiceS2SChannel` is a ``VoiceChannel``, so the server serves it as any other
    (``<Connect><Stream>`` TwiML and the Media Streams WebSocket on the voice paths)."""
