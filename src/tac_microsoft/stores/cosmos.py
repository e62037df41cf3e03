"""Agent Framework sessions in Azure Cosmos DB for NoSQL (``pip install azure-cosmos``)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CosmosDBAgentSessionStore"]

_NOT_STORED = ("id", "ttl", "_rid", "_self", "_etag", "_attachments", "_ts")
"""The document's own keys and Cosmos DB's system properties: not part of the session."""


def _not_found(exc: BaseException) -> bool:
    """Cosmos DB's 404 (``CosmosResourceNotFoundError``, or any error with that status)."""
    return getattr(exc, "status_code", None) == 404


class CosmosDBAgentSessionStore:
    """One document per session in a Cosmos DB container, through the async client.

    A document is ``{"id": <session id>, **AgentSession.to_dict()}`` (plus ``ttl`` when set),
    in a container partitioned on ``/id``: every read and write is a point operation. The
    database and container are created on first use when missing (with ``default_ttl=ttl``).

    Args:
        endpoint: the account's endpoint (``https://<account>.documents.azure.com:443/``).
        credential: an account key, or an async Azure credential
            (``azure.identity.aio.DefaultAzureCredential()``).
        database_name: the database (created when missing).
        container_name: the container (created when missing).
        ttl: seconds a session document lives after its last save (``None``: forever).
        container: an async container client to use as it is (``endpoint`` and
            ``credential`` are then not used); anything with ``read_item``, ``upsert_item``
            and ``delete_item`` that raises an error with ``status_code == 404`` for a
            missing item.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        credential: Any = None,
        database_name: str = "tac",
        container_name: str = "sessions",
        ttl: int | None = None,
        *,
        container: Any = None,
    ) -> None:
        if container is None and not endpoint:
            raise ValueError("CosmosDBAgentSessionStore needs the account endpoint (or container=)")
        if ttl is not None and (ttl == 0 or ttl < -1):
            raise ValueError("ttl is a number of seconds (or -1: never expire)")
        self.endpoint = endpoint
        self.database_name = database_name
        self.container_name = container_name
        self.ttl = ttl
        self._credential = credential
        self._client: Any = None
        self._container: Any = container
        self._lock = asyncio.Lock()

    async def _get_container(self) -> Any:
        if self._container is not None:
            return self._container
        async with self._lock:
            if self._container is None:
                from azure.cosmos import PartitionKey  # type: ignore[import-not-found,unused-ignore]
                from azure.cosmos.aio import CosmosClient  # type: ignore[import-not-found,unused-ignore]

                client = CosmosClient(self.endpoint, credential=self._credential)
                try:
                    database = await client.create_database_if_not_exists(id=self.database_name)
                    self._container = await database.create_container_if_not_exists(
                        id=self.container_name,
                        partition_key=PartitionKey(path="/id"),
                        default_ttl=self.ttl,
                    )
                except BaseException:
                    await client.close()
                    raise
                self._client = client
        return self._container

    async def load(self, session_id: str) -> Any | None:
        """The session saved under ``session_id``, or ``None``."""
        from agent_framework import AgentSession

        container = await self._get_container()
        try:
            item = await container.read_item(item=session_id, partition_key=session_id)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        data = {key: value for key, value in dict(item).items() if key not in _NOT_STORED}
        return AgentSession.from_dict(data)

    async def save(self, session_id: str, session: Any) -> None:
        """Write (upsert) the session under ``session_id``."""
        container = await self._get_container()
        document: dict[str, Any] = {**session.to_dict(), "id": session_id}
        if self.ttl is not None:
            document["ttl"] = self.ttl
        await container.upsert_item(document)

    async def delete(self, session_id: str) -> None:
        """Remove the session (nothing happens when there is none)."""
        container = await self._get_container()
        try:
            await container.delete_item(item=session_id, partition_key=session_id)
        except Exception as exc:
            if not _not_found(exc):
                raise

    async def close(self) -> None:
        """Close the client this store opened (a ``container=`` given is left open)."""
        client, self._client = self._client, None
        if client is not None:
            self._container = None
            await client.close()
