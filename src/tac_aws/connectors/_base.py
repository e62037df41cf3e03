"""What the AWS connectors share: their channels, the partner User-Agent, sync SDKs off the loop."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tac.connectors import ChannelsConnector
from tac.core.partner import PartnerConnector
from tac_aws._version import __version__

if TYPE_CHECKING:
    from tac.core.tac import TAC

T = TypeVar("T")


class AWSConnector(ChannelsConnector):
    """A connector that builds its own channels, identified as ``tac-aws`` to Twilio."""

    partner: PartnerConnector

    def __init__(self, tac: TAC, **channel_configs: Any) -> None:
        super().__init__(tac, **channel_configs)
        tac.register_partner_connector(self.partner, __version__)


async def call_off_loop(function: Callable[..., Any], *args: Any) -> Any:
    """Await an async function; run a sync one (boto3, requests) in a worker thread."""
    if inspect.iscoroutinefunction(function):
        return await function(*args)
    result = await asyncio.to_thread(function, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


_DONE = object()


async def iterate_off_loop(items: Iterable[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterable (a boto3 event stream or body) one item per worker call."""
    iterator: Iterator[T] = iter(items)
    while True:
        item = await asyncio.to_thread(next, iterator, _DONE)
        if item is _DONE:
            return
        yield item  # type: ignore[misc]


def as_mapping(value: Any, kind: type[Any]) -> Any:
    """A pydantic config from itself or its dict form."""
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping):
        return kind(**value)
    raise TypeError(f"expected {kind.__name__} or a dict, got {type(value).__name__}")
