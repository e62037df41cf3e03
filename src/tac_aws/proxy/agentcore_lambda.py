"""``AgentCoreLambdaProxy``: an AWS Lambda in front of a Bedrock AgentCore runtime that runs
:class:`tac_aws.server.TACAgentCoreApp` (``pip install "opentac[agentcore]"``).

Twilio cannot call AgentCore directly (SigV4), so the function takes Twilio's requests:

- ``…/twiml`` (the number's voice webhook): ConversationRelay TwiML whose WebSocket URL is a
  presigned AgentCore URL for a session named after the ``CallSid``;
- ``…/webhook`` (the Conversation Configuration's webhook): ``COMMUNICATION_CREATED`` and
  ``CONVERSATION_UPDATED`` forwarded with ``invoke_agent_runtime`` as ``{"webhook_data":
  "<the webhook JSON>", "idempotency_token": "…"}`` on the session named after the
  conversation, so a conversation stays on one microVM.

Every request's Twilio signature is checked first (403 when bad).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from tac.channels.voice.channel import InboundCallTwiMLHandler
from tac.channels.voice.conversation_relay.twiml import generate_twiml, merge_twiml_options
from tac.core._callbacks import invoke
from tac.core.logging import get_logger
from tac.models.voice import TwiMLRequest, VoiceTwiMLOptionsConversationRelay
from tac_aws.proxy.validation import TwilioSignatureValidator, event_body, event_headers, event_path

__all__ = ["AgentCoreLambdaProxy", "InboundCallTwiMLHandler"]

logger = get_logger("tac_aws.proxy")

FORWARDED_EVENTS = ("COMMUNICATION_CREATED", "CONVERSATION_UPDATED")
"""The Orchestrator events TAC acts on; others are answered ``ignored`` without a call."""

_MAX_PRESIGN_SECONDS = 300


def _response(status: int, body: Any, content_type: str = "application/json") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"statusCode": status, "headers": {"Content-Type": content_type}, "body": text}


def _matches(path: str, route: str) -> bool:
    """``route`` at the end of ``path`` (an API Gateway stage may come first) or a prefix."""
    path = path.rstrip("/") or "/"
    return path == route or path.endswith(route) or path.startswith(route + "/")


class AgentCoreLambdaProxy:
    """The Lambda handler between Twilio and an AgentCore runtime (``proxy.lambda_handler``).

    The TwiML is layered as the voice channel layers it: the proxy's defaults (the presigned
    ``websocket_url``, ``conversation_configuration``), then ``twiml_options``, then what
    :meth:`on_inbound_call_twiml`'s callback returns for the call; only fields a layer sets
    count, so a greeting never drops the presigned URL.

    Args:
        agentcore_runtime_arn: the runtime's ARN.
        conversation_configuration_id: the Conversation Configuration the calls join.
        twilio_auth_token: the auth token Twilio signs requests with.
        aws_region: the runtime's region (default: ``AWS_REGION``, else boto3's configured one).
        twiml_options: options for every call's TwiML (a model or a dict of its fields).
        public_base_url: the public URL Twilio calls, when the event's host and path are not
            it (a custom domain with a path mapping).
        agentcore_client: a boto3 ``bedrock-agentcore`` client (default: one for the region).
        runtime_client: what presigns the WebSocket URL, a
            ``bedrock_agentcore.runtime.AgentCoreRuntimeClient`` (default: one for the region).
        presign_expires: seconds the presigned URL is valid (at most 300).
        twiml_path, webhook_path: the routes (matched at the end of the path).

    Raises:
        ValueError: no region can be found, or ``presign_expires`` is out of range.
    """

    def __init__(
        self,
        agentcore_runtime_arn: str,
        conversation_configuration_id: str,
        twilio_auth_token: str,
        aws_region: str | None = None,
        twiml_options: VoiceTwiMLOptionsConversationRelay | Mapping[str, Any] | None = None,
        *,
        public_base_url: str | None = None,
        agentcore_client: Any = None,
        runtime_client: Any = None,
        presign_expires: int = _MAX_PRESIGN_SECONDS,
        twiml_path: str = "/twiml",
        webhook_path: str = "/webhook",
    ) -> None:
        if not 0 < presign_expires <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"presign_expires must be 1..{_MAX_PRESIGN_SECONDS} seconds")
        self.agentcore_runtime_arn = agentcore_runtime_arn
        self.conversation_configuration_id = conversation_configuration_id
        self.signature_validator = TwilioSignatureValidator(twilio_auth_token, public_base_url)
        if isinstance(twiml_options, Mapping):
            twiml_options = VoiceTwiMLOptionsConversationRelay.model_validate(dict(twiml_options))
        self.twiml_options = twiml_options
        self.presign_expires = presign_expires
        self.twiml_path = twiml_path
        self.webhook_path = webhook_path
        self._on_inbound_call_twiml: InboundCallTwiMLHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self.aws_region = aws_region or os.environ.get("AWS_REGION") or self._default_region()
        if not self.aws_region and (agentcore_client is None or runtime_client is None):
            raise ValueError(
                "AgentCoreLambdaProxy needs an AWS region: pass aws_region or set AWS_REGION"
            )
        if agentcore_client is None:
            import boto3  # type: ignore[import-untyped,unused-ignore]

            agentcore_client = boto3.client("bedrock-agentcore", region_name=self.aws_region)
        self.agent_core_client = agentcore_client
        if runtime_client is None:
            from bedrock_agentcore.runtime import AgentCoreRuntimeClient

            runtime_client = AgentCoreRuntimeClient(region=self.aws_region)
        self.agentcore_runtime_client = runtime_client

    @staticmethod
    def _default_region() -> str | None:
        import boto3  # type: ignore[import-untyped,unused-ignore]

        region: str | None = boto3.Session().region_name
        return region

    def on_inbound_call_twiml(self, callback: InboundCallTwiMLHandler) -> InboundCallTwiMLHandler:
        """Register ``callback(TwiMLRequest)`` → options for one call's TwiML (a model, a dict
        of its fields, or ``None``; sync or async); usable as a decorator."""
        if not callable(callback):
            raise TypeError("on_inbound_call_twiml needs a callable")
        self._on_inbound_call_twiml = callback
        return callback

    def lambda_handler(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The Lambda entry point: ``{"statusCode", "headers", "body"}`` for an HTTP event.

        Lambda calls it with no event loop running: it runs :meth:`handle` on an event loop of
        the proxy's own, kept from one invocation to the next (a new loop per call costs about
        ten times the request). Called from inside a running loop (a local ASGI runner), it runs
        on a worker thread with a loop of its own; async code should await :meth:`handle`.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            with ThreadPoolExecutor(max_workers=1) as pool:
                return pool.submit(asyncio.run, self.handle(event)).result()
        if not self._loop_lock.acquire(blocking=False):  # another thread has the loop
            return asyncio.run(self.handle(event))
        try:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(self.handle(event))
        finally:
            self._loop_lock.release()

    async def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Answer one HTTP event; AWS calls run in worker threads, off the event loop."""
        if not self.signature_validator.validate(event):
            return _response(403, {"error": "Invalid webhook signature"})
        path = event_path(event)
        try:
            if _matches(path, self.twiml_path):
                return await self._twiml(event)
            if _matches(path, self.webhook_path):
                return await self._webhook(event)
        except Exception:
            logger.exception("proxy request failed", path=path)
            return _response(500, {"error": "Internal server error"})
        return _response(404, {"error": "Not found"})

    async def build_twiml(self, twiml_request: TwiMLRequest) -> str:
        """The TwiML for one inbound call (presigns the WebSocket URL for its ``CallSid``)."""
        if not twiml_request.call_sid:
            raise ValueError("the voice webhook has no CallSid")
        url: str = await asyncio.to_thread(
            self.agentcore_runtime_client.generate_presigned_url,
            runtime_arn=self.agentcore_runtime_arn,
            session_id=twiml_request.call_sid,
            expires=self.presign_expires,
        )
        per_call = None
        if self._on_inbound_call_twiml is not None:
            per_call = await invoke(self._on_inbound_call_twiml, twiml_request)
            if isinstance(per_call, Mapping):
                per_call = VoiceTwiMLOptionsConversationRelay.model_validate(dict(per_call))
        defaults = VoiceTwiMLOptionsConversationRelay(
            websocket_url=url, conversation_configuration=self.conversation_configuration_id
        )
        return generate_twiml(options=merge_twiml_options(defaults, self.twiml_options, per_call))

    async def _twiml(self, event: Mapping[str, Any]) -> dict[str, Any]:
        raw = event_body(event)
        form = dict(parse_qsl(raw.decode("utf-8", "replace"))) if raw else {}
        try:
            twiml_request = TwiMLRequest.from_form(form)
        except ValidationError:
            return _response(400, {"error": "Invalid voice webhook"})
        if not twiml_request.call_sid:
            return _response(400, {"error": "Missing CallSid parameter"})
        return _response(200, await self.build_twiml(twiml_request), "application/xml")

    async def _webhook(self, event: Mapping[str, Any]) -> dict[str, Any]:
        raw = event_body(event)
        if raw is None:
            return _response(400, {"error": "Invalid request body encoding"})
        try:
            body = raw.decode("utf-8")
            webhook = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _response(400, {"error": "Invalid JSON payload"})
        if not isinstance(webhook, dict):
            return _response(400, {"error": "Invalid JSON payload"})
        event_type = webhook.get("eventType")
        data = webhook.get("data") or {}
        if event_type not in FORWARDED_EVENTS or not isinstance(data, dict):
            return _response(200, {"success": True, "ignored": True})
        key = "conversationId" if event_type == "COMMUNICATION_CREATED" else "id"
        conversation_id = data.get(key)
        if not isinstance(conversation_id, str) or not conversation_id:
            return _response(400, {"error": "Missing conversationId"})
        await self.forward(
            conversation_id, body, event_headers(event).get("i-twilio-idempotency-token")
        )
        return _response(200, {"success": True})

    async def forward(
        self, conversation_id: str, webhook_json: str, idempotency_token: str | None = None
    ) -> Any:
        """Send one Orchestrator webhook to the runtime session named ``conversation_id``;
        returns the runtime's answer (``TACAgentCoreApp`` answers ``{"status": …}`` once the
        event is handled), or ``None`` when it is not JSON."""
        payload = json.dumps(
            {"webhook_data": webhook_json, "idempotency_token": idempotency_token}
        ).encode()
        response = await asyncio.to_thread(
            self.agent_core_client.invoke_agent_runtime,
            agentRuntimeArn=self.agentcore_runtime_arn,
            runtimeSessionId=conversation_id,
            payload=payload,
        )
        stream = response.get("response") if isinstance(response, Mapping) else None
        if stream is None or not hasattr(stream, "read"):
            return None
        try:
            raw = await asyncio.to_thread(stream.read)
        finally:
            stream.close()
        try:
            answer = json.loads(raw)
        except ValueError:
            return None
        if isinstance(answer, dict) and answer.get("status") == "error":
            logger.warning(
                "the runtime could not handle a webhook",
                conversation_id=conversation_id,
                message=answer.get("message"),
            )
        return answer
