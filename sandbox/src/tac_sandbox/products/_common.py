"""Helpers shared by the sandbox's product modules: bodies, validation, times, pages."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import BaseModel, ValidationError

from tac_sandbox._errors import bad_request

ModelT = TypeVar("ModelT", bound=BaseModel)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """``2026-01-06T18:30:05Z`` (UTC, seconds), as the new Twilio APIs write times."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc2822(moment: datetime) -> str:
    """``Tue, 06 Jan 2026 18:30:00 +0000``, as the classic APIs (2010-04-01) write times."""
    return format_datetime(moment.astimezone(timezone.utc).replace(microsecond=0))


def parse_time(value: str, field: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; naive means UTC), or a 400 naming ``field``."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise bad_request(f"{field}: not an ISO 8601 date-time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body (``gzip``/``deflate`` encoded or not), or a 400."""
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            raw = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise bad_request(f"Request body is not valid {encoding} data") from exc
    elif encoding not in ("identity", ""):
        raise bad_request(f"Content-Encoding {encoding!r} is not supported by the sandbox")
    try:
        body = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    return body


async def form_fields(request: Request) -> dict[str, list[str]]:
    """A form-encoded body as ``name -> [values]`` (repeated fields keep every value)."""
    raw = await request.body()
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"Request body is not a valid form: {exc}") from exc
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def validate(model: type[ModelT], data: Any, what: str = "") -> ModelT:
    """Validate ``data`` into ``model``; a 400 that names each bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            location = ".".join(str(part) for part in err.get("loc", ()))
            problems.append(f"{location or what or 'body'}: {err.get('msg', 'invalid')}")
        raise bad_request("Invalid request: " + "; ".join(problems)) from exc


def page_bounds(page_size: int | None, page_token: str | None) -> tuple[int, int]:
    """``(offset, size)`` from the new APIs' ``pageSize`` (1..1000, default 50)/``pageToken``."""
    size = 50 if page_size is None else page_size
    if not 1 <= size <= 1000:
        raise bad_request(f"pageSize must be between 1 and 1000, got {size}")
    if not page_token:
        return 0, size
    if not page_token.isdigit():
        raise bad_request(f"pageToken is not valid: {page_token!r}")
    return int(page_token), size


def page_body(key: str, items: list[Any], offset: int, size: int, total: int) -> dict[str, Any]:
    """``{key: items, "meta": {key, pageSize, nextToken?, previousToken?}}``; ``pageSize`` is
    the number returned, as Twilio writes it."""
    meta: dict[str, Any] = {"key": key, "pageSize": len(items)}
    if offset + size < total:
        meta["nextToken"] = str(offset + size)
    if offset > 0:
        meta["previousToken"] = str(max(0, offset - size))
    return {key: items, "meta": meta}


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}`` (for payloads of uncertain shape)."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[dict[str, Any]]:
    """The JSON objects in ``value`` if it is a list, else ``[]``."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def on_reset(ctx: Any, hook: Callable[[], Awaitable[None]]) -> None:
    """Register ``hook`` for ``POST /sandbox/reset`` where the framework offers it."""
    register = getattr(ctx, "on_reset", None)
    if callable(register):
        register(hook)
