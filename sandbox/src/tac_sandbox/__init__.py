"""The local Twilio: Conversation Orchestrator, Memory, Knowledge, Studio, Calls and a phone.

An independent implementation of Twilio's side (it imports nothing of the SDK), faithful enough
that the official ``twilio`` library, opentac and the reference SDK work against it unchanged.
Names load lazily, so the command line and the chat client do not import the server stack.

Layout: :mod:`tac_sandbox.products` (one module or package per Twilio product, each with
``install(ctx)``), :mod:`tac_sandbox.phone` (who calls and texts the app), and here the runner
(``_app``: the ASGI app; ``_server``: :class:`Sandbox`; ``cli``; ``_client``: the control
client) with what everything shares (``_context`` and its typed ``products``, ``_db``,
``_webhooks``, ``_http``, ``_errors``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tac_sandbox._app import create_app
    from tac_sandbox._client import SandboxClient, SandboxError
    from tac_sandbox._server import Sandbox, serve_app
    from tac_sandbox._settings import SandboxIdentity, SandboxSettings
    from tac_sandbox._twilio import twilio_http_client
    from tac_sandbox.phone.call import VoiceCall, VoiceReply
    from tac_sandbox.phone.caller import CallEnded, Caller, CallerError, CallFailed, Reply
    from tac_sandbox.phone.customers import Customer, Message
    from tac_sandbox.phone.stream_caller import StreamCaller, StreamCallFailed

_EXPORTS = {
    "CallEnded": "tac_sandbox.phone.caller",
    "CallFailed": "tac_sandbox.phone.caller",
    "Caller": "tac_sandbox.phone.caller",
    "CallerError": "tac_sandbox.phone.caller",
    "Reply": "tac_sandbox.phone.caller",
    "VoiceCall": "tac_sandbox.phone.call",
    "VoiceReply": "tac_sandbox.phone.call",
    "Customer": "tac_sandbox.phone.customers",
    "Message": "tac_sandbox.phone.customers",
    "Sandbox": "tac_sandbox._server",
    "SandboxClient": "tac_sandbox._client",
    "SandboxError": "tac_sandbox._client",
    "SandboxIdentity": "tac_sandbox._settings",
    "SandboxSettings": "tac_sandbox._settings",
    "StreamCallFailed": "tac_sandbox.phone.stream_caller",
    "StreamCaller": "tac_sandbox.phone.stream_caller",
    "create_app": "tac_sandbox._app",
    "serve_app": "tac_sandbox._server",
    "twilio_http_client": "tac_sandbox._twilio",
}

__all__ = [
    "CallEnded",
    "CallFailed",
    "Caller",
    "CallerError",
    "Customer",
    "Message",
    "Reply",
    "Sandbox",
    "SandboxClient",
    "SandboxError",
    "SandboxIdentity",
    "SandboxSettings",
    "StreamCallFailed",
    "StreamCaller",
    "VoiceCall",
    "VoiceReply",
    "create_app",
    "serve_app",
    "twilio_http_client",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tac_sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
