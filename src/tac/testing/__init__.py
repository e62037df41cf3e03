"""Test your agent against the local Twilio sandbox.

Enable the pytest plugin with ``pytest_plugins = ["tac.testing.plugin"]`` to get the
``sandbox``, ``sandbox_factory``, ``sandbox_settings`` and ``customer`` fixtures; or start a
sandbox yourself with ``async with Sandbox.start() as sandbox``.
"""

from tac.sandbox import (
    Customer,
    Message,
    Sandbox,
    SandboxClient,
    SandboxError,
    SandboxSettings,
    serve_app,
    twilio_http_client,
)
from tac.testing._signatures import verify_webhook

__all__ = [
    "Customer",
    "Message",
    "Sandbox",
    "SandboxClient",
    "SandboxError",
    "SandboxSettings",
    "serve_app",
    "twilio_http_client",
    "verify_webhook",
]
