"""HTTP Basic auth as Twilio does it: API key + secret, or account SID + auth token."""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import Request

from tac_sandbox._errors import TwilioError


def check_basic_auth(request: Request) -> None:
    """FastAPI dependency: 401 in Twilio's shape unless the credentials are the sandbox's."""
    identity = request.app.state.sandbox.identity
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise _unauthorized()
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _unauthorized() from exc
    pairs = ((identity.api_key, identity.api_secret), (identity.account_sid, identity.auth_token))
    for expected_user, expected_password in pairs:
        if hmac.compare_digest(user, expected_user) and hmac.compare_digest(
            password, expected_password
        ):
            return
    raise _unauthorized()


def _unauthorized() -> TwilioError:
    return TwilioError(
        401,
        "Authenticate",
        code=20003,
        headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
    )
