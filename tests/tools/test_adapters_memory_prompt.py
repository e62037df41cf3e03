"""MemoryPromptBuilder and AdapterOptions."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from tac.adapters import AdapterOptions, MemoryPromptBuilder
from tac.models.memory import (
    MemoryCommunication,
    MemoryCommunicationContent,
    MemoryParticipant,
    MemoryRetrievalResponse,
    ObservationInfo,
    ProfileResponse,
    SummaryInfo,
)
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

pytestmark = pytest.mark.unit

HEADER = (
    "# Customer Context\n"
    "You have access to the following information about this customer from previous "
    "interactions:\n\n"
)


def _memory() -> TACMemoryResponse:
    return TACMemoryResponse(
        MemoryRetrievalResponse(
            observations=[ObservationInfo(id="o1", content="Prefers morning calls")],
            summaries=[SummaryInfo(id="s1", content="Asked about a refund")],
            communications=[
                MemoryCommunication(
                    id="m1",
                    author=MemoryParticipant(type="CUSTOMER"),
                    content=MemoryCommunicationContent(text="Where is my order?"),
                ),
                MemoryCommunication(
                    id="m2",
                    author=MemoryParticipant(type="AI_AGENT"),
                    content=MemoryCommunicationContent(text="It ships today."),
                ),
            ],
        )
    )


def _session() -> ConversationSession:
    return ConversationSession(
        conversation_id="conv_1",
        channel="sms",
        profile=ProfileResponse(
            id="mem_profile_1",
            traits={
                "Contact": {"email": "ann@example.com", "phone": None, "tags": ["vip", "eu"]},
                "Preferences": {"language": "es", "extra": {"tz": "CET"}},
            },
        ),
    )


MEMORY_SECTIONS = (
    "## Key Observations\n- Prefers morning calls\n\n"
    "## Past Conversation Summaries\n- Asked about a refund\n\n"
    "## Recent Message History\nUser: Where is my order?\nAssistant: It ships today."
)
PROFILE_ALL = (
    "## Customer Profile\nInformation about this customer:\n"
    "- Contact: email: ann@example.com, tags: vip, eu\n"
    '- Preferences: language: es, extra: {"tz": "CET"}'
)


def test_build_renders_profile_then_memory() -> None:
    text = MemoryPromptBuilder.build(_memory(), _session())
    assert text == HEADER + PROFILE_ALL + "\n\n" + MEMORY_SECTIONS


def test_build_returns_none_when_there_is_nothing() -> None:
    assert MemoryPromptBuilder.build() is None
    assert MemoryPromptBuilder.build(TACMemoryResponse.empty()) is None
    assert (
        MemoryPromptBuilder.build(context=ConversationSession(conversation_id="c", channel="sms"))
        is None
    )


@pytest.mark.parametrize(
    ("options", "expected_profile"),
    [
        (AdapterOptions(), PROFILE_ALL),
        (None, PROFILE_ALL),
        (AdapterOptions(profile_traits=None), None),
        (AdapterOptions(profile_traits=[]), None),
        (
            AdapterOptions(profile_traits=["Preferences"]),
            "## Customer Profile\nInformation about this customer:\n"
            '- Preferences: language: es, extra: {"tz": "CET"}',
        ),
        (AdapterOptions(profile_traits=["Unknown"]), None),
    ],
)
def test_profile_traits_option(
    options: AdapterOptions | None, expected_profile: str | None
) -> None:
    text = MemoryPromptBuilder.build(_memory(), _session(), options)
    sections = [expected_profile, MEMORY_SECTIONS] if expected_profile else [MEMORY_SECTIONS]
    assert text == HEADER + "\n\n".join(sections)


def test_adapter_options_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="profile_trait"):
        AdapterOptions(profile_trait=["x"])  # type: ignore[call-arg]


def test_compose_puts_the_system_prompt_first() -> None:
    composed = MemoryPromptBuilder.compose("You are helpful.", _memory())
    assert composed == "You are helpful.\n\n" + HEADER + MEMORY_SECTIONS
    assert MemoryPromptBuilder.compose("You are helpful.") == "You are helpful."
    assert MemoryPromptBuilder.compose() == ""
    assert MemoryPromptBuilder.compose(None, _memory()) == HEADER + MEMORY_SECTIONS


def test_importing_adapters_does_not_import_openai() -> None:
    code = "import sys, tac.adapters; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
