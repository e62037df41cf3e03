"""Async client of Studio v2 Flow Executions (human handoff) and Studio's voice webhook URL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tac.context._base import ProductClient, parse_model
from tac.context._http import TwilioHTTP, encode_path
from tac.models.studio import ExecutionResponse

__all__ = ["StudioClient"]


class StudioClient(ProductClient):
    """Starts Studio flow executions; builds the URL a voice call hands off to."""

    _product = "studio"

    def __init__(self, *, http: TwilioHTTP) -> None:
        super().__init__(http=http, api_key=None, api_secret=None, region=None)

    def executions_url(self, flow_sid: str) -> str:
        """``{studio base}/v2/Flows/{flow_sid}/Executions``."""
        return self.base_url + encode_path("/v2/Flows/{flow}/Executions", flow=flow_sid)

    async def create_execution(
        self,
        flow_sid: str,
        *,
        to: str,
        from_: str,
        parameters: Mapping[str, Any] | None = None,
    ) -> ExecutionResponse:
        """Start an execution of ``flow_sid`` for contact ``to`` from ``from_``.

        ``parameters`` are sent as Studio's ``Parameters`` (a JSON string) and appear in the
        flow as ``{{flow.data.<key>}}``. Not idempotent: retried only when surely unsent.
        """
        if not to:
            raise ValueError("to is required (the contact's address)")
        if not from_:
            raise ValueError("from_ is required (a Twilio number or Messaging Service SID)")
        form: dict[str, str] = {"To": to, "From": from_}
        if parameters is not None:
            try:
                form["Parameters"] = json.dumps(dict(parameters))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"parameters must be JSON-serialisable: {exc}") from exc
        path = encode_path("/v2/Flows/{flow}/Executions", flow=flow_sid)
        response = await self._http.request(
            self._product, "POST", path, data=form, retry="unsent_only"
        )
        return parse_model(ExecutionResponse, response)

    def voice_handoff_url(self, account_sid: str, flow_sid: str) -> str:
        """Studio's incoming-call webhook for ``flow_sid`` (for ``<Connect action>``).

        Built on the ``webhooks`` product base, so the region or ``api_base_url`` applies.
        """
        path = encode_path(
            "/v1/Accounts/{account}/Flows/{flow}", account=account_sid, flow=flow_sid
        )
        return f"{self._http.base_url('webhooks')}{path}?Trigger=incomingCall"
