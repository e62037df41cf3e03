"""Signature validation against Twilio's published test vectors, over real HTTP routes."""

import httpx
import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tests._examples import example

from tac.server.signature import (
    build_http_signature_dependency,
    build_websocket_signature_dependency,
    public_url,
)

pytestmark = pytest.mark.unit

VECTORS = example("signature-test-vectors.json")
TOKEN = VECTORS["authToken"]


def _app(public_base_url: str | None = None) -> FastAPI:
    app = FastAPI()
    check = build_http_signature_dependency(TOKEN, public_base_url=public_base_url)
    ws_check = build_websocket_signature_dependency(TOKEN, public_base_url=public_base_url)

    @app.post("/myapp.php", dependencies=[Depends(check)])
    async def hook() -> dict[str, str]:
        return {"ok": "yes"}

    @app.websocket("/ws", dependencies=[Depends(ws_check)])
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    return app


async def _post(app: FastAPI, url: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(url, **kwargs)  # type: ignore[arg-type]


async def test_form_vector_passes_and_tampering_fails() -> None:
    vector = VECTORS["formPost"][0]
    app = _app()
    ok = await _post(
        app,
        vector["url"],
        data=vector["params"],
        headers={"X-Twilio-Signature": vector["signature"]},
    )
    assert ok.status_code == 200
    tampered = await _post(
        app,
        vector["url"],
        data={**vector["params"], "Digits": "9999"},
        headers={"X-Twilio-Signature": vector["signature"]},
    )
    assert tampered.status_code == 403
    missing = await _post(app, vector["url"], data=vector["params"])
    assert missing.status_code == 403


async def test_repeated_form_fields_are_all_signed() -> None:
    vector = VECTORS["formPost"][4]
    content = "&".join(f"{k}={v}" for k, v in vector["params"])
    response = await _post(
        _app(),
        vector["url"],
        content=content,
        headers={
            "X-Twilio-Signature": vector["signature"],
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 200


async def test_json_body_vector_and_body_hash() -> None:
    vector = VECTORS["jsonBody"][0]
    headers = {"X-Twilio-Signature": vector["signature"], "Content-Type": "application/json"}
    app = _app()
    ok = await _post(app, vector["url"], content=vector["body"], headers=headers)
    assert ok.status_code == 200
    other_body = await _post(app, vector["url"], content='{"property": "other"}', headers=headers)
    assert other_body.status_code == 403
    no_hash = vector["url"].split("&bodySHA256")[0]
    assert (await _post(app, no_hash, content=vector["body"], headers=headers)).status_code == 403


async def test_public_base_url_wins_over_forwarded_headers() -> None:
    vector = VECTORS["formPost"][0]
    app = _app(public_base_url="https://mycompany.com")
    # The request arrives on an internal address with a forged forwarded host.
    response = await _post(
        app,
        "http://10.0.0.5:8000/myapp.php?foo=1&bar=2",
        data=vector["params"],
        headers={"X-Twilio-Signature": vector["signature"], "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 200


async def test_forwarded_headers_used_without_public_base_url() -> None:
    vector = VECTORS["formPost"][0]
    response = await _post(
        _app(),
        "http://internal:8000/myapp.php?foo=1&bar=2",
        data=vector["params"],
        headers={
            "X-Twilio-Signature": vector["signature"],
            "X-Forwarded-Proto": "https, http",
            "X-Forwarded-Host": "mycompany.com",
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize("vector", VECTORS["websocketHandshake"])
def test_websocket_vectors(vector: dict[str, object]) -> None:
    url = str(vector["url"])
    params = vector.get("params") or {}
    query = "&".join(f"{k}={v}" for k, v in params.items())  # type: ignore[union-attr]
    path = "/ws" + (f"?{query}" if query else "")
    client = TestClient(_app(public_base_url="https://example.ngrok.app"))
    headers = {"X-Twilio-Signature": str(vector["signature"])}
    if "?" in url:
        path = "/ws?" + url.split("?", 1)[1]
    with client.websocket_connect(path, headers=headers) as ws:
        assert ws.receive_text() == "hello"


def test_bad_websocket_signature_closes_1008_before_accept() -> None:
    client = TestClient(_app(public_base_url="https://example.ngrok.app"))
    with (
        pytest.raises(WebSocketDisconnect) as caught,
        client.websocket_connect("/ws", headers={"X-Twilio-Signature": "forged"}),
    ):
        pass
    assert caught.value.code == 1008


def test_public_url_schemes() -> None:
    headers = {"host": "internal:8000"}
    kwargs = {"request_scheme": "http", "request_host": "internal:8000"}
    assert public_url("/ws", "", headers, websocket=True, **kwargs) == "ws://internal:8000/ws"
    assert (
        public_url("/ws", "a=1", headers, public_base_url="https://x.io", websocket=True, **kwargs)
        == "wss://x.io/ws?a=1"
    )


@pytest.mark.parametrize("signature", [None, "", "not base64!", "A" * 28, "A" * 27 + "=="])
async def test_a_missing_or_malformed_signature_is_refused_before_the_body_is_read(
    signature: str | None,
) -> None:
    app = _app()
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if signature is not None:
        headers.append((b"x-twilio-signature", signature.encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/myapp.php",
        "raw_path": b"/myapp.php",
        "query_string": b"",
        "headers": headers,
        "scheme": "https",
        "server": ("mycompany.com", 443),
        "root_path": "",
        "http_version": "1.1",
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 403
