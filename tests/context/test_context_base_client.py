"""``tac.context.base.BaseAPIClient``: the reference's base class, over one pooled transport."""

from __future__ import annotations

import asyncio
import base64

import pytest

from tac.context.base import BaseAPIClient, PartnerConnector

pytestmark = pytest.mark.integration


class WidgetsClient(BaseAPIClient):
    """What code written for the reference does: one short-lived client per request."""

    def __init__(self, base_url: str) -> None:
        super().__init__("SKwidgets", "secret")
        self.base_url = base_url

    async def widget(self, widget_id: str) -> bytes:
        async with self._get_client() as client:
            response = await client.get(f"{self.base_url}/v1/Widgets/{widget_id}")
            response.raise_for_status()
            return response.content


async def test_clients_share_one_pool_and_carry_auth_and_user_agent() -> None:
    connections = 0
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    widgets = WidgetsClient(f"http://127.0.0.1:{port}")
    widgets._set_partner_connector(PartnerConnector.AWS_STRANDS, "1.2.3")
    async with server:
        assert [await widgets.widget(str(i)) for i in range(3)] == [b"ok"] * 3
        assert connections == 1  # three clients, one kept-alive connection
        await widgets.aclose()
        assert await widgets.widget("after-close") == b"ok"  # a new pool opens
        await widgets.aclose()
    head = heads[0].decode().lower()
    credentials = base64.b64encode(b"SKwidgets:secret").decode().lower()
    assert f"authorization: basic {credentials}" in head
    assert "user-agent: opentac/" in head
    assert "tac-aws/1.2.3 (strandsconnector)" in head


def test_base_urls_and_partner_type_check() -> None:
    assert BaseAPIClient._build_base_url("memory", None) == "https://memory.twilio.com"
    assert BaseAPIClient._build_base_url("memory", "ie1") == "https://memory.ie1.twilio.com"
    with pytest.raises(TypeError, match="PartnerConnector"):
        BaseAPIClient("SK1", "s")._set_partner_connector("tac-aws", "1.0")  # type: ignore[arg-type]
