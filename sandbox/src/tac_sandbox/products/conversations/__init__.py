"""Conversation Orchestrator v2 (``/conversations/v2/...``): configurations, conversations,
participants, communications, the ``SEND_MESSAGE`` action, status timeouts and webhooks.

State lives in SQLite as JSON documents in Twilio's wire shapes. Webhooks go out through
:class:`~tac_sandbox._webhooks.WebhookDispatcher`; other products hear the same events on the
context's bus (topics in :mod:`tac_sandbox._events`).

One module per concern: :mod:`.configurations`, :mod:`.reads`, :mod:`.participants`,
:mod:`.records` (conversations), :mod:`.communications`, :mod:`.orchestrator` (status
timeouts, the class itself), :mod:`.routes`.
"""

from tac_sandbox.products.conversations._shared import agent_address
from tac_sandbox.products.conversations.orchestrator import Orchestrator
from tac_sandbox.products.conversations.routes import install, paginate

__all__ = ["Orchestrator", "agent_address", "install", "paginate"]
