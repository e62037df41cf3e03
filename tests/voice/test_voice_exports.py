"""``tac.channels.voice`` exports the reference SDK's names."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tac.channels.voice as voice
from tac.channels.voice import VoiceTwiMLOptionsConversationRelay

pytestmark = pytest.mark.unit

ANCHOR = {
    "AmdEvent",
    "AmdHandler",
    "CallOptions",
    "CallStatusEvent",
    "CallStatusHandler",
    "ConversationRelayProvider",
    "ConversationRelayProviderConfig",
    "InboundCallTwiMLHandler",
    "InterruptMode",
    "LanguageConfig",
    "RecordingEvent",
    "RecordingHandler",
    "TwiMLRequest",
    "VoiceChannel",
    "VoiceChannelConfig",
    "VoiceProvider",
    "VoiceProviderConfig",
    "VoiceTwiMLOptions",
    "VoiceTwiMLOptionsConversationRelay",
    "generate_twiml",
}


def test_anchor_names_are_exported() -> None:
    assert set(voice.__all__) >= ANCHOR
    for name in voice.__all__:
        assert getattr(voice, name) is not None


def test_voice_channel_config_is_first_class(recwarn: pytest.WarningsRecorder) -> None:
    from tac.channels import VoiceChannelConfig
    from tac.channels.voice.conversation_relay import ConversationRelayProviderConfig

    assert VoiceChannelConfig is ConversationRelayProviderConfig
    assert VoiceChannelConfig(memory_mode="once").memory_mode == "once"
    assert not recwarn.list


def test_old_twiml_options_name_warns() -> None:
    with pytest.deprecated_call(match="VoiceTwiMLOptionsConversationRelay"):
        assert voice.TwiMLOptions is VoiceTwiMLOptionsConversationRelay


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="memory_mode"):
        voice.VoiceChannelConfig(memory_mode="sometimes")  # type: ignore[arg-type]


def test_importing_the_voice_channel_loads_no_server() -> None:
    code = (
        "import sys, tac.channels.voice; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'websockets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
