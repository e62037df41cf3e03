import pytest

from tac_sandbox._twilio import sandbox_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://memory.twilio.com/v1/Stores/s/Profiles/p",
            "http://127.0.0.1:8100/memory/v1/Stores/s/Profiles/p",
        ),
        (
            "https://conversations.us1.twilio.com/v2/Conversations?PageSize=50",
            "http://127.0.0.1:8100/conversations/v2/Conversations?PageSize=50",
        ),
        (
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json",
            "http://127.0.0.1:8100/api/2010-04-01/Accounts/AC1/Calls.json",
        ),
        ("https://example.com/x", "https://example.com/x"),
    ],
)
def test_sandbox_url_rewrites_twilio_hosts(url: str, expected: str) -> None:
    assert sandbox_url(url, "http://127.0.0.1:8100/") == expected
