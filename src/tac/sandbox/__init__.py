"""The local Twilio sandbox, from the SDK's side: the public names of ``tac_sandbox``.

The sandbox is its own distribution (``opentac-sandbox``, import package ``tac_sandbox``,
installed by ``pip install "opentac[sandbox]"``); it imports nothing of the SDK. This module
re-exports its public names so ``from tac.sandbox import Sandbox`` and
``tac.sandbox.twilio_http_client()`` keep working. Names load lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tac_sandbox import (
        CallEnded,
        Caller,
        CallerError,
        CallFailed,
        Customer,
        Message,
        Reply,
        Sandbox,
        SandboxClient,
        SandboxError,
        SandboxIdentity,
        SandboxSettings,
        VoiceCall,
        VoiceReply,
        create_app,
        serve_app,
        twilio_http_client,
    )

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

INSTALL_HINT = 'the sandbox is not installed: pip install "opentac[sandbox]"'


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'tac.sandbox' has no attribute {name!r}")
    try:
        package = importlib.import_module("tac_sandbox")
    except ModuleNotFoundError as exc:
        if exc.name != "tac_sandbox":
            raise
        raise ModuleNotFoundError(INSTALL_HINT, name="tac_sandbox") from exc
    value = getattr(package, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
