"""Test your agent against the local Twilio sandbox and a scripted model.

Enable the pytest plugin with ``pytest_plugins = ["tac.testing.plugin"]`` to get the
``sandbox``, ``sandbox_factory``, ``sandbox_settings``, ``customer`` and ``caller`` fixtures; or
start a sandbox yourself with ``async with Sandbox.start() as sandbox``. :class:`FakeModel` is
an OpenAI-compatible model whose answers each test scripts (select it with ``OPENAI_BASE_URL``).
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
from tac.testing.fake_model import (
    FakeModel,
    FakeModelError,
    ModelRequest,
    UnconsumedModelSteps,
    UnexpectedModelRequest,
)
from tac.testing.fake_realtime import FakeRealtimeModel, FakeRealtimeSession

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
