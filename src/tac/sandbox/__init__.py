"""The local Twilio: Conversation Orchestrator, Memory, Knowledge, Studio, Calls and a phone.

An independent implementation of Twilio's side (it imports nothing of the SDK), faithful enough
that the official ``twilio`` library and opentac both work against it unchanged. Names load
lazily, so the command line and the chat client do not import the server stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tac.sandbox._app import create_app
    from tac.sandbox._caller import CallEnded, Caller, CallerError, CallFailed, Reply
    from tac.sandbox._client import SandboxClient, SandboxError
    from tac.sandbox._customer import Customer, Message
    from tac.sandbox._server import Sandbox, serve_app
    from tac.sandbox._settings import SandboxIdentity, SandboxSettings
    from tac.sandbox._twilio import twilio_http_client
    from tac.sandbox._voice_call import VoiceCall, VoiceReply

_EXPORTS = {
    "CallEnded": "tac.sandbox._caller",
    "CallFailed": "tac.sandbox._caller",
    "Caller": "tac.sandbox._caller",
    "CallerError": "tac.sandbox._caller",
    "Reply": "tac.sandbox._caller",
    "VoiceCall": "tac.sandbox._voice_call",
    "VoiceReply": "tac.sandbox._voice_call",
    "Customer": "tac.sandbox._customer",
    "Message": "tac.sandbox._customer",
    "Sandbox": "tac.sandbox._server",
    "SandboxClient": "tac.sandbox._client",
    "SandboxError": "tac.sandbox._client",
    "SandboxIdentity": "tac.sandbox._settings",
    "SandboxSettings": "tac.sandbox._settings",
    "create_app": "tac.sandbox._app",
    "serve_app": "tac.sandbox._server",
    "twilio_http_client": "tac.sandbox._twilio",
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
    "VoiceCall",
    "VoiceReply",
    "create_app",
    "serve_app",
    "twilio_http_client",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tac.sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
