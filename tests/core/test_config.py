"""TACConfig: the reference's variables and defaults, opentac's additions, clear errors."""

import pytest

from tac.core.config import TACConfig, TwilioMemoryConfig
from tac.core.errors import TACConfigError

pytestmark = pytest.mark.unit

BASE = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_API_KEY": "SK" + "1" * 32,
    "TWILIO_API_SECRET": "secret",
    "TWILIO_PHONE_NUMBER": "+15005550006",
}


def test_defaults_match_the_reference() -> None:
    config = TACConfig.from_env(BASE)
    assert config.conversation_configuration_id is None
    assert config.log_level == "INFO"
    assert config.voice_websocket_path == "/ws"
    assert config.voice_action_path == "/conversation-relay-callback"
    assert config.voice_call_event_path == "/twilio/call-events"
    assert config.memory_config == TwilioMemoryConfig()
    assert config.memory_config.observations_limit == 20
    assert config.memory_config.summaries_limit == 5
    assert config.memory_config.communications_limit == 0
    assert config.memory_config.phone_trait_group == "Contact"
    assert config.conversation_intelligence_config is None
    assert config.validate_signatures is True
    assert config.session_ttl_seconds == 86400
    assert config.state_url is None


def test_every_variable_is_read() -> None:
    env = {
        **BASE,
        "TWILIO_CONVERSATION_CONFIGURATION_ID": "conv_configuration_x",
        "TWILIO_RCS_SENDER_ID": "rcs:brand",
        "TWILIO_WHATSAPP_NUMBER": "whatsapp:+15005550006",
        "TWILIO_KNOWLEDGE_BASE_ID": "know_knowledgebase_x",
        "TWILIO_LOG_LEVEL": "debug",
        "TWILIO_REGION": "IE1",
        "TWILIO_STUDIO_HANDOFF_FLOW_SID": "FW1",
        "TWILIO_VOICE_PUBLIC_DOMAIN": "https://example.ngrok.app/",
        "TWILIO_VOICE_WEBSOCKET_PATH": "/relay",
        "TWILIO_VOICE_ACTION_PATH": "/action",
        "TWILIO_VOICE_CALL_EVENT_PATH": "/events",
        "TWILIO_MEMORY_PROFILE_TRAIT_GROUPS": "Contact, Preferences,,",
        "TWILIO_MEMORY_OBSERVATIONS_LIMIT": "7",
        "TWILIO_MEMORY_SUMMARIES_LIMIT": "2",
        "TWILIO_MEMORY_COMMUNICATIONS_LIMIT": "9",
        "TWILIO_MEMORY_RELEVANCE_THRESHOLD": "0.25",
        "TWILIO_MEMORY_PHONE_TRAIT_GROUP": "Identity",
        "TWILIO_MEMORY_PHONE_TRAIT_FIELD": "mobile",
        "CONVERSATION_INTELLIGENCE_CONFIGURATION_ID": "GA1",
        "CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID": "LY1",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:8100/",
        "TAC_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        "TWILIO_VALIDATE_SIGNATURES": "false",
        "TAC_STATE_URL": "redis://127.0.0.1:6379/0",
        "TAC_SESSION_TTL_SECONDS": "120",
        "TAC_ANALYTICS_DISABLED": "true",
    }
    config = TACConfig.from_env(env)
    assert config.conversation_configuration_id == "conv_configuration_x"
    assert config.rcs_sender_id == "rcs:brand"
    assert config.whatsapp_number == "whatsapp:+15005550006"
    assert config.knowledge_base_id == "know_knowledgebase_x"
    assert config.log_level == "DEBUG"
    assert config.region == "ie1"
    assert config.studio_handoff_flow_sid == "FW1"
    assert config.voice_public_domain == "example.ngrok.app"
    assert config.voice_websocket_path == "/relay"
    assert config.call_event_path("amd") == "/events/amd"
    assert config.memory_config.trait_groups == ["Contact", "Preferences"]
    assert config.memory_config.observations_limit == 7
    assert config.memory_config.communications_limit == 9
    assert config.memory_config.relevance_threshold == 0.25
    assert config.memory_config.phone_trait_field == "mobile"
    assert config.conversation_intelligence_config is not None
    assert config.conversation_intelligence_config.summary_operator_sid == "LY1"
    assert config.api_base_url == "http://127.0.0.1:8100"
    assert config.validate_signatures is False
    assert config.state_url == "redis://127.0.0.1:6379/0"
    assert config.session_ttl_seconds == 120


@pytest.mark.parametrize("missing", sorted(BASE))
def test_missing_required_variable_names_it(missing: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(TACConfigError) as caught:
        TACConfig.from_env(env)
    assert caught.value.variable == missing
    assert str(caught.value).startswith(f"{missing}: is required")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, KeyError)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TWILIO_MEMORY_OBSERVATIONS_LIMIT", "lots", "whole number"),
        ("TWILIO_MEMORY_SUMMARIES_LIMIT", "101", "between 0 and 100"),
        ("TWILIO_MEMORY_RELEVANCE_THRESHOLD", "2", "between 0.0 and 1.0"),
        ("TWILIO_VALIDATE_SIGNATURES", "maybe", "true or false"),
        ("TWILIO_REGION", "not a region!", "region name"),
        ("TWILIO_LOG_LEVEL", "LOUD", "DEBUG, INFO"),
        ("TAC_PUBLIC_BASE_URL", "example.com", "full http(s) URL"),
        ("TWILIO_API_BASE_URL", "ftp://x", "full http(s) URL"),
        ("TWILIO_VOICE_WEBSOCKET_PATH", "ws", "start with '/'"),
        ("TAC_SESSION_TTL_SECONDS", "0", "between"),
    ],
)
def test_invalid_variable_is_named_with_what_is_expected(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(TACConfigError) as caught:
        TACConfig.from_env({**BASE, variable: value})
    assert caught.value.variable == variable
    assert expected in str(caught.value)


def test_blank_optional_values_mean_unset() -> None:
    config = TACConfig.from_env(
        {**BASE, "TWILIO_CONVERSATION_CONFIGURATION_ID": "  ", "TWILIO_MEMORY_SUMMARIES_LIMIT": ""}
    )
    assert config.conversation_configuration_id is None
    assert config.memory_config.summaries_limit == 5


def test_public_url_rule() -> None:
    only_domain = TACConfig.from_env({**BASE, "TWILIO_VOICE_PUBLIC_DOMAIN": "a.example.com"})
    assert only_domain.public_url() == "https://a.example.com"
    assert only_domain.public_websocket_url() == "wss://a.example.com"
    both = TACConfig.from_env(
        {
            **BASE,
            "TWILIO_VOICE_PUBLIC_DOMAIN": "a.example.com",
            "TAC_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        }
    )
    assert both.public_url() == "http://127.0.0.1:8000"
    assert both.public_websocket_url() == "ws://127.0.0.1:8000"
    assert both.call_event_url("status") == "http://127.0.0.1:8000/twilio/call-events/status"
    neither = TACConfig.from_env(BASE)
    assert neither.public_url() is None
    assert neither.call_event_url("status") is None


def test_analytics_variable_is_accepted_and_changes_nothing() -> None:
    assert TACConfig.from_env({**BASE, "TAC_ANALYTICS_DISABLED": "false"}) == TACConfig.from_env(
        BASE
    )


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    assert TACConfig.from_env().phone_number == "+15005550006"
