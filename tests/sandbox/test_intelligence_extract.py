"""The deterministic, extractive stand-in for Conversation Intelligence's operators."""

from __future__ import annotations

import pytest

from tac_sandbox.products._extract import Utterance, observations, summarize

pytestmark = pytest.mark.unit

MESSAGES = [
    ("CUSTOMER", "Hi, where is my order #4521? I ordered it last week."),
    ("AI_AGENT", "Your order #4521 shipped Monday and arrives tomorrow."),
    ("CUSTOMER", "Great. I prefer text messages over email for delivery updates."),
    ("AI_AGENT", "Noted, we will text you delivery updates."),
]


def test_extractive_summary_is_deterministic() -> None:
    utterances = [Utterance(kind, text) for kind, text in MESSAGES]
    first = summarize(utterances, "SMS")
    assert first == summarize(list(utterances), "SMS")
    assert first is not None
    assert first.startswith("SMS conversation of 4 messages.")
    assert "The customer said:" in first
    assert "The agent said:" in first
    assert summarize([], "SMS") is None


def test_observations_are_customer_statements_of_fact_or_preference() -> None:
    utterances = [
        Utterance("CUSTOMER", "My name is Ana. I'm allergic to peanuts! What time is it?"),
        Utterance("AI_AGENT", "I prefer tea."),
        Utterance("CUSTOMER", "Please don't call me before 9am"),
    ]
    assert observations(utterances) == [
        'Customer said: "My name is Ana."',
        'Customer said: "I\'m allergic to peanuts!"',
        'Customer said: "Please don\'t call me before 9am."',
    ]
