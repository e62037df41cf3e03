"""tac_aws.proxy.AgentCoreLambdaProxy: the Lambda between Twilio and an AgentCore runtime.

The sandbox's calls and webhooks reach the proxy as Lambda Function URL events (a small
adapter turns each HTTP request into the event Lambda would pass, and calls the sync handler
in a worker thread, as Lambda does). The proxy talks to "AgentCore" with a real boto3 client
over loopback: a stand-in of the AgentCore endpoint passes ``InvokeAgentRuntime`` on to a real
``TACAgentCoreApp`` (``POST /invocations``), as the service does. The presigned WebSocket URL
is the real ``AgentCoreRuntimeClient``'s, except where a call must reach the local runtime.
"""

from __future__ import annotations

import pytest

pytest.importorskip("bedrock_agentcore", reason="needs bedrock-agentcore (opentac[agentcore])")

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tac.core.config import TACConfig
from tac.core.tac import TAC
from tac.models.voice import TwiMLRequest, VoiceTwiMLOptionsConversationRelay
from tac.sandbox import Sandbox, serve_app
from tac_aws.connectors import StrandsConnector
from tac_aws.proxy import AgentCoreLambdaProxy, TwilioSignatureValidator
from tac_aws.server import TACAgentCoreApp
from tests._ports import free_port
from tests.connectors._aws_standin import AWSStandIn, client
from tests.connectors._strands_fakes import FakeStrandsAgent, Script

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/tac_agent-AbCdEf1234"
TOKEN = "auth-token-for-tests"


def function_url_event(
    request_path: str, body: bytes, headers: dict[str, str], query: str = ""
) -> dict[str, Any]:
    """What Lambda passes for a Function URL request (payload format 2.0)."""
    binary = headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    return {
        "version": "2.0",
        "rawPath": request_path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {"http": {"method": "POST", "path": request_path}},
        # Function URLs hand some bodies over base64-encoded: the form ones here, to cover it
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
    }


def lambda_function(proxy: AgentCoreLambdaProxy) -> Starlette:
    """A Function URL in front of ``proxy.lambda_handler``."""

    async def invoke(request: Request) -> Response:
        # Function URLs say how the client came in (https there, http on loopback)
        headers = {**request.headers, "x-forwarded-proto": request.url.scheme}
        event = function_url_event(
            request.url.path, await request.body(), headers, request.url.query
        )
        result = await asyncio.to_thread(proxy.lambda_handler, event, None)
        return Response(result["body"], result["statusCode"], headers=result["headers"])

    return Starlette(routes=[Route("/{path:path}", invoke, methods=["POST"])])


def agentcore_endpoint(runtime_url: str, seen: list[tuple[str, str]]) -> Starlette:
    """The AgentCore data plane: ``InvokeAgentRuntime`` reaches the runtime's ``/invocations``."""

    async def invocations(request: Request) -> Response:
        session = request.headers["x-amzn-bedrock-agentcore-runtime-session-id"]
        seen.append((request.path_params["arn"], session))
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{runtime_url}/invocations", content=await request.body(), timeout=10
            )
        return Response(answer.content, answer.status_code, media_type="application/json")

    return Starlette(
        routes=[Route("/runtimes/{arn:path}/invocations", invocations, methods=["POST"])]
    )


@dataclass
class LocalPresigner:
    """Presigns nothing: points calls at the local runtime's ``/ws`` (AgentCore's own URL
    cannot be reached from a test)."""

    runtime_ws: str
    calls: list[dict[str, Any]] = field(default_factory=list)

    def generate_presigned_url(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        session = kwargs["session_id"]
        return f"{self.runtime_ws}/ws?X-Amzn-Bedrock-AgentCore-Runtime-Session-Id={session}"


@dataclass
class Deployment:
    sandbox: Sandbox
    proxy: AgentCoreLambdaProxy
    script: Script
    presigner: LocalPresigner
    invoked: list[tuple[str, str]]
    url: str


@pytest_asyncio.fixture
async def deployment() -> AsyncIterator[Deployment]:
    script = Script()
    invoked: list[tuple[str, str]] = []
    lambda_port, runtime_port, endpoint_port = free_port(), free_port(), free_port()
    runtime_url = f"http://127.0.0.1:{runtime_port}"
    async with Sandbox.start(app_url=f"http://127.0.0.1:{lambda_port}") as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        connector = StrandsConnector(tac, lambda session: FakeStrandsAgent(script, [], "Be brief."))
        runtime = TACAgentCoreApp(
            tac,
            voice_channel=connector.voice,
            messaging_channels=connector.channels.messaging,
            welcome_message="Hi, this is Acme.",
        )
        presigner = LocalPresigner(f"ws://127.0.0.1:{runtime_port}")
        proxy = AgentCoreLambdaProxy(
            agentcore_runtime_arn=ARN,
            conversation_configuration_id=tac.config.conversation_configuration_id or "",
            twilio_auth_token=sandbox.env["TWILIO_AUTH_TOKEN"],
            aws_region="us-east-1",
            agentcore_client=client("bedrock-agentcore", f"http://127.0.0.1:{endpoint_port}"),
            runtime_client=presigner,
        )
        async with (
            serve_app(runtime.app, port=runtime_port),
            serve_app(agentcore_endpoint(runtime_url, invoked), port=endpoint_port),
            serve_app(lambda_function(proxy), port=lambda_port),
        ):
            yield Deployment(
                sandbox, proxy, script, presigner, invoked, f"http://127.0.0.1:{lambda_port}"
            )


@pytest.mark.integration
async def test_messages_reach_the_runtime_through_the_lambda(deployment: Deployment) -> None:
    deployment.script.reply("A17 ships Monday.")
    customer = deployment.sandbox.customer("sms")
    assert (await customer.ask("Where is A17?")).text == "A17 ships Monday."
    assert deployment.script.calls[0].texts() == [("user", "Where is A17?")]
    # one runtime session per conversation: the ARN and the conversation id, as boto3 sent them
    assert deployment.invoked
    arns, sessions = {a for a, _ in deployment.invoked}, {s for _, s in deployment.invoked}
    assert arns == {ARN}
    assert len(sessions) == 1
    assert next(iter(sessions)).startswith("conv_")


@pytest.mark.integration
async def test_a_call_gets_the_presigned_runtime_websocket(deployment: Deployment) -> None:
    deployment.script.reply("It ships on Monday.")
    async with deployment.sandbox.caller() as caller:
        await caller.dial()
        assert (await caller.next_reply(timeout=5)).text == "Hi, this is Acme."
        assert (await caller.ask("When does it ship?", timeout=5)).text == "It ships on Monday."
        await caller.hang_up()
        call_sid = caller.call_sid
    assert deployment.presigner.calls == [
        {"runtime_arn": ARN, "session_id": call_sid, "expires": 300}
    ]
    assert deployment.script.calls[0].texts()[-1] == ("user", "When does it ship?")


@pytest.mark.integration
async def test_unsigned_requests_are_refused(deployment: Deployment) -> None:
    url = deployment.url
    async with httpx.AsyncClient() as http:
        twiml = await http.post(f"{url}/twiml", data={"CallSid": "CA1"})
        webhook = await http.post(
            f"{url}/webhook?bodySHA256=00",
            content=b"{}",
            headers={"X-Twilio-Signature": "x" * 27 + "="},
        )
    assert twiml.status_code == 403
    assert webhook.status_code == 403
    assert twiml.json() == {"error": "Invalid webhook signature"}
    assert deployment.invoked == []
    assert deployment.presigner.calls == []


# -- the handler on its own: events as API Gateway and Function URLs hand them over ----------


def signed_form_event(
    path: str, fields: dict[str, str], *, host: str = "abc.lambda-url.us-east-1.on.aws"
) -> dict[str, Any]:
    body = urlencode(fields).encode()
    signature = RequestValidator(TOKEN).compute_signature(f"https://{host}{path}", fields)
    headers = {
        "host": host,
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signature,
    }
    return function_url_event(path, body, headers)


def signed_json_event(payload: dict[str, Any], *, token: str | None = "idem-1") -> dict[str, Any]:
    host = "abc.lambda-url.us-east-1.on.aws"
    body = json.dumps(payload).encode()
    query = f"bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = RequestValidator(TOKEN).compute_signature(f"https://{host}/webhook?{query}", {})
    headers = {"host": host, "content-type": "application/json", "x-twilio-signature": signature}
    if token:
        headers["i-twilio-idempotency-token"] = token
    return function_url_event("/webhook", body, headers, query)


@pytest_asyncio.fixture
async def aws() -> AsyncIterator[tuple[AWSStandIn, str]]:
    stand_in = AWSStandIn()
    async with serve_app(stand_in.app) as url:
        yield stand_in, url


def make_proxy(
    aws: tuple[AWSStandIn, str], monkeypatch: pytest.MonkeyPatch, **options: Any
) -> AgentCoreLambdaProxy:
    # the real presigner signs locally with these credentials
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    return AgentCoreLambdaProxy(
        ARN,
        "conv_configuration_1",
        TOKEN,
        aws_region="us-east-1",
        agentcore_client=client("bedrock-agentcore", aws[1]),
        **options,
    )


@pytest.mark.integration
async def test_twiml_layers_defaults_options_and_the_per_call_hook(
    aws: tuple[AWSStandIn, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = make_proxy(
        aws, monkeypatch, twiml_options={"welcome_greeting": "Hi!", "voice": "Joanna"}
    )
    seen: list[TwiMLRequest] = []

    @proxy.on_inbound_call_twiml
    async def by_country(request: TwiMLRequest) -> VoiceTwiMLOptionsConversationRelay:
        seen.append(request)
        return VoiceTwiMLOptionsConversationRelay(language="es-MX", welcome_greeting="¡Hola!")

    event = signed_form_event(
        "/twiml", {"CallSid": "CA" + "1" * 32, "CallerCountry": "MX", "ToCity": ""}
    )
    answer = proxy.lambda_handler(event, None)  # as Lambda calls it: no loop running
    assert answer["statusCode"] == 200, answer
    assert answer["headers"] == {"Content-Type": "application/xml"}
    twiml = answer["body"]
    assert 'welcomeGreeting="¡Hola!"' in twiml
    assert 'voice="Joanna"' in twiml
    assert 'language="es-MX"' in twiml
    assert 'conversationConfiguration="conv_configuration_1"' in twiml
    url = twiml.split('url="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("wss", "bedrock-agentcore.us-east-1.amazonaws.com")
    assert parts.path.endswith("/ws")
    query = parse_qs(parts.query)
    assert query["X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"] == ["CA" + "1" * 32]
    assert query["X-Amz-Expires"] == ["300"]
    assert "X-Amz-Signature" in query
    assert seen[0].caller_country == "MX"


@pytest.mark.integration
async def test_webhooks_are_forwarded_by_conversation(
    aws: tuple[AWSStandIn, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = make_proxy(aws, monkeypatch)
    created = {"eventType": "COMMUNICATION_CREATED", "data": {"conversationId": "conv_" + "a" * 30}}
    updated = {
        "eventType": "CONVERSATION_UPDATED",
        "data": {"id": "conv_" + "b" * 30, "status": "CLOSED"},
    }
    for payload in (created, updated):
        answer = await proxy.handle(signed_json_event(payload))  # the async path
        assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"success": True})
    sessions = [session for session, _ in aws[0].runtime_requests]
    assert sessions == ["conv_" + "a" * 30, "conv_" + "b" * 30]
    body = aws[0].runtime_requests[0][1]
    assert json.loads(body["webhook_data"]) == created
    assert body["idempotency_token"] == "idem-1"

    ignored = proxy.lambda_handler(
        signed_json_event({"eventType": "PARTICIPANT_ADDED", "data": {}})
    )
    assert json.loads(ignored["body"]) == {"success": True, "ignored": True}
    missing = proxy.lambda_handler(
        signed_json_event({"eventType": "CONVERSATION_UPDATED", "data": {}})
    )
    assert (missing["statusCode"], json.loads(missing["body"])) == (
        400,
        {"error": "Missing conversationId"},
    )
    assert len(aws[0].runtime_requests) == 2


@pytest.mark.integration
async def test_errors_are_answered_plainly(
    aws: tuple[AWSStandIn, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = make_proxy(aws, monkeypatch)
    no_call_sid = proxy.lambda_handler(signed_form_event("/twiml", {"From": "+15550001111"}))
    assert (no_call_sid["statusCode"], json.loads(no_call_sid["body"])) == (
        400,
        {"error": "Missing CallSid parameter"},
    )
    elsewhere = proxy.lambda_handler(signed_form_event("/other", {"CallSid": "CA1"}))
    assert elsewhere["statusCode"] == 404
    tampered = signed_form_event("/twiml", {"CallSid": "CA1"})
    tampered["body"] = base64.b64encode(b"CallSid=CA2").decode()
    assert proxy.lambda_handler(tampered)["statusCode"] == 403
    del tampered["headers"]["x-twilio-signature"]
    assert proxy.lambda_handler(tampered)["statusCode"] == 403
    assert aws[0].runtime_requests == []


@pytest.mark.unit
def test_validator_reads_rest_api_events_with_a_stage() -> None:
    """API Gateway REST APIs (payload 1.0): the signed URL keeps the stage, which
    ``requestContext.path`` has and ``path`` does not; mixed-case headers; the query string
    as parameters."""
    host = "abc123.execute-api.us-east-1.amazonaws.com"
    fields = {"CallSid": "CA1", "From": "+15550001111", "Blank": ""}
    signed = f"https://{host}/prod/twiml?tenant=acme"
    event = {
        "resource": "/twiml",
        "path": "/twiml",
        "httpMethod": "POST",
        "headers": {
            "Host": host,
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(signed, fields),
        },
        "multiValueQueryStringParameters": {"tenant": ["acme"]},
        "queryStringParameters": {"tenant": "acme"},
        "requestContext": {"path": "/prod/twiml", "stage": "prod"},
        "body": urlencode(fields),
        "isBase64Encoded": False,
    }
    validator = TwilioSignatureValidator(TOKEN)
    assert validator.request_url(event) == signed
    assert validator.validate(event)
    assert not TwilioSignatureValidator("another-token").validate(event)
    # a custom domain: the URL Twilio called is configured, the event's path appended
    mapped = TwilioSignatureValidator(TOKEN, public_base_url="https://voice.example.com/")
    assert mapped.request_url(event) == "https://voice.example.com/prod/twiml?tenant=acme"


@pytest.mark.unit
def test_proxy_arguments_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="presign_expires"):
        AgentCoreLambdaProxy(ARN, "conv_configuration_1", TOKEN, "us-east-1", presign_expires=301)
    with pytest.raises(ValueError, match="auth token"):
        TwilioSignatureValidator("")


@pytest.mark.unit
def test_lambda_invocations_share_one_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Lambda calls it (no loop running): one loop, kept across invocations."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    proxy = AgentCoreLambdaProxy(ARN, "conv_configuration_1", TOKEN, "us-east-1")
    ignored = signed_json_event({"eventType": "PARTICIPANT_ADDED", "data": {}})
    loops = []
    for _ in range(2):
        assert json.loads(proxy.lambda_handler(ignored)["body"])["ignored"] is True
        loops.append(proxy._loop)
    assert loops[0] is not None
    assert loops[0] is loops[1]
