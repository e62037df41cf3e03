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
        "CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID": identity.intelligence_summary_operator_id,
        "TWILIO_API_BASE_URL": settings.base_url(),
        "TAC_PUBLIC_BASE_URL": settings.app_url.rstrip("/"),
        "TWILIO_VOICE_PUBLIC_DOMAIN": app.netloc,
        "TWILIO_SERVER_HOST": app.hostname,
        "TWILIO_SERVER_PORT": str(app_port),
    }


HEADER = "# Written by `opentac sandbox --write-env`: a TAC app pointed at the local sandbox."


def render_env(env: dict[str, str]) -> str:
    lines = [HEADER]
    lines += [f"{key}={value}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def merge_env(existing: str, env: dict[str, str]) -> str:
    """``existing`` (a ``.env`` file's text) with the sandbox's keys set to ``env``.

    Every other line (comments, blank lines, the app's own keys such as ``OPENAI_API_KEY``)
    stays as it was; a sandbox key already present is updated where it stands (a later
    duplicate is dropped), and missing ones are appended under the usual header.
    """
    pending = dict(env)
    out: list[str] = []
    for line in existing.splitlines():
        key = _key_of(line)
        if key in env:
            if key in pending:
                prefix = "export " if line.lstrip().startswith("export ") else ""
                out.append(f"{prefix}{key}={pending.pop(key)}")
            continue
        out.append(line)
    if pending:
        if out and out[-1].strip():
            out.append("")
        if HEADER not in out:
            out.append(HEADER)
        out += [f"{key}={value}" for key, value in pending.items()]
    return "\n".join(out) + "\n"


def _key_of(line: str) -> str | None:
    text = line.strip()
    if not text or text.startswith("#") or "=" not in text:
        return None
    return text.removeprefix("export ").split("=", 1)[0].strip()


def write_env(path: str | Path, env: dict[str, str]) -> Path:
    """Write ``env`` to ``path``, keeping what an existing file holds besides these keys."""
    target = Path(path)
    existing = target.read_text(encoding="utf-8") if target.exists() else ""
    target.write_text(merge_env(existing, env) if existing else render_env(env), encoding="utf-8")
    return target
