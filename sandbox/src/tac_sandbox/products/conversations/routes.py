"""The Orchestrator's API routes (``/conversations/v2``), pagination, and its control API."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from tac_sandbox._context import SandboxContext
from tac_sandbox._errors import bad_request
from tac_sandbox._settings import SandboxSettings
from tac_sandbox._webhooks import DeliveryPolicy, WebhookDispatcher, control_router
from tac_sandbox.products._orchestrator_models import (
    ActionIn,
    CommunicationIn,
    ConfigurationIn,
    ConversationCreateIn,
    ConversationPatchIn,
    ConversationUpdateIn,
    ParticipantIn,
    ParticipantReplaceIn,
)
from tac_sandbox.products.conversations._shared import (
    PRODUCT,
    STATUSES,
)
from tac_sandbox.products.conversations.orchestrator import Orchestrator


def paginate(request: Request, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Twilio's token pagination: ``pageSize`` (1..1000, default 50) and ``pageToken``."""
    params = request.query_params
    raw_size = params.get("pageSize") or params.get("PageSize") or "50"
    try:
        size = int(raw_size)
    except ValueError:
        size = 0
    if not 1 <= size <= 1000:
        raise bad_request(f"Invalid request: pageSize: must be 1..1000, got {raw_size!r}")
    token = params.get("pageToken") or params.get("PageToken")
    offset = _decode_token(token) if token else 0
    page = items[offset : offset + size]
    meta: dict[str, Any] = {"key": key, "pageSize": len(page)}  # the number returned
    if offset + size < len(items):
        meta["nextToken"] = _encode_token(offset + size)
    if offset > 0:
        meta["previousToken"] = _encode_token(max(offset - size, 0))
    return {key: page, "meta": meta}


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "offset":
            raise ValueError(text)
        return max(int(number), 0)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request("Invalid request: pageToken: not a token this API issued") from exc


def install(ctx: SandboxContext) -> None:
    """Mount Conversation Orchestrator v2 under ``/conversations`` and its control API."""
    settings = ctx.settings
    webhooks = ctx.products.webhooks
    if webhooks is None:
        webhooks = WebhookDispatcher(
            ctx.identity.auth_token,
            DeliveryPolicy(
                attempts=settings.webhook_attempts,
                base_delay_seconds=settings.webhook_base_delay_seconds,
                timeout_seconds=settings.webhook_timeout_seconds,
            ),
        )
        ctx.products.webhooks = webhooks
        ctx.add_control(control_router(webhooks))
        ctx.on_shutdown(webhooks.close)
    orchestrator = Orchestrator(ctx, webhooks)
    orchestrator.ensure_default_configuration()
    ctx.products.conversations = orchestrator
    ctx.on_startup(orchestrator.start)
    ctx.on_shutdown(orchestrator.stop)
    ctx.on_reset(orchestrator.reset)
    ctx.add_product(PRODUCT, _router(orchestrator))
    ctx.add_control(_control(orchestrator))

    from tac_sandbox.phone.customers import control_router as customer_router

    ctx.add_control(customer_router(orchestrator))


def _router(orc: Orchestrator) -> APIRouter:
    router = APIRouter(prefix="/v2")

    # Configurations (control plane): writes answer 202 with an already-completed operation.

    @router.get("/ControlPlane/Configurations")
    async def list_configurations(request: Request) -> dict[str, Any]:
        store = request.query_params.get("memoryStoreId")
        return paginate(request, "configurations", orc.configurations(store))

    @router.post("/ControlPlane/Configurations")
    async def create_configuration(request: Request, body: ConfigurationIn) -> Response:
        key = request.headers.get("idempotency-key")
        replay = orc.replay(key, "create")
        if replay is not None:
            return replay
        doc = orc.write_configuration(None, body, mode="create")
        return _accepted(orc, request, key, "create", doc["id"])

    @router.get("/ControlPlane/Configurations/{configuration_id}")
    async def get_configuration(configuration_id: str) -> dict[str, Any]:
        return orc.configuration(configuration_id)

    def update(mode: str) -> Any:
        async def update_configuration(
            configuration_id: str, request: Request, body: ConfigurationIn
        ) -> Response:
            key = request.headers.get("idempotency-key")
            operation = f"{mode}:{configuration_id}"
            replay = orc.replay(key, operation)
            if replay is not None:
                return replay
            orc.write_configuration(configuration_id, body, mode=mode)
            return _accepted(orc, request, key, operation, configuration_id)

        return update_configuration

    router.put("/ControlPlane/Configurations/{configuration_id}")(update("put"))
    router.patch("/ControlPlane/Configurations/{configuration_id}")(update("patch"))

    @router.delete("/ControlPlane/Configurations/{configuration_id}")
    async def delete_configuration(configuration_id: str, request: Request) -> Response:
        orc.delete_configuration(configuration_id)
        return _accepted(orc, request, None, "delete", configuration_id)

    @router.get("/ControlPlane/Operations/{operation_id}")
    async def get_operation(operation_id: str) -> dict[str, Any]:
        return orc.get_operation(operation_id)

    # Conversations

    @router.get("/Conversations")
    async def list_conversations(request: Request) -> dict[str, Any]:
        statuses = _statuses(request.query_params.getlist("status"))
        found = orc.conversations(statuses, channel_id=request.query_params.get("channelId"))
        return paginate(request, "conversations", [orc.with_participants(c) for c in found])

    @router.post("/Conversations", status_code=201)
    async def create_conversation(body: ConversationCreateIn) -> dict[str, Any]:
        return orc.with_participants(await orc.create_conversation(body))

    @router.get("/Conversations/{conversation_id}")
    async def get_conversation(conversation_id: str) -> dict[str, Any]:
        return orc.with_participants(orc.conversation(conversation_id))

    @router.put("/Conversations/{conversation_id}")
    async def put_conversation(conversation_id: str, body: ConversationUpdateIn) -> dict[str, Any]:
        return orc.with_participants(await orc.update_conversation(conversation_id, body))

    @router.patch("/Conversations/{conversation_id}")
    async def patch_conversation(conversation_id: str, body: ConversationPatchIn) -> dict[str, Any]:
        return orc.with_participants(await orc.patch_conversation(conversation_id, body))

    @router.delete("/Conversations/{conversation_id}")
    async def delete_conversation(conversation_id: str, request: Request) -> Response:
        orc.delete_conversation(conversation_id)
        body, op_id = orc.operation(request, {"conversationId": conversation_id})
        return JSONResponse(body, status_code=202, headers=_operation_headers(body, op_id))

    # Participants

    @router.get("/Conversations/{conversation_id}/Participants")
    async def list_participants(conversation_id: str, request: Request) -> dict[str, Any]:
        orc.conversation(conversation_id)
        return paginate(request, "participants", orc.participants(conversation_id))

    @router.post("/Conversations/{conversation_id}/Participants", status_code=201)
    async def create_participant(conversation_id: str, body: ParticipantIn) -> dict[str, Any]:
        return await orc.add_participant(conversation_id, body)

    @router.get("/Conversations/{conversation_id}/Participants/{participant_id}")
    async def get_participant(conversation_id: str, participant_id: str) -> dict[str, Any]:
        orc.conversation(conversation_id)
        return orc.participant(conversation_id, participant_id)

    @router.put("/Conversations/{conversation_id}/Participants/{participant_id}")
    async def put_participant(
        conversation_id: str, participant_id: str, body: ParticipantReplaceIn
    ) -> dict[str, Any]:
        return await orc.replace_participant(conversation_id, participant_id, body)

    # Communications

    @router.get("/Conversations/{conversation_id}/Communications")
    async def list_communications(conversation_id: str, request: Request) -> dict[str, Any]:
        orc.conversation(conversation_id)
        found = orc.communications(conversation_id, request.query_params.get("channelId"))
        return paginate(request, "communications", found)

    @router.post("/Conversations/{conversation_id}/Communications")
    async def create_communication(conversation_id: str, body: CommunicationIn) -> Response:
        doc, created = await orc.add_communication(conversation_id, body)
        return JSONResponse(doc, status_code=201 if created else 200)

    @router.get("/Conversations/{conversation_id}/Communications/{communication_id}")
    async def get_communication(conversation_id: str, communication_id: str) -> dict[str, Any]:
        orc.conversation(conversation_id)
        return orc.communication(conversation_id, communication_id)

    # Actions

    @router.post("/Conversations/{conversation_id}/Actions", status_code=202)
    async def create_action(conversation_id: str, body: ActionIn) -> dict[str, Any]:
        return await orc.run_action(conversation_id, body)

    @router.get("/Conversations/{conversation_id}/Actions/{action_id}")
    async def get_action(conversation_id: str, action_id: str) -> dict[str, Any]:
        return orc.action(conversation_id, action_id)

    return router


def _accepted(
    orc: Orchestrator, request: Request, key: str | None, scope: str, configuration_id: str
) -> JSONResponse:
    body, op_id = orc.operation(request, {"configurationId": configuration_id})
    return orc.remember(key, scope, 202, body, _operation_headers(body, op_id))


def _operation_headers(body: dict[str, Any], op_id: str) -> dict[str, str]:
    return {"Operation-Id": op_id, "Location": body["statusUrl"], "Retry-After": "0"}


def _statuses(raw: list[str]) -> list[str]:
    statuses = [s.strip().upper() for value in raw for s in value.split(",") if s.strip()]
    for status in statuses:
        if status not in STATUSES:
            raise bad_request(
                f"Invalid request: status: {status!r} is not one of ACTIVE, INACTIVE, CLOSED"
            )
    return statuses


class AppUrlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


def _control(orc: Orchestrator) -> APIRouter:
    router = APIRouter(tags=["control"])

    @router.put("/app-url")
    async def set_app_url(body: AppUrlIn) -> dict[str, Any]:
        """Point the sandbox at the app: the default configuration's webhooks and the env."""
        ctx = orc.ctx
        try:
            ctx.settings = SandboxSettings.model_validate(
                {**ctx.settings.model_dump(), "app_url": body.url}
            )
        except ValidationError as exc:
            raise bad_request(f"Invalid request: url: {exc.errors()[0]['msg']}") from exc
        orc.ensure_default_configuration()
        return {"url": ctx.settings.app_url, "webhook": ctx.settings.app_url + "/webhook"}

    @router.get("/conversations")
    async def conversations(request: Request, channel: str | None = None) -> dict[str, Any]:
        """Every conversation with its participants, oldest first."""
        statuses = _statuses(request.query_params.getlist("status"))
        found = orc.conversations(statuses, channel=channel.upper() if channel else None)
        return {"conversations": [orc.with_participants(c) for c in found]}

    @router.get("/conversations/{conversation_id}/messages")
    async def messages(conversation_id: str, after: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """Communications after cursor ``after``; with ``wait``, long-poll for the next one."""
        orc.conversation(conversation_id)
        found = await orc.changes.wait_until(
            lambda: orc.communications_with_seq(conversation_id, after), min(wait, 60.0)
        )
        cursor = found[-1][0] if found else after
        return {"messages": [{"seq": s, **doc} for s, doc in found], "cursor": cursor}

    return router
