"""Everything that exists only so code written for the reference SDK keeps working.

The reference (``twilio-agent-connect`` 2.5.0) has names and modules that opentac does not need
for itself. They live here, in one place, and are re-exported at the reference's import paths:

* :mod:`tac._compat.aliases`: deprecated names (``TwiMLOptions``) and the warning for
  parameters and attributes that are accepted but do nothing (``dedup_capacity``,
  ``ConversationSession.cached_memory``/``cache_lock``).
* :mod:`tac._compat.session`: ``tac.session`` (``SessionManager``, ``SessionState``,
  ``ThreadSafeSessionManager``), which partner connectors import.
* :mod:`tac._compat.websocket`: ``tac.channels.websocket_manager.WebSocketManager``.
* :mod:`tac._compat.websocket_protocol`: ``tac.channels.websocket_protocol`` (the WebSocket
  shape ``FastAPIWebSocketAdapter`` offers).
* :mod:`tac._compat.analytics`: ``tac.core.analytics``'s ``track_event`` and
  ``shutdown_analytics``, which do nothing (opentac sends no telemetry).
* :mod:`tac._compat.twiml`: ``TwiMLBuilderBase`` and ``TwiMLBuilderConversationRelay``.
* :mod:`tac._compat.base_client`: ``tac.context.base.BaseAPIClient``.
* :mod:`tac._compat.signature_validation`: ``tac.server.signature_validation``.

``docs/compatibility.md`` lists every path; ``tests/unit/test_reference_modules.py`` imports
every public module of the reference wheel against opentac.
"""

from tac._compat.aliases import deprecated_attribute, warn_inert

__all__ = ["deprecated_attribute", "warn_inert"]
