"""The example agent's rules, without a server: languages and phrase tables."""

from __future__ import annotations

import pytest

from tac._demo_agent import PHRASES, _best_paragraph, language_of
from tac.models.session import ConversationSession

pytestmark = pytest.mark.unit


def _session(traits: dict[str, object]) -> ConversationSession:
    return ConversationSession.model_validate(
        {
            "conversation_id": "conv_1",
            "channel": "sms",
            "profile": {"id": "mem_profile_1", "traits": traits},
        }
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [("spanish", "es"), ("Spanish", "es"), (" es ", "es"), ("español", "es"),
     ("Français", "fr"), ("deutsch", "de"), ("klingon", "en"), (3, "en")],
)  # fmt: skip
def test_the_language_trait_picks_the_phrases(value: object, code: str) -> None:
    assert language_of(_session({"Contact": {"language": value}})) == code


def test_no_profile_or_no_trait_is_english() -> None:
    assert language_of(ConversationSession(conversation_id="c", channel="sms")) == "en"
    assert language_of(_session({"Contact": {"name": "Ana"}})) == "en"


def test_every_language_says_everything() -> None:
    keys = set(PHRASES["en"])
    for code, phrases in PHRASES.items():
        assert set(phrases) == keys, code


def test_the_paragraph_under_the_matching_heading_answers() -> None:
    text = "# Returns\n\nThirty days.\n\n# Opening hours\n\nNine to five."
    assert _best_paragraph(text, "What are your opening hours?") == "Nine to five."
    assert _best_paragraph(text, "Can I return this?") == "Thirty days."
    assert _best_paragraph(text, "Hello there") is None
