"""Logging: redaction in every line, context fields, and no global reconfiguration."""

import json
import logging
import re

import pytest

from tac.core.logging import (
    ConsoleFormatter,
    JSONFormatter,
    get_logger,
    mask_address,
    mask_email,
    mask_phone,
    redact,
    setup_logging,
)

pytestmark = pytest.mark.unit


def test_masks() -> None:
    assert mask_phone("+15005550100") == "+1***0100"
    assert mask_phone("12345") == "***"
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_address("whatsapp:+15005550100") == "whatsapp:+1***0100"
    assert mask_address("jane@example.com") == "j***@example.com"
    assert mask_address("+15005550100") == "+1***0100"


def test_redact_finds_numbers_and_emails_but_leaves_ids_and_timestamps() -> None:
    text = (
        "from +1 500-555-0100 (whatsapp:+15005550100) jane.doe@example.com "
        "conv_conversation_01abc at 2026-11-22T20:41:21Z CA0123456789"
    )
    out = redact(text)
    assert "555-0100" not in out
    assert "5005550100" not in out
    assert "jane.doe" not in out
    assert "conv_conversation_01abc" in out
    assert "2026-11-22T20:41:21Z" in out
    assert "CA0123456789" in out


def test_every_line_is_redacted_whatever_handler(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("tests", channel="sms").bind(customer="+15005550100")
    with caplog.at_level(logging.INFO, logger="tac"):
        log.info("message from %s to %s", "+15005550199", "bob@example.org", note="a@b.io")
    record = caplog.records[-1]
    assert record.name == "tac.tests"
    assert record.getMessage() == "message from +1***0199 to b***@example.org"
    assert record.customer == "+1***0100"  # type: ignore[attr-defined]
    assert record.note == "a***@b.io"  # type: ignore[attr-defined]
    assert record.channel == "sms"  # type: ignore[attr-defined]


def test_formatters() -> None:
    log = get_logger("fmt")
    record = logging.LogRecord("tac.fmt", logging.WARNING, __file__, 1, "hi +15005550100", (), None)
    record.tac = {"conversation_id": "conv_1"}
    console = ConsoleFormatter().format(record)
    assert "WARNING tac.fmt: hi +1***0100 conversation_id=conv_1" in console
    payload = json.loads(JSONFormatter().format(record))
    assert payload["message"] == "hi +1***0100"
    assert payload["conversation_id"] == "conv_1"
    assert payload["level"] == "WARNING"
    assert log.name == "tac.fmt"


def test_setup_logging_never_touches_root_or_propagation() -> None:
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    tac_logger = logging.getLogger("tac")
    other = logging.getLogger("httpx")
    other_level = other.level
    setup_logging("DEBUG", "json")
    try:
        assert root.handlers == root_handlers
        assert root.level == root_level
        assert other.level == other_level
        assert tac_logger.propagate is True
        assert tac_logger.level == logging.DEBUG
    finally:
        tac_logger.setLevel(logging.NOTSET)
        for handler in list(tac_logger.handlers):
            if getattr(handler, "_opentac_handler", False):
                tac_logger.removeHandler(handler)


def test_values_from_requests_are_capped_and_cannot_forge_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tac")
    log = get_logger("test.caps")
    hostile = "x\r\n2026-01-01 00:00:00 CRITICAL tac: forged\u2028" + "y" * 900_000
    deep: dict[str, object] = {"leaf": "+15005550100"}
    for _ in range(2000):
        deep = {"d": deep}
    log.warning(
        "frame dropped: %s (%d)", hostile, 7, field=hostile, nested=deep, many=list(range(500))
    )
    (record,) = caplog.records
    message = record.getMessage()
    assert len(message) < 1100
    assert re.search(r"…\(\+\d+ chars\) \(7\)$", message)
    assert not set("\n\r\u2028") & set(message)
    assert "\\r\\n2026-01-01" in message
    fields = record.tac  # type: ignore[attr-defined]
    assert len(fields["field"]) < 1100
    assert len(json.dumps(fields["nested"])) < 100  # cut at a fixed depth, no RecursionError
    assert len(fields["many"]) == 21
    line = JSONFormatter().format(record)
    assert len(line) < 4000
    assert "\n" not in line
