"""Logging: a context logger for the ``tac.*`` namespace that redacts phone numbers and emails.

Every line opentac logs goes through :class:`ContextLogger`, which masks personal data in the
message and in its structured fields before the record exists, whoever handles it afterwards.
opentac never touches the root logger or other libraries' loggers; ``TAC()`` only sets the level
of the ``tac`` logger and, when nothing at all is configured, gives it one console handler.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from tac.observability import _hooks as _obs

__all__ = [
    "ConsoleFormatter",
    "ContextLogger",
    "JSONFormatter",
    "clip",
    "get_logger",
    "mask_address",
    "mask_email",
    "mask_phone",
    "redact",
    "setup_logging",
    "uvicorn_log_config",
]

ROOT_LOGGER_NAME = "tac"

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([\w-]+(?:\.[\w-]+)+)")
# E.164-like numbers, optionally behind a channel prefix (whatsapp:, rcs:, tel:, sip:)
_PHONE = re.compile(r"(?<![\w+])(\+\d[\d\s().-]{5,18}\d)(?!\d)")
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


_MASK = "***"


def mask_phone(value: str | None) -> str:
    """``+15005550100`` → ``+1***0100`` (first two and last four characters kept).

    Short, empty or missing values become ``***``, so a log line still shows one was there.
    """
    digits = (value or "").strip()
    if len(digits) < 7:
        return _MASK
    return f"{digits[:2]}***{digits[-4:]}"


def mask_email(value: str | None) -> str:
    """``jane.doe@example.com`` → ``j***@example.com``; not an email (or missing) → ``***``."""
    local, at, domain = (value or "").strip().partition("@")
    if not at or not local:
        return _MASK
    return f"{local[0]}***@{domain}"


def mask_address(value: str | None) -> str:
    """Mask any channel address: phone (with ``whatsapp:``/``rcs:`` prefixes), email or id.

    Empty or missing values become ``***`` (as in the reference SDK).
    """
    if not value or not value.strip():
        return _MASK
    prefix, sep, rest = value.partition(":")
    if sep and prefix.lower() in {"whatsapp", "rcs", "tel", "sip", "messenger"}:
        return f"{prefix}:{mask_address(rest)}"
    if "@" in value:
        return mask_email(value)
    if value.lstrip("+").replace(" ", "").replace("-", "").isdigit():
        return mask_phone(value)
    return value if len(value) <= 4 else f"{value[:2]}***{value[-2:]}"


def redact(text: str) -> str:
    """Mask every phone number and email address found in ``text``."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    if "+" in text:
        text = _PHONE.sub(lambda m: mask_phone(re.sub(r"[\s().-]", "", m.group(1))), text)
    return text


MAX_LOGGED_CHARS = 1000
"""Longest value (argument or field) a log line carries from data; longer ones are cut."""
_MAX_MESSAGE_CHARS = 4 * MAX_LOGGED_CHARS
_MAX_EXCEPTION_CHARS = 16 * MAX_LOGGED_CHARS
_MAX_ITEMS = 20  # of a list or mapping field
_MAX_DEPTH = 4  # of nested fields
# control characters, escaped so that data cannot start a forged line of its own
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(32), 127, 0x85)} | {
    9: "\\t",
    10: "\\n",
    13: "\\r",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def clip(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` as a log line may carry it: control characters escaped, cut to ``limit``."""
    if len(text) > limit:
        text = f"{text[:limit]}…(+{len(text) - limit} chars)"
    if not text.isprintable():
        text = text.translate(_CONTROL)
    return text


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(clip(value))
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if depth >= _MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k)[:100]: _redact_value(v, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            out["…"] = f"+{len(items) - _MAX_ITEMS} items"
        return out
    if isinstance(value, (list, tuple)):
        out_list = [_redact_value(v, depth + 1) for v in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            out_list.append(f"…(+{len(value) - _MAX_ITEMS} items)")
        return out_list
    return redact(clip(str(value)))


def _arg(value: Any) -> Any:
    """A ``%`` argument as logged: numbers as they are, anything else as clipped text."""
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return clip(str(value))


class ContextLogger:
    """A logger bound to context fields, redacting personal data in every line.

    ``log.info("reply sent", conversation_id=cid)`` logs ``reply sent`` with the field in the
    record's ``extra``; :meth:`bind` returns a logger carrying more fields.
    """

    __slots__ = ("_context", "_logger")

    def __init__(self, logger: logging.Logger, context: Mapping[str, Any] | None = None) -> None:
        self._logger = logger
        self._context = dict(context or {})

    @property
    def name(self) -> str:
        return self._logger.name

    def bind(self, **context: Any) -> ContextLogger:
        return ContextLogger(self._logger, {**self._context, **context})

    def isEnabledFor(self, level: int) -> bool:
        return self._logger.isEnabledFor(level)

    def _log(self, level: int, msg: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        exc_info = fields.pop("exc_info", None)
        if args:
            msg = msg % tuple(_arg(a) for a in args)
        text = redact(msg if len(msg) <= _MAX_MESSAGE_CHARS else clip(msg, _MAX_MESSAGE_CHARS))
        extra = {
            (k if k not in _RESERVED else f"field_{k}"): _redact_value(v)
            for k, v in {**self._context, **fields}.items()
        }
        self._logger.log(
            level, text, exc_info=exc_info, extra={"tac": extra, **extra}, stacklevel=3
        )

    def debug(self, msg: str, *args: Any, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, args, fields)

    def info(self, msg: str, *args: Any, **fields: Any) -> None:
        self._log(logging.INFO, msg, args, fields)

    def warning(self, msg: str, *args: Any, **fields: Any) -> None:
        self._log(logging.WARNING, msg, args, fields)

    def error(self, msg: str, *args: Any, **fields: Any) -> None:
        self._log(logging.ERROR, msg, args, fields)

    def exception(self, msg: str, *args: Any, **fields: Any) -> None:
        fields.setdefault("exc_info", True)
        self._log(logging.ERROR, msg, args, fields)

    def critical(self, msg: str, *args: Any, **fields: Any) -> None:
        self._log(logging.CRITICAL, msg, args, fields)


def get_logger(name: str = "", **context: Any) -> ContextLogger:
    """A redacting logger named ``tac.{name}`` (or ``tac``), optionally bound to fields."""
    full = ROOT_LOGGER_NAME if not name or name == ROOT_LOGGER_NAME else f"tac.{name}"
    if name.startswith("tac."):
        full = name
    return ContextLogger(logging.getLogger(full), context)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "tac", None)
    return dict(fields) if isinstance(fields, dict) else {}


class ConsoleFormatter(logging.Formatter):
    """``2026-11-22 20:41:21 INFO tac.channels: reply sent conversation_id=conv_…``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{stamp} {record.levelname} {record.name}: {redact(record.getMessage())}"
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + redact(_exception_text(self, record))
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message`` and the fields.

    Inside a turn, ``conversation_id`` and ``channel`` are added when the line does not carry
    them; with tracing on, ``trace_id`` and ``span_id`` of the current span too.
    """

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        turn = _obs.log_context()
        if turn is not None:
            payload["conversation_id"], payload["channel"] = turn
        ids = _obs.observer.log_ids()
        if ids is not None:
            payload["trace_id"], payload["span_id"] = ids
        payload.update(_fields(record))
        if record.exc_info:
            payload["exception"] = redact(_exception_text(self, record))
        return json.dumps(payload, default=str)


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    text = formatter.formatException(record.exc_info)  # type: ignore[arg-type]
    if len(text) > _MAX_EXCEPTION_CHARS:  # keep the end: the exception and where it was raised
        text = f"…(-{len(text) - _MAX_EXCEPTION_CHARS} chars)" + text[-_MAX_EXCEPTION_CHARS:]
    return text


_OWN_HANDLER_FLAG = "_opentac_handler"


def setup_logging(level: str = "INFO", log_format: Literal["console", "json"] = "console") -> None:
    """Set the ``tac`` logger's level; add a console handler only if nothing is configured.

    Never touches the root logger or any other library's logger, and never disables propagation.
    """
    logger = logging.getLogger(ROOT_LOGGER_NAME)
    logger.setLevel(level.upper())
    formatter: logging.Formatter = JSONFormatter() if log_format == "json" else ConsoleFormatter()
    own = [h for h in logger.handlers if getattr(h, _OWN_HANDLER_FLAG, False)]
    for handler in own:
        handler.setFormatter(formatter)
    if own or logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _OWN_HANDLER_FLAG, True)
    logger.addHandler(handler)


def uvicorn_log_config(
    level: str = "INFO", log_format: Literal["console", "json"] = "console"
) -> dict[str, Any]:
    """A ``logging.config`` dict for uvicorn: its lines in opentac's format, level and redaction.

    ``uvicorn.run(app, log_config=uvicorn_log_config("WARNING", "json"))``.
    """
    formatter = f"{__name__}.{'JSONFormatter' if log_format == 'json' else 'ConsoleFormatter'}"
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"opentac": {"()": formatter}},
        "handlers": {
            "opentac": {
                "class": "logging.StreamHandler",
                "formatter": "opentac",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["opentac"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["opentac"], "level": level, "propagate": False},
        },
    }
