"""Durable per-conversation state behind the :class:`SessionStore` protocol.

``TAC_STATE_URL`` unset → :class:`InMemorySessionStore` (one process); ``redis://…``,
``rediss://…`` or ``unix://…`` → :class:`tac.state.redis.RedisSessionStore` (shared by
instances; needs ``pip install "opentac[redis]"``).
"""

from urllib.parse import urlsplit, urlunsplit

from tac.state.base import ClaimResult, SessionStore
from tac.state.memory import InMemorySessionStore

__all__ = [
    "ClaimResult",
    "InMemorySessionStore",
    "SessionStore",
    "create_session_store",
    "store_unavailable",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def create_session_store(state_url: str | None) -> SessionStore:
    """The store ``TAC_STATE_URL`` names (``None`` → in-process). Nothing connects yet."""
    if not state_url:
        return InMemorySessionStore()
    from tac._errors import TACConfigError

    scheme = state_url.partition("://")[0].lower() if "://" in state_url else ""
    if scheme not in _REDIS_SCHEMES:
        raise TACConfigError(
            "TAC_STATE_URL",
            "must be empty or a redis://, rediss:// or unix:// URL, "
            f"got {_without_password(state_url)!r}",
        )
    try:
        from tac.state.redis import RedisSessionStore
    except ImportError as exc:
        raise TACConfigError(
            "TAC_STATE_URL",
            'a Redis URL needs the redis package: pip install "opentac[redis]"',
        ) from exc
    try:
        return RedisSessionStore.from_url(state_url)
    except ValueError as exc:
        raise TACConfigError(
            "TAC_STATE_URL", f"not a usable Redis URL {_without_password(state_url)!r}: {exc}"
        ) from exc


def _without_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (it ends up in an error message)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "<unparseable URL>"
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def store_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the shared store could not be reached (try again later)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    kind = type(exc)
    return kind.__module__.startswith("redis") and any(
        base.__name__ in ("ConnectionError", "TimeoutError", "BusyLoadingError")
        for base in kind.__mro__
    )
