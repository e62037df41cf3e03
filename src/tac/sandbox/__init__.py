"""The local Twilio: Conversation Orchestrator, Memory, Knowledge, Studio, Calls and a phone.

An independent implementation of Twilio's side (it imports nothing of the SDK), faithful enough
that the official ``twilio`` library and opentac both work against it unchanged.
"""

from tac.sandbox._app import create_app
from tac.sandbox._client import SandboxClient, SandboxError
from tac.sandbox._customer import Customer, Message
from tac.sandbox._server import Sandbox, serve_app
from tac.sandbox._settings import SandboxIdentity, SandboxSettings
from tac.sandbox._twilio import twilio_http_client

__all__ = [
    "Customer",
    "Message",
    "Sandbox",
    "SandboxClient",
    "SandboxError",
    "SandboxIdentity",
    "SandboxSettings",
    "create_app",
    "serve_app",
    "twilio_http_client",
]
