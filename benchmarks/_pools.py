"""An experiment for the benchmark: several small httpx connection pools instead of one.

httpcore's pool walks all its connections on every request and response, so its cost grows
with concurrency. Spreading requests over small pools (least busy first) keeps each walk short.
This is not opentac's default; the benchmark reports it next to the default to show what a
leaner outbound HTTP path buys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, shards: int = 16, per_shard: int = 8) -> None:
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self._pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
        self._busy = [0] * shards

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        response.stream = _Release(response.stream, self._busy, index)
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Release(httpx.AsyncByteStream):
    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, busy: list[int], index: int
    ) -> None:
        self._stream = stream
        self._busy = busy
        self._index = index
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            assert isinstance(self._stream, httpx.AsyncByteStream)
            await self._stream.aclose()
        finally:
            if not self._released:
                self._released = True
                self._busy[self._index] -= 1
