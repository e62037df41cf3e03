"""Test your agent against the local Twilio sandbox and a scripted model.

Opt in to the pytest plugin with ``pytest_plugins = ["tac.testing.plugin"]`` to get the
``sandbox``, ``sandbox_factory``, ``sandbox_settings``, ``customer`` and ``caller`` fixtures; or
start a sandbox yourself with ``async with Sandbox.start() as sandbox``. :class:`FakeModel` is
an OpenAI-compatible model whose answers each test scripts (select it with ``OPENAI_BASE_URL``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tac.sandbox import (
        Caller,
        Customer,
        Message,
        Sandbox,
        SandboxClient,
        SandboxError,
        SandboxSettings,
        VoiceCall,
        serve_app,
        twilio_http_client,
    )
    from tac.testing._signatures import verify_webhook
    from tac.testing.fake_model import (
        FakeModel,
        FakeModelError,
        ModelRequest,
        UnconsumedModelSteps,
        UnexpectedModelRequest,
    )
    from tac.testing.fake_realtime import FakeRealtimeModel, FakeRealtimeSession

# Loaded on first use, so that ``tac.testing.plugin`` (and this package) import nothing heavy.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "Caller",
            "Customer",
            "Message",
            "Sandbox",
            "SandboxClient",
            "SandboxError",
            "SandboxSettings",
            "VoiceCall",
            "serve_app",
            "twilio_http_client",
        ],
        "tac.sandbox",
    ),
    "verify_webhook": "tac.testing._signatures",
    **dict.fromkeys(
        [
            "FakeModel",
            "FakeModelError",
            "ModelRequest",
            "UnconsumedModelSteps",
            "UnexpectedModelRequest",
        ],
        "tac.testing.fake_model",
    ),
    "FakeRealtimeModel": "tac.testing.fake_realtime",
    "FakeRealtimeSession": "tac.testing.fake_realtime",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tac.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Caller",
    "Customer",
    "FakeModel",
    "FakeModelError",
    "FakeRealtimeModel",
    "FakeRealtimeSession",
    "Message",
    "ModelRequest",
    "Sandbox",
    "SandboxClient",
    "SandboxError",
    "SandboxSettings",
    "UnconsumedModelSteps",
    "UnexpectedModelRequest",
    "VoiceCall",
    "serve_app",
    "twilio_http_client",
    "verify_webhook",
]
