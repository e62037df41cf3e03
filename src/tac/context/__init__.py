"""Async clients of Twilio's REST products over one pooled HTTP client per TAC instance.

Build one :class:`TwilioHTTP` and pass it to every client::

    http = TwilioHTTP(api_key=..., api_secret=..., account_sid=..., region=None)
    conversations = ConversationClient(http=http, configuration_id=...)
    memory = MemoryClient(http=http, resolve_store_id=...)
    ...
    await http.aclose()

Errors form one tree rooted at :class:`TACError` (see :mod:`tac.context.errors`).
"""

from tac.context._http import RetryPolicy, TwilioHTTP
from tac.context.calls import CallsClient
from tac.context.conversation import ConversationClient
from tac.context.errors import (
    AuthenticationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TACError,
    TwilioAPIError,
    TwilioTimeoutError,
    TwilioTransportError,
    outcome_uncertain,
)
from tac.context.knowledge import KnowledgeClient
from tac.context.memory import MemoryClient
from tac.context.studio import StudioClient

__all__ = [
    "AuthenticationError",
    "CallsClient",
    "ConflictError",
    "ConversationClient",
    "InvalidResponseError",
    "KnowledgeClient",
    "MemoryClient",
    "NotFoundError",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "StudioClient",
    "TACError",
    "TwilioAPIError",
    "TwilioHTTP",
    "TwilioTimeoutError",
    "TwilioTransportError",
    "outcome_uncertain",
]
