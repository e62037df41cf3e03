"""Async client of the Voice Calls API (``api.twilio.com/2010-04-01``), over httpx.

Replaces the synchronous ``twilio`` SDK on the event loop, and honours the region and
``api_base_url`` like every other product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tac.context._base import ProductClient, parse_model
from tac.context._http import TwilioHTTP, encode_path
from tac.models.calls import CallResource

__all__ = ["CallsClient", "to_form_params"]

_MAX_TWIML = 4000


def _param_name(name: str) -> str:
    """``status_callback_event`` → ``StatusCallbackEvent``; ``StatusCallback`` stays as is."""
    if name[:1].isupper():
        return name
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _form_value(name: str, value: Any) -> str | list[str]:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scalar(name, item) for item in value]
    raise TypeError(f"{name}: unsupported value type {type(value).__name__}")


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"{name}: unsupported list item type {type(value).__name__}")


def to_form_params(fields: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Twilio form parameters from Python keywords.

    snake_case names become Twilio's CamelCase (``status_callback_event`` →
    ``StatusCallbackEvent``), booleans ``"true"``/``"false"``, lists repeated fields;
    ``None`` values are left out.
    """
    form: dict[str, str | list[str]] = {}
    for name, value in fields.items():
        if value is None:
            continue
        wire = _param_name(name)
        if not wire:
            raise ValueError(f"invalid parameter name {name!r}")
        form[wire] = _form_value(name, value)
    return form


class CallsClient(ProductClient):
    """Places, updates and ends calls of one account (``account_sid``, default the transport's).

    A missing account is reported when a call is made, not at construction.
    """

    _product = "api"

    def __init__(self, *, http: TwilioHTTP, account_sid: str | None = None) -> None:
        super().__init__(http=http, api_key=None, api_secret=None, region=None)
        self.account_sid = account_sid or http.account_sid

    def _calls_path(self, call_sid: str | None = None) -> str:
        if not self.account_sid:
            raise ValueError(
                "account_sid is required for the Calls API "
                "(pass it to CallsClient or TwilioHTTP; TWILIO_ACCOUNT_SID)"
            )
        if call_sid is None:
            return encode_path(
                "/2010-04-01/Accounts/{account}/Calls.json", account=self.account_sid
            )
        return encode_path(
            "/2010-04-01/Accounts/{account}/Calls/{call}.json",
            account=self.account_sid,
            call=call_sid,
        )

    async def create_call(
        self,
        to: str,
        from_: str,
        *,
        twiml: str | None = None,
        url: str | None = None,
        **options: Any,
    ) -> CallResource:
        """Place a call answered by ``twiml`` (inline) or ``url`` (a TwiML webhook).

        ``options`` are any Calls API parameters in snake_case or Twilio's CamelCase:
        ``status_callback``, ``status_callback_event=["initiated", "completed"]`` (repeated),
        ``machine_detection="Enable"``, ``async_amd=True``, ``timeout=30``, ``record=True``, …
        Not idempotent: retried only when the request surely did not reach Twilio.
        """
        if not to:
            raise ValueError("to is required")
        if not from_:
            raise ValueError("from_ is required")
        application_sid = options.get("application_sid") or options.get("ApplicationSid")
        given = [name for name, v in (("twiml", twiml), ("url", url)) if v is not None]
        if application_sid:
            given.append("application_sid")
        if len(given) != 1:
            raise ValueError(
                f"create_call needs exactly one of twiml, url or application_sid, got {given}"
            )
        if twiml is not None and len(twiml) > _MAX_TWIML:
            raise ValueError(f"twiml must be at most {_MAX_TWIML} characters, got {len(twiml)}")
        form: dict[str, str | list[str]] = {"To": to, "From": from_}
        if twiml is not None:
            form["Twiml"] = twiml
        if url is not None:
            form["Url"] = url
        extra = to_form_params(options)
        clash = sorted(set(extra) & {"To", "From", "Twiml", "Url"})
        if clash:
            raise ValueError(f"pass {clash} as arguments, not as options")
        form.update(extra)
        response = await self._http.request(
            self._product, "POST", self._calls_path(), data=form, retry="unsent_only"
        )
        return parse_model(CallResource, response)

    async def get_call(self, call_sid: str) -> CallResource:
        """Fetch a call."""
        response = await self._http.request(self._product, "GET", self._calls_path(call_sid))
        return parse_model(CallResource, response)

    async def update_call(self, call_sid: str, **fields: Any) -> CallResource:
        """Update a live call (``status="completed"``, ``twiml=...``, ``url=...``, …)."""
        form = to_form_params(fields)
        if not form:
            raise ValueError("update_call needs at least one field")
        response = await self._http.request(
            self._product, "POST", self._calls_path(call_sid), data=form
        )
        return parse_model(CallResource, response)

    async def end_call(self, call_sid: str) -> CallResource:
        """Hang up a call (``Status=completed``)."""
        return await self.update_call(call_sid, status="completed")
