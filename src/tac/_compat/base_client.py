"""``BaseAPIClient``: the reference SDK's base for a client of one Twilio product.

For code written against the reference that subclasses it (a client of a product opentac does
not wrap, say). opentac's own clients send through :class:`tac.context.TwilioHTTP` instead.
The reference's ``_get_client()`` built a new HTTP client, with a new connection pool, for each
request; here every client it returns shares one pooled transport, so the usual
``async with self._get_client() as client:`` reuses connections, and closing that client leaves
the pool open.
"""

from __future__ import annotations

import httpx

from tac.context._http import user_agent
from tac.context._transport import AiohttpTransport
from tac.core.partner import PartnerConnector

__all__ = ["BaseAPIClient"]

_TIMEOUT = httpx.Timeout(30.0)


class _Shared(httpx.AsyncBaseTransport):
    """A pooled transport that outlives the short-lived clients built over it."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Closing one client does not close the pool: :meth:`BaseAPIClient.aclose` does."""


class BaseAPIClient:
    """API key auth, the product's base URL, the User-Agent, and an HTTP client per call.

    Args:
        api_key: API key SID (or Account SID). ``api_secret``: its secret (or Auth Token).
        region: a Twilio region (``ie1``, ``au1``, …); hosts become
            ``{product}.{region}.twilio.com``.
    """

    def __init__(self, api_key: str, api_secret: str, region: str | None = None) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.region = region
        self._partner_connector: PartnerConnector | None = None
        self._partner_package_version: str | None = None
        self._transport: _Shared | None = None

    @staticmethod
    def _build_base_url(product: str, region: str | None) -> str:
        """``https://{product}[.{region}].twilio.com``."""
        return (
            f"https://{product}.{region}.twilio.com" if region else f"https://{product}.twilio.com"
        )

    def _set_partner_connector(self, connector: PartnerConnector, package_version: str) -> None:
        """Name a partner connector package in the User-Agent."""
        if not isinstance(connector, PartnerConnector):
            raise TypeError(f"connector must be a PartnerConnector, got {type(connector).__name__}")
        self._partner_connector = connector
        self._partner_package_version = package_version

    def _get_user_agent(self) -> str:
        suffix = None
        if self._partner_connector is not None and self._partner_package_version:
            connector = self._partner_connector
            suffix = (
                f"{connector.package_name}/{self._partner_package_version}"
                f" ({connector.connector_name})"
            )
        return user_agent(suffix)

    def _get_client(self) -> httpx.AsyncClient:
        """A client with this object's auth and User-Agent, over the shared connection pool."""
        if self._transport is None:
            self._transport = _Shared()
        return httpx.AsyncClient(
            auth=(self.api_key, self.api_secret),
            headers={"User-Agent": self._get_user_agent()},
            timeout=_TIMEOUT,
            follow_redirects=True,
            transport=self._transport,
        )

    async def aclose(self) -> None:
        """Close the shared connection pool (a later ``_get_client()`` opens a new one)."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.inner.aclose()
