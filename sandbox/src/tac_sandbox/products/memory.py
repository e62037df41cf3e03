"""Conversation Memory v1 (``https://memory.twilio.com``), served under ``/memory``.

Stores, profiles with identity resolution (``Contact.phone`` and ``Contact.email`` are the
identifiers; profiles that come to share one merge into the earliest, and the others answer
``GET`` with 301), trait patches as a deep merge, observations, conversation summaries and
Recall, which ranks observations and summaries by BM25 relevance to the query. Memory keeps its
own copy of every communication the Orchestrator publishes, for Recall's
``communicationsLimit``.

Control API (under ``/sandbox/memory``): ``GET /profiles`` (every profile with its traits) and
``POST /resolve`` ``{"channel", "address", "storeId"?}`` (identity resolution, as the
Orchestrator does it).

Other products use it as ``ctx.products.memory`` (:class:`MemoryService`): ``resolve_profile``
(identity resolution for a new customer participant, see :func:`address_identifier`),
``add_summary`` and ``add_observations`` (Conversation Intelligence).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import Database, dumps, loads
from tac_sandbox._errors import TwilioError, bad_request, not_found
from tac_sandbox._ids import ttid
from tac_sandbox._ranking import BM25
from tac_sandbox.products import memory_admin
from tac_sandbox.products._common import (
    iso,
    items,
    json_object,
    obj,
    on_reset,
    page_body,
    page_bounds,
    parse_time,
    str_or_none,
    utcnow,
    validate,
)

_SCHEMA = """
CREATE TABLE mem_stores (
    id TEXT PRIMARY KEY, display_name TEXT NOT NULL, description TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE mem_profiles (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, store_id TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, traits TEXT NOT NULL,
    merged_into TEXT
);
CREATE TABLE mem_identifiers (
    store_id TEXT NOT NULL, id_type TEXT NOT NULL, value TEXT NOT NULL, profile_id TEXT NOT NULL,
    PRIMARY KEY (store_id, id_type, value, profile_id)
);
CREATE TABLE mem_observations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, store_id TEXT NOT NULL,
    profile_id TEXT NOT NULL, content TEXT NOT NULL, source TEXT NOT NULL,
    occurred_at TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    conversation_ids TEXT
);
CREATE INDEX mem_observations_profile ON mem_observations (store_id, profile_id);
CREATE TABLE mem_summaries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, store_id TEXT NOT NULL,
    profile_id TEXT NOT NULL, conversation_id TEXT NOT NULL, content TEXT NOT NULL,
    source TEXT, occurred_at TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE INDEX mem_summaries_profile ON mem_summaries (store_id, profile_id);
CREATE TABLE mem_communications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX mem_communications_conversation ON mem_communications (conversation_id);
CREATE TABLE mem_participants (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, profile_id TEXT, doc TEXT NOT NULL
);
CREATE INDEX mem_participants_profile ON mem_participants (profile_id);
"""

PROFILE_ACCEPTED = "Profile resolved and accepted for processing."
TRAITS_ACCEPTED = "Trait modifications accepted for processing."
OBSERVATIONS_ACCEPTED = "Observations creation accepted"
SUMMARIES_ACCEPTED = "Summaries creation accepted"

_SOURCE = re.compile(r"^[a-zA-Z0-9 _.-]+$")
_IDENTIFIER_TRAITS = {"phone": ("Contact", "phone"), "email": ("Contact", "email")}
_INFERRED_QUERY_MESSAGES = 10
_DATA_TABLES = (
    "mem_profiles",
    "mem_identifiers",
    "mem_observations",
    "mem_summaries",
    "mem_communications",
    "mem_participants",
    "mem_observation_revisions",  # memory_admin's
    "mem_operations",
)


# --- identity --------------------------------------------------------------------------------


def normalize_phone(value: str) -> str:
    """E.164-ish: drop spaces, dashes, dots and parentheses; ``00`` → ``+``; 10 digits → ``+1``."""
    text = value.strip()
    plus = text.startswith("+")
    digits = "".join(ch for ch in text if ch.isdigit())
    if plus:
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 10:
        return "+1" + digits
    return "+" + digits if digits else text


def normalize_identifier(id_type: str, value: str) -> str:
    if id_type == "phone":
        return normalize_phone(value)
    if id_type == "email":
        return value.strip().lower()
    return value.strip()


def address_identifier(channel: str, address: str) -> tuple[str, str] | None:
    """The Memory identifier ``(idType, value)`` an Orchestrator address resolves through.

    ``+1…`` (voice, SMS), ``whatsapp:+1…`` and ``rcs:+1…`` → ``phone``; ``name@host`` →
    ``email``; anything else (a chat identity, an RCS brand id) → ``None``: such a participant
    gets no profile unless its creator passes a ``profileId``.
    """
    value = address.strip()
    for prefix in ("whatsapp:", "rcs:", "sms:", "tel:"):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
            break
    if "@" in value and "." in value.rsplit("@", 1)[-1]:
        return "email", value.lower()
    compact = re.sub(r"[\s().-]", "", value)
    if compact.startswith("+") and compact[1:].isdigit() and len(compact) >= 8:
        return "phone", normalize_phone(compact)
    if channel.upper() in ("VOICE", "SMS") and compact.isdigit() and len(compact) >= 7:
        return "phone", normalize_phone(compact)
    return None


def merge_traits(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``patch`` into a copy of ``current``; ``None`` removes the key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_traits(merged[key], value)
        else:
            merged[key] = value
    return {k: v for k, v in merged.items() if not (isinstance(v, dict) and not v)}


def _identifiers(traits: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for id_type, (group, name) in _IDENTIFIER_TRAITS.items():
        value = (traits.get(group) or {}).get(name) if isinstance(traits.get(group), dict) else None
        if isinstance(value, str) and value.strip():
            found.append((id_type, normalize_identifier(id_type, value)))
    return found


# --- request bodies --------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ProfileBody(_Strict):
    traits: dict[str, dict[str, Any] | None]


class _ProfileCreate(_Strict):
    traits: dict[str, dict[str, Any]]


class _LookupBody(_Strict):
    idType: str = Field(min_length=2, max_length=30)
    value: str = Field(min_length=1, max_length=255)


class _ObservationIn(_Strict):
    content: str = Field(min_length=1, max_length=4096)
    source: str = Field(min_length=1, max_length=100, pattern=_SOURCE.pattern)
    occurredAt: str
    conversationIds: list[str] | None = Field(default=None, max_length=10)


class _ObservationsBody(_Strict):
    observations: list[_ObservationIn] = Field(min_length=1, max_length=10)


class _SummaryIn(_Strict):
    content: str = Field(min_length=1, max_length=4096)
    conversationId: str = Field(min_length=1, max_length=100)
    occurredAt: str
    source: str | None = Field(default=None, max_length=100)


class _SummariesBody(_Strict):
    summaries: list[_SummaryIn] = Field(min_length=1, max_length=10)


class _RecallBody(_Strict):
    conversationId: str | None = None
    query: str | None = Field(default=None, max_length=1024)
    beginDate: str | None = None
    endDate: str | None = None
    communicationsLimit: int | None = Field(default=None, ge=0, le=100)
    observationsLimit: int | None = Field(default=None, ge=0, le=100)
    summariesLimit: int | None = Field(default=None, ge=0, le=100)
    relevanceThreshold: float | None = Field(default=None, ge=0, le=1)


def _check_traits(traits: dict[str, Any]) -> None:
    if len(traits) > 50:
        raise bad_request(f"traits: at most 50 trait groups, got {len(traits)}")
    for group, values in traits.items():
        if not group:
            raise bad_request("traits: a trait group name cannot be empty")
        if isinstance(values, dict) and len(values) > 99:
            raise bad_request(f"traits.{group}: at most 99 traits per group")


# --- the product -----------------------------------------------------------------------------


class ProfileStore:
    """Stores, profiles and identity resolution, observations and summaries, in SQLite."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.db: Database = ctx.db

    # stores

    def ensure_default_store(self) -> None:
        store_id = self.ctx.identity.memory_store_id
        if self.db.one("SELECT 1 FROM mem_stores WHERE id = ?", (store_id,)) is None:
            now = iso(utcnow())
            self.db.execute(
                "INSERT INTO mem_stores VALUES (?, ?, ?, ?, ?)",
                (store_id, "sandbox-store", "The sandbox's default memory store", now, now),
            )

    def store_json(self, store_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM mem_stores WHERE id = ?", (store_id,))
        if row is None:
            raise not_found("Store", store_id)
        return {
            "id": row["id"],
            "displayName": row["display_name"],
            "description": row["description"],
            "status": "ACTIVE",
            "intelligenceServiceId": self.ctx.identity.intelligence_configuration_id,
            "version": 1,
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
        }

    def require_store(self, store_id: str) -> None:
        if self.db.one("SELECT 1 FROM mem_stores WHERE id = ?", (store_id,)) is None:
            raise not_found("Store", store_id)

    # profiles

    def profile_row(self, store_id: str, profile_id: str, *, follow: bool = True) -> Any:
        """A profile's row; a merged profile's canonical row when ``follow``."""
        self.require_store(store_id)
        row = self.db.one(
            "SELECT * FROM mem_profiles WHERE store_id = ? AND id = ?", (store_id, profile_id)
        )
        if row is None:
            raise not_found("Profile", profile_id)
        hops = 0
        while follow and row["merged_into"] and hops < 10:
            row = self.db.one("SELECT * FROM mem_profiles WHERE id = ?", (row["merged_into"],))
            hops += 1
            if row is None:
                raise not_found("Profile", profile_id)
        return row

    def canonical_id(self, store_id: str, profile_id: str) -> str:
        return str(self.profile_row(store_id, profile_id)["id"])

    def find_profiles(self, store_id: str, id_type: str, value: str) -> list[str]:
        rows = self.db.query(
            "SELECT i.profile_id FROM mem_identifiers i JOIN mem_profiles p ON p.id = i.profile_id"
            " WHERE i.store_id = ? AND i.id_type = ? AND i.value = ? ORDER BY p.seq",
            (store_id, id_type, value),
        )
        return [row["profile_id"] for row in rows]

    def resolve_or_create(self, store_id: str, traits: dict[str, Any]) -> str:
        """Identity resolution: the earliest profile sharing an identifier, or a new one."""
        identifiers = _identifiers(traits)
        if not identifiers:
            raise bad_request(
                "traits: at least one identifier trait is required (Contact.phone or Contact.email)"
            )
        matches: list[str] = []
        for id_type, value in identifiers:
            matches += [m for m in self.find_profiles(store_id, id_type, value) if m not in matches]
        if matches:
            self.patch_traits(store_id, matches[0], traits)
            return self.canonical_id(store_id, matches[0])
        profile_id = ttid("mem_profile")
        now = iso(utcnow())
        clean = merge_traits({}, traits)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO mem_profiles (id, store_id, created_at, updated_at, traits)"
                " VALUES (?, ?, ?, ?, ?)",
                (profile_id, store_id, now, now, dumps(clean)),
            )
            for id_type, value in identifiers:
                conn.execute(
                    "INSERT OR IGNORE INTO mem_identifiers VALUES (?, ?, ?, ?)",
                    (store_id, id_type, value, profile_id),
                )
        return profile_id

    def patch_traits(self, store_id: str, profile_id: str, patch: dict[str, Any]) -> None:
        """Deep-merge ``patch`` into the traits; an identifier trait that changes moves the
        identifier, and one that another profile holds merges the two profiles."""
        row = self.profile_row(store_id, profile_id)
        profile_id = row["id"]
        before = dict(_identifiers(loads(row["traits"])))
        traits = merge_traits(loads(row["traits"]), patch)
        after = dict(_identifiers(traits))
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE mem_profiles SET traits = ?, updated_at = ? WHERE id = ?",
                (dumps(traits), iso(utcnow()), profile_id),
            )
            for id_type, old in before.items():
                if after.get(id_type) != old:
                    conn.execute(
                        "DELETE FROM mem_identifiers WHERE profile_id = ? AND id_type = ?"
                        " AND value = ?",
                        (profile_id, id_type, old),
                    )
            for id_type, value in after.items():
                conn.execute(
                    "INSERT OR IGNORE INTO mem_identifiers VALUES (?, ?, ?, ?)",
                    (store_id, id_type, value, profile_id),
                )
        owners = {profile_id}
        for id_type, value in after.items():
            owners.update(self.find_profiles(store_id, id_type, value))
        if len(owners) > 1:
            self.merge_profiles(store_id, owners)

    def merge_profiles(self, store_id: str, profile_ids: set[str]) -> str:
        """Merge profiles sharing an identifier into the earliest (the canonical one).

        Traits merge oldest first (newer values win); identifiers, observations, summaries and
        conversation links move; the others answer 301 with the canonical profile's URL.
        """
        marks = ",".join("?" for _ in profile_ids)
        rows = self.db.query(
            f"SELECT * FROM mem_profiles WHERE id IN ({marks}) ORDER BY seq", tuple(profile_ids)
        )
        canonical, others = rows[0], rows[1:]
        traits: dict[str, Any] = {}
        for row in rows:
            traits = merge_traits(traits, loads(row["traits"]))
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE mem_profiles SET traits = ?, updated_at = ? WHERE id = ?",
                (dumps(traits), iso(utcnow()), canonical["id"]),
            )
            for other in others:
                conn.execute(
                    "INSERT OR IGNORE INTO mem_identifiers (store_id, id_type, value, profile_id)"
                    " SELECT store_id, id_type, value, ? FROM mem_identifiers WHERE profile_id = ?",
                    (canonical["id"], other["id"]),
                )
                for table in ("mem_observations", "mem_summaries", "mem_participants"):
                    conn.execute(
                        f"UPDATE {table} SET profile_id = ? WHERE profile_id = ?",
                        (canonical["id"], other["id"]),
                    )
                conn.execute("DELETE FROM mem_identifiers WHERE profile_id = ?", (other["id"],))
                conn.execute(
                    "UPDATE mem_profiles SET merged_into = ? WHERE id = ? OR merged_into = ?",
                    (canonical["id"], other["id"], other["id"]),
                )
        return str(canonical["id"])

    async def reset(self) -> None:
        """Forget profiles and everything about them; keep the stores."""
        with self.db.transaction() as conn:
            for table in _DATA_TABLES:
                conn.execute(f"DELETE FROM {table}")

    def delete_profile(self, store_id: str, profile_id: str) -> None:
        profile_id = self.canonical_id(store_id, profile_id)
        with self.db.transaction() as conn:
            for table in ("mem_identifiers", "mem_observations", "mem_summaries"):
                conn.execute(f"DELETE FROM {table} WHERE profile_id = ?", (profile_id,))
            conn.execute(
                "DELETE FROM mem_profiles WHERE id = ? OR merged_into = ?", (profile_id, profile_id)
            )

    async def resolve_profile(self, store_id: str, channel: str, address: str) -> str | None:
        """The profile a customer address belongs to, created if none matches.

        ``None`` for addresses that are no identifier (chat identities), for an unknown store,
        and while Memory has an outage injected.
        """
        rule = self.ctx.faults.rules().get("memory")
        if rule is not None and rule.outage:
            return None
        identifier = address_identifier(channel, address)
        if identifier is None:
            return None
        if self.db.one("SELECT 1 FROM mem_stores WHERE id = ?", (store_id,)) is None:
            return None
        id_type, value = identifier
        matches = self.find_profiles(store_id, id_type, value)
        if matches:
            return matches[0]
        return self.resolve_or_create(store_id, {"Contact": {id_type: value}})

    # observations and summaries

    def insert_observations(
        self, store_id: str, profile_id: str, items: Sequence[_ObservationIn]
    ) -> list[str]:
        now = iso(utcnow())
        ids = []
        with self.db.transaction() as conn:
            for item in items:
                observation_id = ttid("mem_observation")
                occurred = iso(parse_time(item.occurredAt, "occurredAt"))
                conn.execute(
                    "INSERT INTO mem_observations (id, store_id, profile_id, content, source,"
                    " occurred_at, created_at, updated_at, conversation_ids)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        observation_id,
                        store_id,
                        profile_id,
                        item.content,
                        item.source,
                        occurred,
                        now,
                        now,
                        dumps(item.conversationIds) if item.conversationIds else None,
                    ),
                )
                ids.append(observation_id)
        return ids

    def insert_summaries(
        self, store_id: str, profile_id: str, items: Sequence[_SummaryIn]
    ) -> list[str]:
        now = iso(utcnow())
        ids = []
        with self.db.transaction() as conn:
            for item in items:
                summary_id = ttid("mem_summary")
                conn.execute(
                    "INSERT INTO mem_summaries (id, store_id, profile_id, conversation_id, content,"
                    " source, occurred_at, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        summary_id,
                        store_id,
                        profile_id,
                        item.conversationId,
                        item.content,
                        item.source,
                        iso(parse_time(item.occurredAt, "occurredAt")),
                        now,
                        now,
                    ),
                )
                ids.append(summary_id)
        return ids

    async def add_summary(
        self, store_id: str, profile_id: str, conversation_id: str, content: str, source: str
    ) -> str | None:
        """Write one summary (skipped if the same text exists for that conversation)."""
        canonical = self._canonical_or_none(store_id, profile_id)
        if canonical is None:
            return None
        profile_id = canonical
        duplicate = self.db.one(
            "SELECT id FROM mem_summaries WHERE profile_id = ? AND conversation_id = ?"
            " AND content = ?",
            (profile_id, conversation_id, content[:4096]),
        )
        if duplicate is not None:
            return str(duplicate["id"])
        item = _SummaryIn(
            content=content[:4096],
            conversationId=conversation_id,
            occurredAt=iso(utcnow()),
            source=source,
        )
        return self.insert_summaries(store_id, profile_id, [item])[0]

    async def add_observations(
        self,
        store_id: str,
        profile_id: str,
        contents: Sequence[str],
        conversation_id: str,
        source: str,
    ) -> list[str]:
        """Write observations (texts already recorded for that profile are skipped)."""
        canonical = self._canonical_or_none(store_id, profile_id)
        if canonical is None:
            return []
        profile_id = canonical
        existing = {
            row["content"]
            for row in self.db.query(
                "SELECT content FROM mem_observations WHERE profile_id = ?", (profile_id,)
            )
        }
        now = iso(utcnow())
        items = [
            _ObservationIn(
                content=text[:4096],
                source=source,
                occurredAt=now,
                conversationIds=[conversation_id],
            )
            for text in dict.fromkeys(contents)
            if text and text[:4096] not in existing
        ]
        return self.insert_observations(store_id, profile_id, items) if items else []

    def _canonical_or_none(self, store_id: str, profile_id: str) -> str | None:
        try:
            return self.canonical_id(store_id, profile_id)
        except TwilioError:
            return None


class MemoryService(ProfileStore):
    """Memory's state and the operations the routes and other products share: the profile
    store, plus Memory's own copy of communications and Recall over all of it."""

    def remember_participant(self, participant: dict[str, Any]) -> None:
        participant_id = participant.get("id")
        conversation_id = participant.get("conversationId")
        if not isinstance(participant_id, str) or not isinstance(conversation_id, str):
            return
        self.db.execute(
            "INSERT INTO mem_participants (id, conversation_id, profile_id, doc)"
            " VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id, doc = excluded.doc",
            (
                participant_id,
                conversation_id,
                str_or_none(participant.get("profileId")),
                dumps(participant),
            ),
        )

    def remember_communication(
        self, communication: dict[str, Any], conversation: dict[str, Any] | None
    ) -> None:
        communication_id = communication.get("id")
        conversation = obj(conversation)
        conversation_id = communication.get("conversationId") or conversation.get("id")
        if not isinstance(communication_id, str) or not isinstance(conversation_id, str):
            return
        for participant in items(conversation.get("participants")):
            self.remember_participant({"conversationId": conversation_id, **participant})
        self.db.execute(
            "INSERT INTO mem_communications (id, conversation_id, doc) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            (communication_id, conversation_id, dumps(communication)),
        )

    def _participant(self, participant_id: str | None) -> dict[str, Any]:
        if not participant_id:
            return {}
        row = self.db.one("SELECT doc FROM mem_participants WHERE id = ?", (participant_id,))
        return loads(row["doc"]) if row is not None else {}

    def _person(self, party: dict[str, Any], with_status: bool) -> dict[str, Any]:
        participant = self._participant(party.get("participantId"))
        person: dict[str, Any] = {
            "id": party.get("participantId") or participant.get("id"),
            "name": participant.get("name") or party.get("name") or party.get("address") or "",
            "type": participant.get("type"),
            "profileId": participant.get("profileId"),
            "address": party.get("address"),
            "channel": party.get("channel"),
        }
        if with_status and party.get("deliveryStatus"):
            person["deliveryStatus"] = party["deliveryStatus"]
        return {k: v for k, v in person.items() if v is not None}

    def recall_communication(self, doc: dict[str, Any]) -> dict[str, Any]:
        content = obj(doc.get("content"))
        item: dict[str, Any] = {
            "id": doc["id"],
            "author": self._person(obj(doc.get("author")), with_status=False),
            "content": {"text": content.get("text")} if content.get("text") is not None else {},
            "createdAt": doc.get("createdAt"),
            "recipients": [self._person(r, with_status=True) for r in items(doc.get("recipients"))],
        }
        if doc.get("channelId"):
            item["channelId"] = doc["channelId"]
        if doc.get("updatedAt"):
            item["updatedAt"] = doc["updatedAt"]
        return item

    def conversation_texts(self, conversation_id: str, limit: int) -> list[str]:
        rows = self.db.query(
            "SELECT doc FROM mem_communications WHERE conversation_id = ?"
            " ORDER BY seq DESC LIMIT ?",
            (conversation_id, limit),
        )
        texts = []
        for row in reversed(rows):
            text = obj(loads(row["doc"]).get("content")).get("text")
            if isinstance(text, str) and text.strip():
                texts.append(text)
        return texts

    def recent_communications(
        self, profile_id: str, conversation_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The last ``limit`` communications, oldest first: of ``conversation_id`` if given,
        else of every conversation the profile took part in."""
        if limit <= 0:
            return []
        if conversation_id:
            rows = self.db.query(
                "SELECT doc FROM mem_communications WHERE conversation_id = ?"
                " ORDER BY seq DESC LIMIT ?",
                (conversation_id, limit),
            )
        else:
            rows = self.db.query(
                "SELECT doc FROM mem_communications WHERE conversation_id IN"
                " (SELECT conversation_id FROM mem_participants WHERE profile_id = ?)"
                " ORDER BY seq DESC LIMIT ?",
                (profile_id, limit),
            )
        return [self.recall_communication(loads(row["doc"])) for row in reversed(rows)]

    # recall

    def recall(self, store_id: str, profile_id: str, body: _RecallBody) -> dict[str, Any]:
        started = time.perf_counter()
        profile_id = self.canonical_id(store_id, profile_id)
        begin = parse_time(body.beginDate, "beginDate") if body.beginDate else None
        end = parse_time(body.endDate, "endDate") if body.endDate else None
        if begin and end and begin >= end:
            raise bad_request("beginDate must be before endDate")
        observations = [
            _observation_json(row)
            for row in self.db.query(
                "SELECT * FROM mem_observations WHERE store_id = ? AND profile_id = ?"
                " ORDER BY occurred_at DESC, seq DESC",
                (store_id, profile_id),
            )
        ]
        summaries = [
            _summary_json(row)
            for row in self.db.query(
                "SELECT * FROM mem_summaries WHERE store_id = ? AND profile_id = ?"
                " ORDER BY occurred_at DESC, seq DESC",
                (store_id, profile_id),
            )
        ]
        observations = [o for o in observations if _within(o["occurredAt"], begin, end)]
        summaries = [s for s in summaries if _within(s["occurredAt"], begin, end)]
        observations_limit = 20 if body.observationsLimit is None else body.observationsLimit
        summaries_limit = 5 if body.summariesLimit is None else body.summariesLimit
        threshold = body.relevanceThreshold or 0.0
        query = (body.query or "").strip()
        if not query and body.conversationId:
            texts = self.conversation_texts(body.conversationId, _INFERRED_QUERY_MESSAGES)
            query = " ".join(texts)
        if query:
            observations = _ranked(observations, query, threshold, observations_limit)
            summaries = _ranked(summaries, query, threshold, summaries_limit)
        else:
            observations = observations[:observations_limit]
            summaries = summaries[:summaries_limit]
        communications = self.recent_communications(
            profile_id, body.conversationId, body.communicationsLimit or 0
        )
        elapsed = round((time.perf_counter() - started) * 1000)
        return {
            "observations": observations,
            "summaries": summaries,
            "communications": communications,
            "meta": {"queryTime": elapsed},
        }


def _within(moment: str, begin: datetime | None, end: datetime | None) -> bool:
    if begin is None and end is None:
        return True
    when = parse_time(moment, "occurredAt")
    return (begin is None or when >= begin) and (end is None or when < end)


def _ranked(
    items: list[dict[str, Any]], query: str, threshold: float, limit: int
) -> list[dict[str, Any]]:
    index = BM25([item["content"] for item in items])
    ranked = []
    for scored in index.rank(query, threshold=threshold, limit=limit):
        ranked.append({**items[scored.index], "score": scored.score})
    return ranked


def _observation_json(row: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": row["id"],
        "content": row["content"],
        "source": row["source"],
        "occurredAt": row["occurred_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }
    if row["conversation_ids"]:
        item["conversationIds"] = loads(row["conversation_ids"])
    return item


def _summary_json(row: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": row["id"],
        "conversationId": row["conversation_id"],
        "content": row["content"],
        "occurredAt": row["occurred_at"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }
    if row["source"]:
        item["source"] = row["source"]
    return item


def _list_page(
    service: MemoryService,
    table: str,
    key: str,
    render: Any,
    store_id: str,
    profile_id: str,
    filters: dict[str, str | None],
    order_by: str | None,
    page_size: int | None,
    page_token: str | None,
) -> dict[str, Any]:
    profile_id = service.canonical_id(store_id, profile_id)
    offset, size = page_bounds(page_size, page_token)
    order = (order_by or "DESC").upper()
    if order not in ("ASC", "DESC"):
        raise bad_request(f"orderBy must be ASC or DESC, got {order_by!r}")
    clauses = ["store_id = ?", "profile_id = ?"]
    params: list[Any] = [store_id, profile_id]
    if filters.get("source"):
        clauses.append("source = ?")
        params.append(filters["source"])
    if filters.get("createdAfter"):
        clauses.append("created_at > ?")
        params.append(iso(parse_time(filters["createdAfter"] or "", "createdAfter")))
    if filters.get("createdBefore"):
        clauses.append("created_at < ?")
        params.append(iso(parse_time(filters["createdBefore"] or "", "createdBefore")))
    if filters.get("conversationId"):
        column = "conversation_id" if table == "mem_summaries" else "conversation_ids"
        if column == "conversation_id":
            clauses.append("conversation_id = ?")
            params.append(filters["conversationId"])
        else:
            clauses.append("conversation_ids LIKE ?")
            params.append(f'%"{filters["conversationId"]}"%')
    where = " AND ".join(clauses)
    total_row = service.db.one(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", params)
    total = int(total_row["n"]) if total_row is not None else 0
    rows = service.db.query(
        f"SELECT * FROM {table} WHERE {where} ORDER BY created_at {order}, seq {order}"
        " LIMIT ? OFFSET ?",
        [*params, size, offset],
    )
    return page_body(key, [render(row) for row in rows], offset, size, total)


def _accepted(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=202)


def install(ctx: SandboxContext) -> None:
    """Add Memory v1 under ``/memory``, its services, and its copy of communications."""
    ctx.db.migrate("memory-1", _SCHEMA)
    service = MemoryService(ctx)
    service.ensure_default_store()
    ctx.products.memory = service
    on_reset(ctx, service.reset)

    async def on_communication(payload: dict[str, Any]) -> None:
        communication = payload.get("communication")
        if isinstance(communication, dict):
            service.remember_communication(communication, payload.get("conversation"))

    async def on_participant(payload: dict[str, Any]) -> None:
        participant = payload.get("participant")
        if isinstance(participant, dict):
            service.remember_participant(participant)

    async def on_conversation(payload: dict[str, Any]) -> None:
        conversation = obj(payload.get("conversation"))
        for participant in items(conversation.get("participants")):
            service.remember_participant({"conversationId": conversation.get("id"), **participant})

    ctx.bus.subscribe("communication.created", on_communication)
    ctx.bus.subscribe("participant.added", on_participant)
    ctx.bus.subscribe("participant.updated", on_participant)
    ctx.bus.subscribe("conversation.created", on_conversation)
    ctx.bus.subscribe("conversation.updated", on_conversation)
    ctx.add_product("memory", _router(service))
    ctx.db.migrate("memory-admin-1", memory_admin.SCHEMA)
    admin = memory_admin.MemoryAdmin(service)
    encoders = {"observations": _observation_json, "summaries": _summary_json}
    ctx.add_product("memory", memory_admin.router(admin, encoders))
    ctx.add_control(_control_router(service))


def _router(service: MemoryService) -> APIRouter:
    router = APIRouter(tags=["memory"])
    profile_path = "/v1/Stores/{store_id}/Profiles/{profile_id}"

    @router.get("/v1/ControlPlane/Stores")
    async def list_stores(
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        offset, size = page_bounds(page_size, page_token)
        rows = service.db.query("SELECT id FROM mem_stores ORDER BY created_at, id")
        stores = [row["id"] for row in rows]  # Twilio lists store ids, not stores
        return page_body("stores", stores[offset : offset + size], offset, size, len(stores))

    @router.get("/v1/ControlPlane/Stores/{store_id}")
    async def get_store(store_id: str) -> dict[str, Any]:
        return service.store_json(store_id)

    @router.post("/v1/Stores/{store_id}/Profiles")
    async def create_profile(store_id: str, request: Request) -> JSONResponse:
        service.require_store(store_id)
        body = validate(_ProfileCreate, await json_object(request))
        _check_traits(body.traits)
        profile_id = service.resolve_or_create(store_id, body.traits)
        return _accepted({"message": PROFILE_ACCEPTED, "id": profile_id})

    @router.get("/v1/Stores/{store_id}/Profiles")
    async def list_profiles(
        store_id: str,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        service.require_store(store_id)
        offset, size = page_bounds(page_size, page_token)
        rows = service.db.query(
            "SELECT id FROM mem_profiles WHERE store_id = ? ORDER BY seq LIMIT ? OFFSET ?",
            (store_id, size, offset),
        )
        total = service.db.one(
            "SELECT COUNT(*) AS n FROM mem_profiles WHERE store_id = ?", (store_id,)
        )
        count = int(total["n"]) if total is not None else 0
        return page_body("profiles", [row["id"] for row in rows], offset, size, count)

    @router.post("/v1/Stores/{store_id}/Profiles/Lookup")
    async def lookup(store_id: str, request: Request) -> dict[str, Any]:
        service.require_store(store_id)
        body = validate(_LookupBody, await json_object(request))
        id_type = body.idType.strip().lower()
        value = normalize_identifier(id_type, body.value)
        return {
            "normalizedValue": value,
            "profiles": service.find_profiles(store_id, id_type, value),
        }

    @router.get(profile_path)
    async def get_profile(
        store_id: str,
        profile_id: str,
        request: Request,
        trait_groups: Annotated[str | None, Query(alias="traitGroups", max_length=256)] = None,
    ) -> JSONResponse:
        row = service.profile_row(store_id, profile_id, follow=False)
        if row["merged_into"]:
            canonical = service.canonical_id(store_id, profile_id)
            location = f"{request.base_url}memory/v1/Stores/{store_id}/Profiles/{canonical}"
            return JSONResponse(
                {"message": "This resource has moved.", "uri": location},
                status_code=301,
                headers={"Location": location, "Canonical-Profile-Id": canonical},
            )
        traits: dict[str, Any] = loads(row["traits"])
        if trait_groups:
            wanted = {name.strip() for name in trait_groups.split(",") if name.strip()}
            traits = {group: values for group, values in traits.items() if group in wanted}
        body = {"id": row["id"], "createdAt": row["created_at"], "traits": traits}
        return JSONResponse(body, headers={"Canonical-Profile-Id": row["id"]})

    @router.patch(profile_path)
    async def patch_profile(store_id: str, profile_id: str, request: Request) -> JSONResponse:
        profile_id = service.canonical_id(store_id, profile_id)
        body = validate(_ProfileBody, await json_object(request))
        _check_traits(body.traits)
        service.patch_traits(store_id, profile_id, body.traits)
        return _accepted({"message": TRAITS_ACCEPTED})

    @router.delete(profile_path)
    async def delete_profile(store_id: str, profile_id: str) -> JSONResponse:
        service.delete_profile(store_id, profile_id)
        return _accepted({"message": "Profile accepted for deletion."})

    @router.get(profile_path + "/Traits")
    async def list_traits(
        store_id: str,
        profile_id: str,
        trait_groups: Annotated[str | None, Query(alias="traitGroups")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        row = service.profile_row(store_id, profile_id)
        offset, size = page_bounds(page_size, page_token)
        wanted = {g.strip() for g in trait_groups.split(",")} if trait_groups else None
        traits = [
            {"name": name, "value": value, "traitGroup": group, "timestamp": row["updated_at"]}
            for group, values in sorted(loads(row["traits"]).items())
            if wanted is None or group in wanted
            for name, value in sorted(values.items())
        ]
        return page_body("traits", traits[offset : offset + size], offset, size, len(traits))

    _profile_items(
        router,
        service,
        profile_path + "/Observations",
        _ItemKind(
            resource="Observation",
            table="mem_observations",
            key="observations",
            to_json=_observation_json,
            accepted=OBSERVATIONS_ACCEPTED,
            deleted="Observation accepted for deletion.",
            body=_ObservationsBody,
            insert=service.insert_observations,
        ),
    )
    _profile_items(
        router,
        service,
        profile_path + "/ConversationSummaries",
        _ItemKind(
            resource="ConversationSummary",
            table="mem_summaries",
            key="summaries",
            to_json=_summary_json,
            accepted=SUMMARIES_ACCEPTED,
            deleted="Summary accepted for deletion.",
            body=_SummariesBody,
            insert=service.insert_summaries,
        ),
    )

    @router.post(profile_path + "/Recall")
    async def recall(store_id: str, profile_id: str, request: Request) -> dict[str, Any]:
        profile_id = service.canonical_id(store_id, profile_id)
        body = validate(_RecallBody, await json_object(request))
        return service.recall(store_id, profile_id, body)

    return router


@dataclass(frozen=True)
class _ItemKind:
    """Observations or conversation summaries: the same four routes over their own table."""

    resource: str
    table: str
    key: str
    to_json: Callable[[Any], dict[str, Any]]
    accepted: str
    deleted: str
    body: type[_ObservationsBody] | type[_SummariesBody]
    insert: Callable[[str, str, Any], list[str]]


def _profile_items(router: APIRouter, service: MemoryService, path: str, kind: _ItemKind) -> None:
    """``POST``/``GET`` on ``path`` and ``GET``/``DELETE`` on ``path/{id}`` for one item kind."""
    single = kind.key.removesuffix("s")

    async def create(store_id: str, profile_id: str, request: Request) -> JSONResponse:
        profile_id = service.canonical_id(store_id, profile_id)
        body = validate(kind.body, await json_object(request))
        items = getattr(body, kind.key)
        for i, item in enumerate(items):
            parse_time(item.occurredAt, f"{kind.key}.{i}.occurredAt")
        kind.insert(store_id, profile_id, items)
        return _accepted({"message": kind.accepted})

    async def list_items(
        store_id: str,
        profile_id: str,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
        order_by: Annotated[str | None, Query(alias="orderBy")] = None,
        source: str | None = None,
        created_after: Annotated[str | None, Query(alias="createdAfter")] = None,
        created_before: Annotated[str | None, Query(alias="createdBefore")] = None,
        conversation_id: Annotated[str | None, Query(alias="conversationId")] = None,
    ) -> dict[str, Any]:
        filters = {
            "source": source,
            "createdAfter": created_after,
            "createdBefore": created_before,
            "conversationId": conversation_id,
        }
        return _list_page(
            service,
            kind.table,
            kind.key,
            kind.to_json,
            store_id,
            profile_id,
            filters,
            order_by,
            page_size,
            page_token,
        )

    async def get_item(store_id: str, profile_id: str, item_id: str) -> Any:
        profile_id = service.canonical_id(store_id, profile_id)
        row = service.db.one(
            f"SELECT * FROM {kind.table} WHERE profile_id = ? AND id = ?",
            (profile_id, item_id),
        )
        if row is None:
            raise not_found(kind.resource, item_id)
        return kind.to_json(row)

    async def delete_item(store_id: str, profile_id: str, item_id: str) -> Any:
        profile_id = service.canonical_id(store_id, profile_id)
        changed = service.db.execute(
            f"DELETE FROM {kind.table} WHERE profile_id = ? AND id = ?",
            (profile_id, item_id),
        )
        if not changed:
            raise not_found(kind.resource, item_id)
        return _accepted({"message": kind.deleted})

    router.add_api_route(path, create, methods=["POST"], name=f"create_{kind.key}")
    router.add_api_route(path, list_items, methods=["GET"], name=f"list_{kind.key}")
    item_path = path + "/{item_id}"
    router.add_api_route(item_path, get_item, methods=["GET"], name=f"get_{single}")
    router.add_api_route(item_path, delete_item, methods=["DELETE"], name=f"delete_{single}")


def _control_router(service: MemoryService) -> APIRouter:
    router = APIRouter(prefix="/memory", tags=["control"])

    @router.get("/profiles")
    async def profiles(store_id: Annotated[str | None, Query(alias="storeId")] = None) -> Any:
        """Every profile with its traits (inspection), optionally of one store."""
        store = store_id or service.ctx.identity.memory_store_id
        rows = service.db.query(
            "SELECT * FROM mem_profiles WHERE store_id = ? ORDER BY seq", (store,)
        )
        return {
            "storeId": store,
            "profiles": [
                {"id": r["id"], "createdAt": r["created_at"], "traits": loads(r["traits"])}
                for r in rows
            ],
        }

    @router.post("/resolve")
    async def resolve(request: Request) -> Response:
        """Identity resolution as the Orchestrator does it: ``{channel, address, storeId?}``."""
        body = await json_object(request)
        channel, address = body.get("channel"), body.get("address")
        if not isinstance(channel, str) or not isinstance(address, str):
            raise TwilioError(400, "channel and address are required strings")
        store = body.get("storeId") or service.ctx.identity.memory_store_id
        profile_id = await service.resolve_profile(str(store), channel, address)
        return JSONResponse({"profileId": profile_id})

    return router
