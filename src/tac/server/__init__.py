"""The FastAPI server and Twilio signature validation (needs ``pip install "opentac[server]"``)."""

try:
    from tac.server.config import TACServerConfig
    from tac.server.fastapi_server import TACFastAPIServer
    from tac.server.signature import (
        build_http_signature_dependency,
        build_websocket_signature_dependency,
        validate_twilio_webhook,
    )
    from tac.server.websocket_adapter import FastAPIWebSocketAdapter
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    if exc.name in {"fastapi", "starlette", "uvicorn"}:
        raise ImportError(
            'tac.server needs the server extra: pip install "opentac[server]"'
        ) from exc
    raise

__all__ = [
    "FastAPIWebSocketAdapter",
    "TACFastAPIServer",
    "TACServerConfig",
    "build_http_signature_dependency",
    "build_websocket_signature_dependency",
    "validate_twilio_webhook",
]
