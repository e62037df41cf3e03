"""The reference's import path of the signature checks (see :mod:`tac.server.signature`)."""

from tac.server.signature import (
    build_http_signature_dependency,
    build_websocket_signature_dependency,
    validate_twilio_webhook,
)

__all__ = [
    "build_http_signature_dependency",
    "build_websocket_signature_dependency",
    "validate_twilio_webhook",
]
