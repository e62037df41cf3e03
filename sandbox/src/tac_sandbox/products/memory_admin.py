"""Memory v1 beyond profiles and recall: a profile's identifiers, editing observations and
summaries (with observation revisions), trait groups, identity-resolution settings and the
operations that control-plane writes return.

Shapes follow the official ``twilio`` package's ``twilio.rest.memory.v1`` models. Control-plane
writes answer ``202 {message, statusUrl}`` and complete at once: ``statusUrl`` names an
operation (``GET /v1/ControlPlane/Operations/{id}``) that is already ``COMPLETED``. Trait groups
are a schema the sandbox records and serves; it does not validate profile traits against them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tac_sandbox._db import dumps, loads
from tac_sandbox._errors import TwilioError, bad_request, not_found
from tac_sandbox._ids import ttid
from tac_sandbox.products._common import (
    iso,
    json_object,
    page_body,
    page_bounds,
    parse_time,
    utcnow,
    validate,
)

if TYPE_CHECKING:
    from tac_sandbox.products.memory import MemoryService

SCHEMA = """
CREATE TABLE mem_observation_revisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, observation_id TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX mem_observation_revisions_item ON mem_observation_revisions (observation_id);
CREATE TABLE mem_trait_groups (
    store_id TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (store_id, name)
);
CREATE TABLE mem_settings (store_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE mem_operations (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""

DEFAULT_TRAIT_GROUPS: dict[str, dict[str, Any]] = {
    "Contact": {
        "description": "How to reach the customer",
        "traits": {
            "phone": {"dataType": "STRING", "idTypePromotion": "phone"},
            "email": {"dataType": "STRING", "idTypePromotion": "email"},
            "name": {"dataType": "STRING"},
        },
    },
}

DEFAULT_SETTINGS: dict[str, Any] = {
    "identifierConfigs": [
        {
            "idType": "phone",
            "matchingAlgo": "exact",
            "matchingThreshold": 1,
            "limit": 10,
            "limitPolicy": "replace_oldest",
            "enforceUnique": False,
            "normalization": "e164",
        },
        {
            "idType": "email",
            "matchingAlgo": "exact",
            "matchingThreshold": 1,
            "limit": 10,
            "limitPolicy": "replace_oldest",
            "enforceUnique": False,
            "normalization": "lowercase",
        },
    ],
    "matchingRules": ["phone", "email"],
    "version": 1,
}


class _IdentifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    idType: str = Field(min_length=1, max_length=30)
    value: str = Field(min_length=1)


class _IdentifierUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    idType: str | None = None
    oldValue: str = Field(min_length=1)
    newValue: str = Field(min_length=1)


class _ItemPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str | None = Field(default=None, min_length=1)
    occurredAt: str | None = None
    source: str | None = Field(default=None, min_length=1)
    conversationIds: list[str] | None = None
    conversationId: str | None = None


class _TraitGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    displayName: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    description: str | None = None
    traits: dict[str, dict[str, Any]] = Field(default_factory=dict)


class _TraitGroupPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    traits: dict[str, dict[str, Any]] | None = None


class _SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifierConfigs: list[dict[str, Any]] = Field(min_length=1)
    matchingRules: list[str] | None = None


class MemoryAdmin:
    """The routes' state, over the Memory product's service and database."""

    def __init__(self, service: MemoryService) -> None:
        self.service = service
        self.db = service.db

    # operations

    def operation(self, result: dict[str, Any] | None = None) -> dict[str, Any]:
        """A completed operation; the ``202`` body naming it."""
        operation_id = ttid("mem_operation")
        now = iso(utcnow())
        status_url = f"/v1/ControlPlane/Operations/{operation_id}"
        doc = {
            "operationId": operation_id,
            "status": "COMPLETED",
            "createdAt": now,
            "completedAt": now,
            "statusUrl": status_url,
            "result": result or {},
        }
        self.db.execute("INSERT INTO mem_operations VALUES (?, ?)", (operation_id, dumps(doc)))
        return {"message": "Request accepted for processing.", "statusUrl": status_url}

    def get_operation(self, operation_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT doc FROM mem_operations WHERE id = ?", (operation_id,))
        if row is None:
            raise not_found("Operation", operation_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    # identifiers

    def identifiers(self, store_id: str, profile_id: str) -> dict[str, list[str]]:
        rows = self.db.query(
            "SELECT id_type, value FROM mem_identifiers WHERE store_id = ? AND profile_id = ?"
            " ORDER BY rowid",
            (store_id, profile_id),
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["id_type"], []).append(row["value"])
        return found

    def add_identifier(self, store_id: str, profile_id: str, id_type: str, value: str) -> str:
        """Store ``value``; a profile that already holds it merges with this one."""
        from tac_sandbox.products.memory import normalize_identifier

        normalized = normalize_identifier(id_type, value)
        holders = set(self.service.find_profiles(store_id, id_type, normalized))
        self.db.execute(
            "INSERT OR IGNORE INTO mem_identifiers VALUES (?, ?, ?, ?)",
            (store_id, id_type, normalized, profile_id),
        )
        if holders - {profile_id}:
            return self.service.merge_profiles(store_id, holders | {profile_id})
        return profile_id

    def remove_identifier(
        self, store_id: str, profile_id: str, id_type: str, value: str | None
    ) -> int:
        if value is None:
            return self.db.execute(
                "DELETE FROM mem_identifiers WHERE store_id = ? AND profile_id = ? AND id_type = ?",
                (store_id, profile_id, id_type),
            )
        return self.db.execute(
            "DELETE FROM mem_identifiers"
            " WHERE store_id = ? AND profile_id = ? AND id_type = ? AND value = ?",
            (store_id, profile_id, id_type, value),
        )

    # observations and summaries

    def patch_item(
        self, table: str, resource: str, profile_id: str, item_id: str, body: _ItemPatchIn
    ) -> Any:
        row = self.db.one(
            f"SELECT * FROM {table} WHERE profile_id = ? AND id = ?", (profile_id, item_id)
        )
        if row is None:
            raise not_found(resource, item_id)
        changes: dict[str, Any] = {}
        if body.content is not None:
            changes["content"] = body.content
        if body.source is not None:
            changes["source"] = body.source
        if body.occurredAt is not None:
            changes["occurred_at"] = iso(parse_time(body.occurredAt, "occurredAt"))
        if table == "mem_observations":
            if body.conversationId is not None:
                raise bad_request("conversationId is a summary's field; observations have none")
            if body.conversationIds is not None:
                changes["conversation_ids"] = dumps(body.conversationIds)
        else:
            if body.conversationIds is not None:
                raise bad_request("conversationIds is an observation's field; use conversationId")
            if body.conversationId is not None:
                changes["conversation_id"] = body.conversationId
        if not changes:
            raise bad_request("give at least one of content, occurredAt, source")
        changes["updated_at"] = iso(utcnow())
        with self.db.transaction() as conn:
            if table == "mem_observations":
                conn.execute(
                    "INSERT INTO mem_observation_revisions (observation_id, doc) VALUES (?, ?)",
                    (item_id, dumps(dict(row))),
                )
            assignments = ", ".join(f"{column} = ?" for column in changes)
            conn.execute(
                f"UPDATE {table} SET {assignments} WHERE id = ?", (*changes.values(), item_id)
            )
        return self.db.one(f"SELECT * FROM {table} WHERE id = ?", (item_id,))

    def revisions(self, profile_id: str, observation_id: str) -> list[dict[str, Any]]:
        if (
            self.db.one(
                "SELECT 1 FROM mem_observations WHERE profile_id = ? AND id = ?",
                (profile_id, observation_id),
            )
            is None
        ):
            raise not_found("Observation", observation_id)
        rows = self.db.query(
            "SELECT doc FROM mem_observation_revisions WHERE observation_id = ? ORDER BY seq DESC",
            (observation_id,),
        )
        return [loads(row["doc"]) for row in rows]

    # trait groups

    def trait_groups(self, store_id: str) -> dict[str, dict[str, Any]]:
        self.service.require_store(store_id)
        groups = {
            name: {"displayName": name, "version": 1, **doc}
            for name, doc in DEFAULT_TRAIT_GROUPS.items()
        }
        for row in self.db.query(
            "SELECT name, doc FROM mem_trait_groups WHERE store_id = ? ORDER BY rowid", (store_id,)
        ):
            groups[row["name"]] = loads(row["doc"])
        return {name: doc for name, doc in groups.items() if not doc.get("deleted")}

    def save_trait_group(self, store_id: str, doc: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO mem_trait_groups VALUES (?, ?, ?)"
            " ON CONFLICT (store_id, name) DO UPDATE SET doc = excluded.doc",
            (store_id, doc["displayName"], dumps(doc)),
        )

    # identity resolution settings

    def settings(self, store_id: str) -> dict[str, Any]:
        self.service.require_store(store_id)
        row = self.db.one("SELECT doc FROM mem_settings WHERE store_id = ?", (store_id,))
        doc: dict[str, Any] = loads(row["doc"]) if row is not None else dict(DEFAULT_SETTINGS)
        return doc


def _group_json(doc: dict[str, Any], include_traits: bool) -> dict[str, Any]:
    shown = {k: v for k, v in doc.items() if k != "traits" or include_traits}
    return {"displayName": shown.pop("displayName"), **shown}


def router(admin: MemoryAdmin, item_json: dict[str, Any]) -> APIRouter:
    """The routes; ``item_json`` maps ``observations``/``summaries`` to their row encoders."""
    api = APIRouter(tags=["memory"])
    service = admin.service
    profile_path = "/v1/Stores/{store_id}/Profiles/{profile_id}"

    @api.get(profile_path + "/Identifiers")
    async def list_identifiers(
        store_id: str,
        profile_id: str,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        profile_id = service.canonical_id(store_id, profile_id)
        found = [
            {"idType": t, "values": v} for t, v in admin.identifiers(store_id, profile_id).items()
        ]
        offset, size = page_bounds(page_size, page_token)
        return page_body("identifiers", found[offset : offset + size], offset, size, len(found))

    @api.post(profile_path + "/Identifiers")
    async def create_identifier(store_id: str, profile_id: str, request: Request) -> JSONResponse:
        profile_id = service.canonical_id(store_id, profile_id)
        body = validate(_IdentifierIn, await json_object(request))
        kept = admin.add_identifier(store_id, profile_id, body.idType, body.value)
        values = admin.identifiers(store_id, kept).get(body.idType, [])
        return JSONResponse(
            {"message": "Identifier accepted.", "idType": body.idType, "values": values},
            status_code=202,
        )

    @api.get(profile_path + "/Identifiers/{id_type}")
    async def get_identifier(store_id: str, profile_id: str, id_type: str) -> dict[str, Any]:
        profile_id = service.canonical_id(store_id, profile_id)
        values = admin.identifiers(store_id, profile_id).get(id_type)
        if not values:
            raise not_found("Identifier", id_type)
        return {"idType": id_type, "values": values}

    @api.patch(profile_path + "/Identifiers/{id_type}")
    async def update_identifier(
        store_id: str, profile_id: str, id_type: str, request: Request
    ) -> JSONResponse:
        from tac_sandbox.products.memory import normalize_identifier

        profile_id = service.canonical_id(store_id, profile_id)
        body = validate(_IdentifierUpdateIn, await json_object(request))
        if body.idType is not None and body.idType != id_type:
            raise bad_request(f"idType {body.idType!r} does not match the path's {id_type!r}")
        old = normalize_identifier(id_type, body.oldValue)
        if not admin.remove_identifier(store_id, profile_id, id_type, old):
            raise not_found("Identifier value", body.oldValue)
        kept = admin.add_identifier(store_id, profile_id, id_type, body.newValue)
        values = admin.identifiers(store_id, kept).get(id_type, [])
        return JSONResponse(
            {"message": "Identifier update accepted.", "idType": id_type, "values": values},
            status_code=202,
        )

    @api.delete(profile_path + "/Identifiers/{id_type}")
    async def delete_identifier(
        store_id: str,
        profile_id: str,
        id_type: str,
        remove_all: Annotated[bool, Query(alias="removeAll")] = False,
    ) -> Response:
        profile_id = service.canonical_id(store_id, profile_id)
        values = admin.identifiers(store_id, profile_id).get(id_type)
        if not values:
            raise not_found("Identifier", id_type)
        if len(values) > 1 and not remove_all:
            raise bad_request(
                f"removeAll: the profile has {len(values)} {id_type} values;"
                " pass removeAll=true to remove them all"
            )
        admin.remove_identifier(store_id, profile_id, id_type, None)
        return Response(status_code=204)

    for key, (table, resource, path) in {
        "observations": ("mem_observations", "Observation", "/Observations"),
        "summaries": ("mem_summaries", "ConversationSummary", "/ConversationSummaries"),
    }.items():
        _patch_route(api, admin, profile_path + path, table, resource, item_json[key])

    @api.get(profile_path + "/Observations/{observation_id}/Revisions")
    async def revisions(
        store_id: str,
        profile_id: str,
        observation_id: str,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        profile_id = service.canonical_id(store_id, profile_id)
        encode = item_json["observations"]
        found = [encode(row) for row in admin.revisions(profile_id, observation_id)]
        offset, size = page_bounds(page_size, page_token)
        return page_body("revisions", found[offset : offset + size], offset, size, len(found))

    groups_path = "/v1/ControlPlane/Stores/{store_id}/TraitGroups"

    @api.get(groups_path)
    async def list_trait_groups(
        store_id: str,
        include_traits: Annotated[bool, Query(alias="includeTraits")] = False,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        groups = [_group_json(g, include_traits) for g in admin.trait_groups(store_id).values()]
        offset, size = page_bounds(page_size, page_token)
        return page_body("traitGroups", groups[offset : offset + size], offset, size, len(groups))

    @api.post(groups_path)
    async def create_trait_group(store_id: str, request: Request) -> JSONResponse:
        body = validate(_TraitGroupIn, await json_object(request))
        if body.displayName in admin.trait_groups(store_id):
            raise TwilioError(409, f"Trait group {body.displayName} already exists")
        doc = {**body.model_dump(exclude_none=True), "version": 1}
        admin.save_trait_group(store_id, doc)
        return JSONResponse(admin.operation({"traitGroup": doc}), status_code=202)

    @api.get(groups_path + "/{name}")
    async def get_trait_group(
        store_id: str,
        name: str,
        include_traits: Annotated[bool, Query(alias="includeTraits")] = True,
    ) -> dict[str, Any]:
        group = admin.trait_groups(store_id).get(name)
        if group is None:
            raise not_found("TraitGroup", name)
        return _group_json(group, include_traits)

    @api.patch(groups_path + "/{name}")
    async def patch_trait_group(store_id: str, name: str, request: Request) -> JSONResponse:
        body = validate(_TraitGroupPatchIn, await json_object(request))
        group = admin.trait_groups(store_id).get(name)
        if group is None:
            raise not_found("TraitGroup", name)
        if body.description is not None:
            group["description"] = body.description
        if body.traits is not None:
            group["traits"] = {**group.get("traits", {}), **body.traits}
        group["version"] = int(group.get("version", 1)) + 1
        admin.save_trait_group(store_id, group)
        return JSONResponse(admin.operation({"traitGroup": group}), status_code=202)

    @api.delete(groups_path + "/{name}")
    async def delete_trait_group(store_id: str, name: str) -> Response:
        group = admin.trait_groups(store_id).get(name)
        if group is None:
            raise not_found("TraitGroup", name)
        admin.save_trait_group(store_id, {**group, "deleted": True})
        return Response(status_code=204)

    settings_path = "/v1/ControlPlane/Stores/{store_id}/IdentityResolutionSettings"

    @api.get(settings_path)
    async def get_settings(store_id: str) -> dict[str, Any]:
        return admin.settings(store_id)

    @api.put(settings_path)
    async def put_settings(store_id: str, request: Request) -> JSONResponse:
        body = validate(_SettingsIn, await json_object(request))
        for i, config in enumerate(body.identifierConfigs):
            if not isinstance(config.get("idType"), str) or not config["idType"]:
                raise bad_request(f"identifierConfigs.{i}.idType is required")
        version = int(admin.settings(store_id).get("version", 1)) + 1
        doc = {
            "identifierConfigs": body.identifierConfigs,
            "matchingRules": body.matchingRules or [c["idType"] for c in body.identifierConfigs],
            "version": version,
        }
        admin.db.execute(
            "INSERT INTO mem_settings VALUES (?, ?)"
            " ON CONFLICT (store_id) DO UPDATE SET doc = excluded.doc",
            (store_id, dumps(doc)),
        )
        return JSONResponse(admin.operation({"version": version}), status_code=202)

    @api.get("/v1/ControlPlane/Operations/{operation_id}")
    async def get_operation(operation_id: str) -> dict[str, Any]:
        return admin.get_operation(operation_id)

    return api


def _patch_route(
    api: APIRouter, admin: MemoryAdmin, path: str, table: str, resource: str, encode: Any
) -> None:
    async def patch_item(
        store_id: str, profile_id: str, item_id: str, request: Request
    ) -> dict[str, Any]:
        profile_id = admin.service.canonical_id(store_id, profile_id)
        body = validate(_ItemPatchIn, await json_object(request))
        result: dict[str, Any] = encode(
            admin.patch_item(table, resource, profile_id, item_id, body)
        )
        return result

    api.add_api_route(
        path + "/{item_id}", patch_item, methods=["PATCH"], name=f"patch_{resource.lower()}"
    )
