"""The environment a TAC app needs to run against a sandbox (``opentac sandbox --write-env``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tac_sandbox._settings import SandboxIdentity, SandboxSettings


def app_environment(settings: SandboxSettings, identity: SandboxIdentity) -> dict[str, str]:
    """Every variable a TAC app reads, pointing at this sandbox."""
    app = urlsplit(settings.app_url)
    if not app.scheme or not app.hostname:
        raise ValueError(
            f"app URL must be a full URL like http://127.0.0.1:8000, got {settings.app_url!r}"
        )
    app_port = app.port or (443 if app.scheme == "https" else 80)
    return {
        "TWILIO_ACCOUNT_SID": identity.account_sid,
        "TWILIO_AUTH_TOKEN": identity.auth_token,
        "TWILIO_API_KEY": identity.api_key,
        "TWILIO_API_SECRET": identity.api_secret,
        "TWILIO_PHONE_NUMBER": identity.phone_number,
        "TWILIO_WHATSAPP_NUMBER": identity.whatsapp_number,
        "TWILIO_RCS_SENDER_ID": identity.rcs_sender_id,
        "TWILIO_CONVERSATION_CONFIGURATION_ID": identity.conversation_configuration_id,
        "TWILIO_KNOWLEDGE_BASE_ID": identity.knowledge_base_id,
        "TWILIO_STUDIO_HANDOFF_FLOW_SID": identity.studio_flow_sid,
        "CONVERSATION_INTELLIGENCE_CONFIGURATION_ID": identity.intelligence_configuration_id,
        "TWILIO_API_BASE_URL": settings.base_url(),
        "TAC_PUBLIC_BASE_URL": settings.app_url.rstrip("/"),
        "TWILIO_VOICE_PUBLIC_DOMAIN": app.netloc,
        "TWILIO_SERVER_HOST": app.hostname,
        "TWILIO_SERVER_PORT": str(app_port),
    }


def render_env(env: dict[str, str]) -> str:
    lines = ["# Written by `opentac sandbox --write-env`: a TAC app pointed at the local sandbox."]
    lines += [f"{key}={value}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def write_env(path: str | Path, env: dict[str, str]) -> Path:
    target = Path(path)
    target.write_text(render_env(env), encoding="utf-8")
    return target
