"""``tac.utils``: the reference SDK's redaction helpers at their import path."""

from __future__ import annotations

import pytest

from tac.utils import mask_address, mask_email, mask_phone, redact_twiml_parameters
from tac.utils.redaction import redact_twiml_parameters as from_module

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("mask", [mask_address, mask_email, mask_phone])
def test_missing_values_mask_to_stars(mask: object) -> None:
    assert mask(None) == "***"  # type: ignore[operator]
    assert mask("") == "***"  # type: ignore[operator]


def test_values_keep_only_a_hint() -> None:
    assert mask_phone(value="+14155550123") == "+1***0123"
    assert mask_email(value="ana@example.com") == "a***@example.com"
    masked = mask_address(value="whatsapp:+14155550123")
    assert "4155550" not in masked
    assert masked.endswith("0123")


def test_twiml_parameter_values_are_redacted_in_any_attribute_order_and_quote() -> None:
    twiml = (
        '<Response><Connect><ConversationRelay url="wss://agent.example.com/ws">'
        '<Parameter name="phone" value="+14155550123"/>'
        "<Parameter value='ana@example.com' name='email'></Parameter>"
        '<Parameter name="note" value="a &amp; b" />'
        "</ConversationRelay></Connect></Response>"
    )
    redacted = redact_twiml_parameters(twiml)
    assert from_module is redact_twiml_parameters
    assert "+14155550123" not in redacted
    assert "ana@example.com" not in redacted
    assert "a &amp; b" not in redacted
    assert redacted.count("***") == 3
    assert 'url="wss://agent.example.com/ws"' in redacted
    assert 'name="phone" value="***"' in redacted
    assert "value='***' name='email'" in redacted
    assert redact_twiml_parameters(None) == ""
