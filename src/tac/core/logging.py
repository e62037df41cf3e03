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


def mask_phone(phone: str) -> str:
    """``+15005550100`` → ``+1***0100`` (first two and last four characters kept)."""
    digits = phone.strip()
    if len(digits) < 7:
        return "***"
    return f"{digits[:2]}***{digits[-4:]}"


def mask_email(email: str) -> str:
    """``jane.doe@example.com`` → ``j***@example.com``."""
    local, at, domain = email.strip().partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_address(address: str | None) -> str:
    """Mask any channel address: phone (with ``whatsapp:``/``rcs:`` prefixes), email or id."""
    if not address:
        return ""
    prefix, sep, rest = address.partition(":")
    if sep and prefix.lower() in {"whatsapp", "rcs", "tel", "sip", "messenger"}:
        return f"{prefix}:{mask_address(rest)}"
    if "@" in address:
        return mask_email(address)
    if address.lstrip("+").replace(" ", "").replace("-", "").isdigit():
        return mask_phone(address)
    return address if len(address) <= 4 else f"{address[:2]}***{address[-2:]}"


def redact(text: str) -> str:
    """Mask every phone number and email address found in ``text``."""
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    if "+" in text:
        text = _PHONE.sub(lambda m: mask_phone(re.sub(r"[\s().-]", "", m.group(1))), text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


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
        text = redact(msg % args if args else msg)
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
            line += "\n" + redact(self.formatException(record.exc_info))
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
            payload["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


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
