"""Voice models: call events from Twilio's forms, call options validation."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from tests._examples import EXAMPLES

from tac.models.voice import (
    AmdEvent,
    CallOptions,
    CallStatusEvent,
    ConversationRelayCallbackPayload,
    InitiateVoiceConversationOptions,
    RecordingEvent,
)

pytestmark = pytest.mark.unit


def form(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((EXAMPLES / name).read_text())
    return data


def test_status_event() -> None:
    event = CallStatusEvent.from_form(form("voice-status-callback.form.json"))
    assert event.call_status == "completed"
    assert event.call_duration == 87
    assert event.sip_response_code == "200"
    assert not event.is_unreached
    assert event.extra["CallbackSource"] == "call-progress-events"
    unreached = CallStatusEvent.from_form(form("voice-status-callback-no-answer.form.json"))
    assert unreached.is_unreached


def test_amd_and_recording_events() -> None:
    amd = AmdEvent.from_form(form("voice-amd-callback.form.json"))
    assert amd.is_machine
    assert amd.machine_detection_duration == 2850
    recording = RecordingEvent.from_form(form("voice-recording-status-callback.form.json"))
    assert recording.recording_sid == "RE3a4a305de06fd03f0dd151adb9fdd22f"
    assert recording.recording_duration == 86
    assert recording.recording_status == "completed"


def test_call_sid_is_required() -> None:
    with pytest.raises(ValidationError, match="call_sid"):
        CallStatusEvent.from_form({"CallStatus": "completed"})


def test_action_callback_payload() -> None:
    payload = ConversationRelayCallbackPayload.from_form(form("relay-action-callback.form.json"))
    assert payload.session_status == "ended"
    assert payload.session_duration == 74
    assert payload.handoff_data is not None
    assert json.loads(payload.handoff_data)["attributes"]["department"] == "billing"
    failed = ConversationRelayCallbackPayload.from_form(
        form("relay-action-callback-failed.form.json")
    )
    assert (failed.error_code, failed.error_message) == ("64105", "WebSocket Ended")


def test_call_options_to_kwargs() -> None:
    options = CallOptions(
        machine_detection="DetectMessageEnd",
        async_amd=True,
        record=True,
        status_callback_event=["initiated", "completed"],
        timeout=20,
        caller_id="+18005550100",
    )
    assert options.to_call_kwargs() == {
        "machine_detection": "DetectMessageEnd",
        "async_amd": "true",
        "record": True,
        "status_callback_event": ["initiated", "completed"],
        "timeout": 20,
        "caller_id": "+18005550100",
    }


def test_call_options_refuse_reserved_unknown_and_half_amd() -> None:
    with pytest.raises(ValidationError, match="must not set"):
        CallOptions(twiml="<Response/>")
    with pytest.raises(ValidationError, match="unknown Calls API options"):
        CallOptions(not_a_twilio_option=1)
    with pytest.raises(ValidationError, match="set together"):
        CallOptions(machine_detection="Enable")
    with pytest.raises(ValidationError, match="timeout"):
        CallOptions(timeout=0)


def test_initiate_options_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="twiml_option"):
        InitiateVoiceConversationOptions(to="+1", twiml_option={})  # type: ignore[call-arg]
