"""Options and results of conversations the app starts (outbound).

Voice: :class:`InitiateVoiceConversationOptions` (with :class:`CallOptions`) and
:class:`InitiateVoiceConversationResult`, defined in :mod:`tac.models.voice`.
"""

from tac.models.voice import (
    CallOptions,
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
)

__all__ = [
    "CallOptions",
    "InitiateVoiceConversationOptions",
    "InitiateVoiceConversationResult",
]
