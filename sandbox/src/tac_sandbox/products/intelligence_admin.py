"""Conversational Intelligence v3 control plane: the sandbox's configuration and its operator.

``GET /v3/ControlPlane/Configurations[/{id}]`` shows the one configuration the sandbox runs,
in the shape of ``twilio.rest.intelligence.v3.configuration`` (each rule: the summary operator,
its trigger, and a ``WEBHOOK`` action when the rule delivers to a URL); ``PUT`` on it sets each
rule's delivery from its actions (a ``WEBHOOK`` action: to that URL; none: into Memory).
``GET /v3/ControlPlane/Operators[/{id}]`` lists the one operator it runs (the summary, whose id
``opentac sandbox --write-env`` writes as ``CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID``).
Creating further configurations or operators is not emulated (``405``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request

from tac_sandbox._errors import bad_request, not_found
from tac_sandbox.products._common import items, json_object, page_body, page_bounds

if TYPE_CHECKING:
    from tac_sandbox.products.intelligence import IntelligenceService

EPOCH = "2026-01-01T00:00:00Z"


def configuration_json(service: IntelligenceService) -> dict[str, Any]:
    config = service.configuration()
    rules = []
    for rule in config["rules"]:
        actions = []
        if rule["mode"] == "webhook":
            actions.append({"type": "WEBHOOK", "method": "POST", "url": rule["url"]})
        rules.append(
            {
                "id": rule["id"],
                "operators": [{"id": config["operatorId"], "version": 1}],
                "triggers": [{"on": rule["on"]}],
                "actions": actions,
                "enabled": rule["mode"] != "off",
            }
        )
    return {
        "accountId": service.ctx.identity.account_sid,
        "id": config["id"],
        "displayName": config["friendlyName"],
        "description": "The sandbox's summary of conversations going inactive or closed",
        "version": config["version"],
        "rules": rules,
        "dateCreated": EPOCH,
        "dateUpdated": EPOCH,
    }


def operator_json(service: IntelligenceService) -> dict[str, Any]:
    return {
        "id": service.ctx.identity.intelligence_summary_operator_id,
        "displayName": "Summary",
        "description": "Summarises a conversation (extractive, deterministic in the sandbox)",
        "version": 1,
        "author": "TWILIO",
        "outputFormat": "JSON",
        "outputSchema": {
            "type": "object",
            "properties": {
                "summaries": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"summary": {"type": "string"}}},
                }
            },
        },
        "dateCreated": EPOCH,
        "dateUpdated": EPOCH,
    }


def router(service: IntelligenceService) -> APIRouter:
    from tac_sandbox.products.intelligence import TRIGGERS, RuleSetting

    api = APIRouter(tags=["intelligence"])
    by_event = {on: name for name, (_, on) in TRIGGERS.items()}

    def paged(
        key: str, found: list[dict[str, Any]], size: int | None, token: str | None
    ) -> dict[str, Any]:
        offset, limit = page_bounds(size, token)
        return page_body(key, found[offset : offset + limit], offset, limit, len(found))

    @api.get("/v3/ControlPlane/Configurations")
    async def list_configurations(
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        return paged("configurations", [configuration_json(service)], page_size, page_token)

    @api.get("/v3/ControlPlane/Configurations/{configuration_id}")
    async def get_configuration(configuration_id: str) -> dict[str, Any]:
        found = configuration_json(service)
        if configuration_id != found["id"]:
            raise not_found("Configuration", configuration_id)
        return found

    @api.put("/v3/ControlPlane/Configurations/{configuration_id}")
    async def update_configuration(configuration_id: str, request: Request) -> dict[str, Any]:
        if configuration_id != service.ctx.identity.intelligence_configuration_id:
            raise not_found("Configuration", configuration_id)
        body = await json_object(request)
        for i, rule in enumerate(items(body.get("rules"))):
            events = [t.get("on") for t in items(rule.get("triggers"))]
            trigger = next((by_event[e] for e in events if e in by_event), None)
            if trigger is None:
                raise bad_request(
                    f"rules.{i}.triggers: the sandbox runs {sorted(by_event)} only, got {events}"
                )
            hooks = [a for a in items(rule.get("actions")) if a.get("type") == "WEBHOOK"]
            if rule.get("enabled") is False:
                setting = RuleSetting(mode="off")
            elif hooks:
                setting = RuleSetting(mode="webhook", url=hooks[0].get("url"))
            else:
                setting = RuleSetting(mode="memory")
            service.set_rule(trigger, setting)
        return configuration_json(service)

    @api.get("/v3/ControlPlane/Operators")
    async def list_operators(
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        return paged("operators", [operator_json(service)], page_size, page_token)

    @api.get("/v3/ControlPlane/Operators/{operator_id}")
    async def get_operator(operator_id: str) -> dict[str, Any]:
        found = operator_json(service)
        if operator_id != found["id"]:
            raise not_found("Operator", operator_id)
        return found

    return api
