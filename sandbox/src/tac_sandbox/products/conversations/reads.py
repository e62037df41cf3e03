"""Reading conversations, participants, communications and actions; events out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tac_sandbox._db import loads
from tac_sandbox._errors import not_found
from tac_sandbox.products.conversations._shared import (
    CONVERSATION_SETTINGS,
    _grouping_key,
)
from tac_sandbox.products.conversations.configurations import Configurations


class Reads(Configurations):
    """Reading conversations, participants, communications and actions; events out."""

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT doc FROM conv_conversations WHERE id = ?", (conversation_id,))
        if row is None:
            raise not_found("Conversation", conversation_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def participants(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT doc FROM conv_participants WHERE conversation_id = ? ORDER BY rowid",
            (conversation_id,),
        )
        return [loads(r["doc"]) for r in rows]

    def with_participants(self, conversation: dict[str, Any]) -> dict[str, Any]:
        """The conversation as the API returns it: its participants, and its complete
        ``configuration`` (the Configuration's settings under its own overrides)."""
        effective = self.effective_configuration(conversation)
        configuration = {k: effective[k] for k in CONVERSATION_SETTINGS if k in effective}
        return {
            **conversation,
            "configuration": configuration,
            "participants": self.participants(conversation["id"]),
        }

    def conversations(
        self,
        statuses: Iterable[str] = (),
        channel_id: str | None = None,
        channel: str | None = None,
    ) -> list[dict[str, Any]]:
        wanted = set(statuses)
        rows = self.db.query("SELECT doc, channel, status FROM conv_conversations ORDER BY rowid")
        docs = [
            loads(r["doc"])
            for r in rows
            if (not wanted or r["status"] in wanted)
            and (channel is None or r["channel"] == channel)
        ]
        if channel_id is not None:
            ids = self._conversations_with_channel_id(channel_id)
            docs = [d for d in docs if d["id"] in ids]
        return docs

    def _conversations_with_channel_id(self, channel_id: str) -> set[str]:
        rows = self.db.query(
            "SELECT DISTINCT conversation_id FROM conv_communications"
            " WHERE channel_id = ? OR resource_id = ?",
            (channel_id, channel_id),
        )
        ids = {r["conversation_id"] for r in rows}
        for row in self.db.query(
            "SELECT conversation_id, doc FROM conv_participants WHERE doc LIKE ?",
            (f"%{channel_id}%",),
        ):
            if any(a.get("channelId") == channel_id for a in loads(row["doc"])["addresses"]):
                ids.add(row["conversation_id"])
        return ids

    def find_grouped(
        self,
        configuration_id: str,
        grouping: str,
        participants: list[dict[str, Any]],
        statuses: tuple[str, ...],
    ) -> dict[str, Any] | None:
        """A conversation in ``statuses`` that groups the same participants, if any."""
        key = _grouping_key(grouping, participants)
        if key is None:
            return None
        marks = ",".join("?" for _ in statuses)
        candidates: set[str] | None = None
        for kind, value in sorted(key):  # every element must match: intersect
            if kind == "profile":
                where, args = "p.profile_id = ?", [value]
            elif kind == "address":
                where, args = "p.bare = ?", [value]
            else:
                where, args = "p.channel = ? AND p.address = ?", [kind, value]
            rows = self.db.query(
                "SELECT DISTINCT p.conversation_id FROM conv_party p JOIN conv_conversations c"
                f" ON c.id = p.conversation_id WHERE c.configuration_id = ?"
                f" AND c.status IN ({marks}) AND {where}",
                (configuration_id, *statuses, *args),
            )
            hits = {r[0] for r in rows}
            candidates = hits if candidates is None else candidates & hits
            if not candidates:
                return None
        assert candidates is not None
        ids = sorted(candidates)
        by_conversation: dict[str, list[dict[str, Any]]] = {}
        for row in self.db.query(
            "SELECT conversation_id, doc FROM conv_participants"
            f" WHERE conversation_id IN ({','.join('?' for _ in ids)}) ORDER BY rowid",
            ids,
        ):
            by_conversation.setdefault(row["conversation_id"], []).append(loads(row["doc"]))
        matches = [
            cid
            for cid, members in by_conversation.items()
            if _grouping_key(grouping, members) == key
        ]
        if not matches:
            return None
        latest = self.db.one(
            f"SELECT doc FROM conv_conversations WHERE id IN ({','.join('?' for _ in matches)})"
            " ORDER BY rowid DESC",
            matches,
        )
        found: dict[str, Any] | None = loads(latest["doc"]) if latest is not None else None
        return found

    def participant(self, conversation_id: str, participant_id: str) -> dict[str, Any]:
        row = self.db.one(
            "SELECT doc FROM conv_participants WHERE id = ? AND conversation_id = ?",
            (participant_id, conversation_id),
        )
        if row is None:
            raise not_found("Participant", participant_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def communications(
        self, conversation_id: str, channel_id: str | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT doc FROM conv_communications WHERE conversation_id = ? AND rowid > ?"
            " AND (? IS NULL OR channel_id = ? OR resource_id = ?) ORDER BY rowid",
            (conversation_id, after, channel_id, channel_id, channel_id),
        )
        return [loads(r["doc"]) for r in rows]

    def communications_with_seq(
        self, conversation_id: str, after: int = 0
    ) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.query(
            "SELECT rowid AS seq, doc FROM conv_communications"
            " WHERE conversation_id = ? AND rowid > ? ORDER BY rowid",
            (conversation_id, after),
        )
        return [(int(r["seq"]), loads(r["doc"])) for r in rows]

    def communication(self, conversation_id: str, communication_id: str) -> dict[str, Any]:
        row = self.db.one(
            "SELECT doc FROM conv_communications WHERE id = ? AND conversation_id = ?",
            (communication_id, conversation_id),
        )
        if row is None:
            raise not_found("Communication", communication_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def communication_seq(self, communication_id: str) -> int:
        row = self.db.one("SELECT rowid FROM conv_communications WHERE id = ?", (communication_id,))
        return int(row[0]) if row is not None else 0

    def replies_to(
        self, channel: str, address: str, after: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """Communications addressed to ``address`` on ``channel`` after cursor ``after``."""
        rows = self.db.query(
            "SELECT rowid AS seq, doc FROM conv_communications WHERE rowid > ? AND doc LIKE ?"
            " ORDER BY rowid",
            (after, f"%{address}%"),
        )
        found = []
        for row in rows:
            doc = loads(row["doc"])
            if any(r["address"] == address and r["channel"] == channel for r in doc["recipients"]):
                found.append((int(row["seq"]), doc))
        return found

    def action(self, conversation_id: str, action_id: str) -> dict[str, Any]:
        row = self.db.one(
            "SELECT doc FROM conv_actions WHERE id = ? AND conversation_id = ?",
            (action_id, conversation_id),
        )
        if row is None:
            raise not_found("Action", action_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    async def _emit(
        self,
        conversation: dict[str, Any],
        event_type: str,
        data: dict[str, Any],
        topic: str,
        payload: dict[str, Any],
    ) -> None:
        self.webhooks.send(
            conversation["id"], self.status_callbacks(conversation), event_type, data
        )
        await self.ctx.bus.publish(topic, payload)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()
