"""Test your agent against the local Twilio sandbox.

Enable the pytest plugin with ``pytest_plugins = ["tac.testing.plugin"]`` to get the
``sandbox``, ``sandbox_factory``, ``sandbox_settings``, ``customer`` and ``caller`` fixtures; or
start a sandbox yourself with ``async with Sandbox.start() as sandbox``.
"""

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

__all__ = [
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
    "verify_webhook",
]
