"""Async client of Conversation Memory v1 (``memory.twilio.com``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from tac.context._base import ProductClient, parse_model
from tac.context._http import TwilioHTTP, encode_path, parse_json_object
from tac.context.errors import InvalidResponseError
from tac.core.logging import get_logger
from tac.models._base import first_error
from tac.models.memory import (
    MemoryRetrievalRequest,
    MemoryRetrievalResponse,
    ObservationCreate,
    ObservationInfo,
    ProfileCreateResponse,
    ProfileLookupRequest,
    ProfileLookupResponse,
    ProfileResponse,
    SummaryCreate,
)

__all__ = ["MemoryClient"]

logger = get_logger("context")

_REDIRECTS = (301, 302, 307, 308)
_BATCH = 10
"""Memory accepts at most 10 observations or summaries per request."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat().replace("+00:00", "Z")


class MemoryClient(ProductClient):
    """Profiles, Recall, observations and summaries of one memory store.

    The store is ``store_id`` or, when that is unknown at construction (it usually comes from
    the conversation configuration), whatever ``resolve_store_id`` returns on first use.
    """

    _product = "memory"

    def __init__(
        self,
        store_id: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        region: str | None = None,
        *,
        http: TwilioHTTP | None = None,
        resolve_store_id: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        super().__init__(http=http, api_key=api_key, api_secret=api_secret, region=region)
        if store_id is not None and (not isinstance(store_id, str) or not store_id):
            raise ValueError(f"store_id must be a non-empty string, got {store_id!r}")
        self._store_id = store_id
        self._resolve_store_id = resolve_store_id
        self._store_lock: asyncio.Lock | None = None

    @property
    def store_id(self) -> str | None:
        """The store id if known yet (see :meth:`get_store_id`)."""
        return self._store_id

    async def get_store_id(self) -> str:
        """The memory store id: the one given, or resolved once (concurrent callers share it).

        Raises:
            ValueError: neither ``store_id`` nor ``resolve_store_id`` was given, or the resolver
                returned no id.
        """
        if self._store_id is not None:
            return self._store_id
        if self._resolve_store_id is None:
            raise ValueError(
                "MemoryClient has no memory store: pass store_id=... or resolve_store_id=..."
            )
        if self._store_lock is None:
            self._store_lock = asyncio.Lock()
        async with self._store_lock:
            if self._store_id is None:
                resolved = await self._resolve_store_id()
                if not isinstance(resolved, str) or not resolved:
                    raise ValueError(
                        f"resolve_store_id returned no memory store id (got {resolved!r}); "
                        "is memoryStoreId set on the conversation configuration?"
                    )
                self._store_id = resolved
        return self._store_id

    async def _path(self, template: str, **params: str) -> str:
        return encode_path(template, store=await self.get_store_id(), **params)

    # Recall ----------------------------------------------------------------------------------

    async def retrieve_memory(
        self, profile_id: str, request: MemoryRetrievalRequest | None = None
    ) -> MemoryRetrievalResponse:
        """Recall observations, summaries and communications for a profile.

        Malformed items are dropped (and logged); HTTP and transport errors raise, so the
        caller can fall back (e.g. to the conversation's communications).
        """
        body = (request or MemoryRetrievalRequest()).to_wire()
        path = await self._path("/v1/Stores/{store}/Profiles/{profile}/Recall", profile=profile_id)
        response = await self._http.request(self._product, "POST", path, json=body)
        payload = parse_json_object(response)
        result, dropped = MemoryRetrievalResponse.parse_lenient(payload)
        if dropped:
            logger.warning("Recall for a profile: dropped %d malformed item(s)", dropped)
        return result

    # Profiles --------------------------------------------------------------------------------

    async def get_profile(
        self, profile_id: str, trait_groups: Sequence[str] | None = None
    ) -> ProfileResponse:
        """Fetch a profile with its traits (only ``trait_groups`` when given).

        A merged profile answers 301 with the canonical profile's URL; it is followed once.
        """
        params = {"traitGroups": ",".join(trait_groups)} if trait_groups else None
        path = await self._path("/v1/Stores/{store}/Profiles/{profile}", profile=profile_id)
        response = await self._http.request(
            self._product, "GET", path, params=params, accept=_REDIRECTS
        )
        if response.status_code in _REDIRECTS:
            moved = self._redirect_path(response)
            logger.debug("profile moved (merged); following once")
            response = await self._http.request(self._product, "GET", moved, params=params)
        return parse_model(ProfileResponse, response)

    def _redirect_path(self, response: httpx.Response) -> str:
        """The path of a profile redirect, accepted only within this store on this host."""
        location = response.headers.get("Location")
        if not location:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("uri"), str):
                location = body["uri"]
        base = self._http.base_url(self._product)
        path: str | None = None
        if isinstance(location, str):
            if location.startswith(base + "/"):
                path = location[len(base) :]
            elif location.startswith("/"):
                path = location
        store_prefix = encode_path("/v1/Stores/{store}/Profiles/", store=self._store_id or "-")
        if path is not None:
            path = urlsplit(path).path
        if path is None or not path.startswith(store_prefix) or "/../" in path + "/":
            raise InvalidResponseError(
                "profile redirect to an unexpected location",
                status=response.status_code,
                method=response.request.method,
                url=str(response.request.url),
                headers=dict(response.headers),
            )
        return path

    async def lookup_profile(self, id_type: str, value: str) -> list[str]:
        """Profile ids (canonical, at most 100) matching an identifier (``phone``, ``email``…)."""
        request = ProfileLookupRequest(id_type=id_type, value=value)
        path = await self._path("/v1/Stores/{store}/Profiles/Lookup")
        response = await self._http.request(self._product, "POST", path, json=request.to_wire())
        return parse_model(ProfileLookupResponse, response).profiles

    async def create_profile(self, traits: Mapping[str, Mapping[str, Any]]) -> str:
        """Create (or resolve to an existing) profile from traits; returns its id.

        Identity resolution makes this idempotent: the same identifying traits give the same
        profile, so it is retried like a read.
        """
        if not traits:
            raise ValueError("traits must hold at least one trait group")
        body = {"traits": {group: dict(values) for group, values in traits.items()}}
        path = await self._path("/v1/Stores/{store}/Profiles")
        response = await self._http.request(self._product, "POST", path, json=body)
        return parse_model(ProfileCreateResponse, response).id

    async def patch_profile_traits(
        self, profile_id: str, traits: Mapping[str, Mapping[str, Any] | None]
    ) -> None:
        """Merge traits into a profile (a ``None`` value removes a trait)."""
        if not traits:
            raise ValueError("traits must hold at least one trait group")
        body = {
            "traits": {
                group: (dict(values) if values is not None else None)
                for group, values in traits.items()
            }
        }
        path = await self._path("/v1/Stores/{store}/Profiles/{profile}", profile=profile_id)
        await self._http.request(self._product, "PATCH", path, json=body)

    # Observations and summaries --------------------------------------------------------------

    async def create_observations(
        self,
        profile_id: str,
        observations: Sequence[ObservationCreate | Mapping[str, Any]],
    ) -> None:
        """Write observations (sent in batches of 10; ``occurredAt`` defaults to now, UTC).

        Not idempotent: retried only when a request surely did not reach Twilio.
        """
        items = [self._observation(o) for o in observations]
        if not items:
            raise ValueError("observations must not be empty")
        path = await self._path(
            "/v1/Stores/{store}/Profiles/{profile}/Observations", profile=profile_id
        )
        for start in range(0, len(items), _BATCH):
            await self._http.request(
                self._product,
                "POST",
                path,
                json={"observations": items[start : start + _BATCH]},
                retry="unsent_only",
            )

    async def create_observation(
        self,
        profile_id: str,
        content: str,
        source: str = "conversation-intelligence",
        conversation_ids: list[str] | None = None,
        occurred_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Write one observation; returns Memory's answer (``{"message": ...}``)."""
        item = self._observation(
            ObservationCreate(
                content=content,
                source=source,
                conversation_ids=conversation_ids,
                occurred_at=occurred_at,
            )
        )
        path = await self._path(
            "/v1/Stores/{store}/Profiles/{profile}/Observations", profile=profile_id
        )
        response = await self._http.request(
            self._product, "POST", path, json={"observations": [item]}, retry="unsent_only"
        )
        return self._optional_json(response)

    async def create_conversation_summaries(
        self,
        profile_id: str,
        summaries: Sequence[SummaryCreate | Mapping[str, Any]],
    ) -> dict[str, Any]:
        """Write conversation summaries (batches of 10); returns the last answer's body."""
        items = [self._summary(s) for s in summaries]
        if not items:
            raise ValueError("summaries must not be empty")
        path = await self._path(
            "/v1/Stores/{store}/Profiles/{profile}/ConversationSummaries", profile=profile_id
        )
        answer: dict[str, Any] = {}
        for start in range(0, len(items), _BATCH):
            response = await self._http.request(
                self._product,
                "POST",
                path,
                json={"summaries": items[start : start + _BATCH]},
                retry="unsent_only",
            )
            answer = self._optional_json(response)
        return answer

    async def list_observations(
        self,
        profile_id: str,
        *,
        source: str | None = None,
        conversation_id: str | None = None,
        order_by: str | None = None,
        page_size: int | None = None,
        limit: int | None = None,
        max_pages: int = 100,
    ) -> list[ObservationInfo]:
        """A profile's observations across pages (newest first unless ``order_by="ASC"``)."""
        params: dict[str, Any] = {}
        if source is not None:
            params["source"] = source
        if conversation_id is not None:
            params["conversationId"] = conversation_id
        if order_by is not None:
            if order_by.upper() not in ("ASC", "DESC"):
                raise ValueError(f"order_by must be 'ASC' or 'DESC', got {order_by!r}")
            params["orderBy"] = order_by.upper()
        path = await self._path(
            "/v1/Stores/{store}/Profiles/{profile}/Observations", profile=profile_id
        )
        return await self._collect(
            path,
            "observations",
            ObservationInfo,
            params=params,
            page_size=page_size,
            max_pages=max_pages,
            limit=limit,
        )

    # Helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _observation(value: ObservationCreate | Mapping[str, Any]) -> dict[str, Any]:
        model = _as_model(ObservationCreate, value, "observation")
        body = model.model_dump(by_alias=True, exclude_none=True, mode="json")
        body["occurredAt"] = _iso(model.occurred_at or _utcnow())
        return body

    @staticmethod
    def _summary(value: SummaryCreate | Mapping[str, Any]) -> dict[str, Any]:
        model = _as_model(SummaryCreate, value, "summary")
        body = model.model_dump(by_alias=True, exclude_none=True, mode="json")
        body["occurredAt"] = _iso(model.occurred_at or _utcnow())
        return body

    @staticmethod
    def _optional_json(response: httpx.Response) -> dict[str, Any]:
        if not response.content:
            return {}
        return parse_json_object(response)


_W = TypeVar("_W", ObservationCreate, SummaryCreate)


def _as_model(model: type[_W], value: _W | Mapping[str, Any], what: str) -> _W:
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"each {what} must be a {model.__name__} or a mapping")
    try:
        return model.model_validate(dict(value))
    except ValidationError as exc:
        raise ValueError(f"invalid {what}: {first_error(exc)[1]}") from exc
